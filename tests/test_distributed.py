"""Training under torchrun: two CPU processes (gloo) follow the loss curve of one process on the same batches."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "distributed_regression.py"
# Two processes sum their gradients in another order than one process does: float32 rounding, nothing more.
TOLERANCE = 1e-5


def run(out: Path, steps: int, processes: int, checkpoint: Path | None = None) -> dict:
    environment = {**os.environ, "TUTORLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(SCRIPT), str(out), str(steps)] + ([str(checkpoint)] if checkpoint else [])
    if processes > 1:
        command[1:1] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    result = subprocess.run(command, env=environment, timeout=240, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_processes_follow_the_single_process_loss_curve_and_resume(tmp_path):
    alone = run(tmp_path / "alone.json", 12, 1)
    together = run(tmp_path / "together.json", 12, 2)
    assert len(together["loss"]) == 12
    assert together["loss"] == pytest.approx(alone["loss"], rel=TOLERANCE)
    assert together["weight"] == pytest.approx(alone["weight"], rel=TOLERANCE)
    # rank 0 saves; an interrupted two-process run resumes from its checkpoint to the same end
    checkpoint = tmp_path / "run.pt"
    run(tmp_path / "first.json", 5, 2, checkpoint)
    resumed = run(tmp_path / "resumed.json", 12, 2, checkpoint)
    assert resumed["weight"] == pytest.approx(alone["weight"], rel=TOLERANCE)
