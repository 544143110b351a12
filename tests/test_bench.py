import json

import pytest

from tutorlib.bench import bench_markdown, main, matmul_peak, rows_for
from tests.test_runner import FINISH, TRAINING, write_notebook


def test_rows_by_hand_and_untimed_stages_left_out():
    records = [{"stage": "clip", "samples": 256, "flops": 4e9, "seconds_per_step": 0.5},
               {"stage": "once", "samples": 8, "flops": 1e6, "seconds_per_step": None}]
    [row] = rows_for(records, "02_simat", 2, peak=80e9)
    assert row["samples_per_second"] == 512 and row["gflops_per_second"] == 8 and row["ratio_to_peak"] == 0.1
    text = bench_markdown([row], {2: 80e9})
    assert "2 thread(s) 80.0 GFLOP/s" in text and "| 02_simat | clip | 2 | 256 | 512.0 | 8.00 | 10.0 |" in text


def test_matmul_peak_is_a_positive_rate():
    assert matmul_peak(1, n=256, repeats=2) > 1e8


def test_bench_end_to_end_on_a_toy_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORLIB_PROGRESS", "0")
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path / "data"))
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "00_train.ipynb", TRAINING, FINISH.format(name="00_train"))
    assert main(["--notebooks", str(notebooks), "--runs", str(tmp_path / "bench"), "--steps", "3",
                 "--threads", "1"]) == 0
    [row] = json.loads((tmp_path / "bench" / "bench.json").read_text())["rows"]
    assert row["stage"] == "toy regression" and row["threads"] == 1 and row["samples_per_step"] == 8
    assert row["samples_per_second"] > 0
    with pytest.raises(SystemExit):
        main(["--steps", "1"])
