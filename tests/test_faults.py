"""Fault injection: kills and Ctrl-C during training and cache writes, concurrent writers on one cache key.

Each case interrupts a real process, resumes, and compares the result with an uninterrupted run bit for bit.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

TRAINING = Path(__file__).parent / "scripts" / "interruptible_training.py"
STEPS = 200
ENVIRONMENT = {**os.environ, "TUTORLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}


def train(checkpoint: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(TRAINING), str(checkpoint), str(out), str(STEPS)],
                            env=ENVIRONMENT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    folder = tmp_path_factory.mktemp("reference")
    assert train(folder / "run.pt", folder / "weights.safetensors").wait(timeout=120) == 0
    return load_file(str(folder / "weights.safetensors"))


@pytest.mark.parametrize("signal_number, delay", [
    (signal.SIGINT, 0.25), (signal.SIGINT, 0.55), (signal.SIGKILL, 0.3), (signal.SIGKILL, 0.6)])
def test_interrupted_training_resumes_bit_for_bit(tmp_path, reference, signal_number, delay):
    checkpoint, out = tmp_path / "run.pt", tmp_path / "weights.safetensors"
    process = train(checkpoint, out)
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal_number)
    process.wait(timeout=60)
    assert not out.exists(), "the run finished before the signal: raise STEPS"
    assert train(checkpoint, out).wait(timeout=120) == 0
    resumed = load_file(str(out))
    assert all(torch.equal(resumed[name], reference[name]) for name in reference)


CACHE_WRITER = """
import sys, time
from pathlib import Path
import torch
from tutorlib.cache import train_or_load

def train(model):
    with open(sys.argv[1], "a") as log:
        log.write("trained\\n")
    time.sleep(float(sys.argv[2]))
    with torch.no_grad():
        model.weight.fill_(float(sys.argv[3]))

model, info = train_or_load("shared", {"k": 1}, lambda: torch.nn.Linear(2, 2), train, "cpu")
print(model.weight[0, 0].item(), info["from_cache"])
"""


def cache_writer(log: Path, seconds: float, value: float, data: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CACHE_WRITER, str(log), str(seconds), str(value)],
                            env={**ENVIRONMENT, "TUTORLIB_DATA": str(data)}, stdout=subprocess.PIPE, text=True)


def test_two_processes_on_one_cache_key_train_once_and_agree(tmp_path):
    log = tmp_path / "log.txt"
    first = cache_writer(log, 1.5, 1.0, tmp_path / "data")
    time.sleep(0.5)
    second = cache_writer(log, 0.0, 2.0, tmp_path / "data")
    outputs = [first.communicate(timeout=60)[0].split(), second.communicate(timeout=60)[0].split()]
    assert log.read_text().splitlines() == ["trained"]
    assert outputs == [["1.0", "False"], ["1.0", "True"]]


def test_a_killed_cache_write_leaves_nothing_and_the_next_run_builds(tmp_path):
    log = tmp_path / "log.txt"
    victim = cache_writer(log, 30.0, 1.0, tmp_path / "data")
    while not log.exists():
        time.sleep(0.05)
    victim.kill()
    victim.wait(timeout=30)
    entries = [p.name for p in (tmp_path / "data" / "cache").iterdir() if p.name != ".locks"]
    assert len(entries) == 1 and ".tmp-" in entries[0]  # only the dead process's temporary folder
    survivor = cache_writer(log, 0.0, 3.0, tmp_path / "data")
    assert survivor.communicate(timeout=60)[0].split() == ["3.0", "False"]
    entries = [p.name for p in (tmp_path / "data" / "cache").iterdir() if p.name != ".locks"]
    assert len(entries) == 1 and entries[0].startswith("shared-")
