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


def test_student_t_quantiles_match_the_tables():
    from tutorlib.report import student_t_quantile

    # df = 1 is the Cauchy distribution: t = tan(pi * (p - 1/2)); the others are the printed t tables
    assert student_t_quantile(0.95, 1) == pytest.approx(np.tan(np.pi * 0.45), abs=1e-6)
    assert student_t_quantile(0.95, 2) == pytest.approx(2.919986, abs=1e-5)
    assert student_t_quantile(0.975, 10) == pytest.approx(2.228139, abs=1e-5)
    with pytest.raises(ValueError, match="need 0.5 <= p < 1"):
        student_t_quantile(0.2, 3)


def test_comparison_follows_the_claim_rule_by_hand():
    from tutorlib.report import Claim, compare

    # differences 2, 3, 4: mean 3, std 1, lower bound 3 - 2.919986 * 1 / sqrt(3) = 1.3141
    gain = compare("F1", {0: 3.0, 1: 4.0, 2: 5.0}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert gain.differences == {0: 2.0, 1: 3.0, 2: 4.0}
    assert gain.lower == pytest.approx(3 - 2.919986 / np.sqrt(3), abs=1e-5) and gain.held
    # the same spread around a mean of 1 is not enough: 1 - 1.686 < 0
    weak = compare("F1", {0: 0.0, 1: 1.0, 2: 2.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    assert not weak.held and "<= 0" in weak.reason
    # two seeds never decide, however large the gain
    assert not compare("F1", {0: 9.0, 1: 9.5}, {0: 0.0, 1: 0.0}).held
    # lower is better: the sign flips
    assert compare("error", {0: 1.0, 1: 1.0, 2: 1.1}, {0: 2.0, 1: 2.1, 2: 2.0}, higher_is_better=False).held
    claim = Claim("SSCR beats the baseline", (gain, weak))
    assert not claim.held and claim.line == "claim held: no — SSCR beats the baseline"
    assert Claim("gain", (gain,)).line == "claim held: yes — gain"
    assert "| F1 | +2, +3, +4 | +3 ± 1 | +1.31 | yes" in claim.table()
    with pytest.raises(ValueError, match="share no seed"):
        compare("x", {0: 1.0}, {1: 1.0})
    with pytest.raises(ValueError, match="has no comparison"):
        Claim("empty", ())


def test_notebook_run_writes_budget_and_claim_and_ends_with_the_claim_line(isolated_dirs, capsys):
    from tutorlib.report import Claim, compare, start_run

    run = start_run("07_example", profile="smoke", device="cpu", seed=4, threads=1)
    assert run.seeds == [4] and run.profile == "smoke" and run.threads == 1 == torch.get_num_threads()
    with run.stage("train"):
        pass
    claim = Claim("it helps", (compare("acc", {4: 1.0}, {4: 0.5}),))
    path = run.finish(metrics={"acc": 1.0}, headline={"acc": 1.0}, claim=claim)
    record = json.loads(path.read_text())
    assert record["budget_seconds"] == 120 and record["over_budget"] is False
    assert record["claim"]["held"] is False and record["claim"]["comparisons"][0]["n"] == 1
    assert record["wall_seconds"] >= record["stage_seconds"]["train"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("profile smoke, device cpu (1 threads), seeds [4], budget 2 min")
    assert lines[-1] == "claim held: no — it helps"
    assert start_run("07_example", profile="standard", device="cpu", threads=1).seeds == [0, 1, 2]
    with pytest.raises(ValueError, match="seed and n_seeds must be >= 0"):
        start_run("07_example", profile="smoke", device="cpu", seed=-1)


def test_exact_checks_join_a_claim():
    from tutorlib.report import Check, Claim, compare

    claim = Claim("formats round-trip", (Check("i-CLEVR round trip", True, "bit-identical"),))
    assert claim.held and "| i-CLEVR round trip | - | - | - | yes (bit-identical) |" in claim.table()
    failing = Claim("both", (Check("determinism", False, "hashes differ"),
                             compare("x", {0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0})))
    assert not failing.held and failing.to_dict()["comparisons"][0] == {
        "name": "determinism", "held": False, "reason": "hashes differ"}
