"""Ctrl-C during GAN training: the checkpoint holds whole steps only, so a resumed run equals an uninterrupted one."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

SCRIPT = Path(__file__).parent / "scripts" / "interruptible_gan.py"
ENVIRONMENT = {**os.environ, "TUTORLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def train(folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), str(folder / "run.pt"), str(folder / "out.safetensors"),
                             str(folder / "started")], env=ENVIRONMENT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    folder = tmp_path_factory.mktemp("reference")
    assert train(folder).wait(timeout=300) == 0
    return load_file(str(folder / "out.safetensors"))


@pytest.mark.parametrize("delay", [0.3, 1.1])
def test_sigint_during_gan_training_resumes_bit_for_bit(tmp_path, reference, delay):
    process = train(tmp_path)
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) != 0
    assert not (tmp_path / "out.safetensors").exists(), "the run finished before the signal: raise the steps"
    assert (tmp_path / "run.pt").exists(), "Ctrl-C must save the finished steps"
    assert train(tmp_path).wait(timeout=300) == 0
    resumed = load_file(str(tmp_path / "out.safetensors"))
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)
