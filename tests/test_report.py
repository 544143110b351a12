import json
import time
from datetime import datetime

import numpy as np
import pytest
import torch

from tutorlib.paths import runs_dir
from tutorlib.report import StageTimer, load_metrics, save_metrics


def test_stage_timer_accumulates_per_stage():
    timer = StageTimer()
    with timer.stage("data"):
        time.sleep(0.02)
    with timer.stage("train"):
        pass
    with timer.stage("data"):
        time.sleep(0.02)
    assert list(timer.seconds) == ["data", "train"]
    assert timer.seconds["data"] >= 0.04
    assert timer.total == pytest.approx(sum(timer.seconds.values()))


def test_stage_timer_records_failing_stage():
    timer = StageTimer()
    with pytest.raises(RuntimeError):
        with timer.stage("broken"):
            raise RuntimeError
    assert "broken" in timer.seconds


def test_save_and_load_metrics_round_trip(isolated_dirs):
    path = save_metrics(
        "00_shapes_world",
        profile="smoke",
        device=torch.device("cpu"),
        seeds=[0, 1],
        stage_seconds={"data": np.float64(1.5), "train": 2.0},
        metrics={"accuracy": np.float32(0.75), "confusion": [[1, 2], [3, 4]]},
        headline={"accuracy": torch.tensor(0.75)},
        claim="the model beats chance",
        claim_held=np.bool_(True),
    )
    assert path == runs_dir() / "00_shapes_world.metrics.json"
    record = load_metrics("00_shapes_world")
    assert record == json.loads(path.read_text())
    assert record["device"] == "cpu"
    assert record["wall_seconds"] == 3.5
    assert record["metrics"] == {"accuracy": 0.75, "confusion": [[1, 2], [3, 4]]}
    assert record["headline"] == {"accuracy": 0.75}
    assert record["claim"] == {"statement": "the model beats chance", "held": True}
    assert datetime.fromisoformat(record["written_at"]).utcoffset().total_seconds() == 0
    assert sorted(path.parent.iterdir()) == [path]


def test_load_metrics_missing_is_none(isolated_dirs):
    assert load_metrics("99_missing") is None
    assert load_metrics("99_missing", runs=isolated_dirs) is None
