import json
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest

from tutorlib.runner import Result, find_notebooks, main, run_notebooks, summary_markdown

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def write_notebook(path: Path, *bodies: str) -> None:
    parameters = nbformat.v4.new_code_cell('profile: str = "auto"  # run profile')
    parameters.metadata["tags"] = ["parameters"]
    cells = [parameters]
    for index, body in enumerate(bodies):
        cells.append(nbformat.v4.new_markdown_cell(f"## {index + 1} · Part {index + 1}"))
        cells.append(nbformat.v4.new_code_cell(body))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


FINISH = """
from tutorlib.report import Check, Claim, start_run
run = start_run("{name}", profile=profile, device="cpu", threads=1)
run.finish(metrics={{"accuracy": 0.9375}}, headline={{"accuracy": 0.9375}},
           claim=Claim("it runs", (Check("ran", True, "reached the end"),)))
"""

TRAINING = """
import torch
from tutorlib.training import fit
torch.manual_seed(0)
model = torch.nn.Linear(4, 2)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
batch = (torch.randn(8, 4), torch.randn(8, 2))
fit(model, lambda b, s: (torch.nn.functional.mse_loss(model(b[0]), b[1]), {}), lambda s: batch, 1000, optimizer,
    device="cpu", desc="toy regression")
"""


def test_summary_markdown_table_budget_and_failures():
    results = [
        Result("00_ok", "ok", 12.34, metrics={"profile": "smoke", "device": "cpu (2 threads)", "budget_seconds": 120,
                                              "claim": {"held": True}, "headline": {"acc": 0.93751, "n": 3}}),
        Result("01_slow", "ok", 130.0, metrics={"profile": "smoke", "device": "cpu", "budget_seconds": 120,
                                                "claim": {"held": False}, "headline": {}}),
        Result("02_bad", "failed", 1.0, error="ValueError: bad | value"),
    ]
    text = summary_markdown(results, command="python -m tutorlib.runner --only 0", when=WHEN)
    lines = text.splitlines()
    assert "2024-05-01T12:00:00+00:00" in lines[2] and "`python -m tutorlib.runner --only 0`" in lines[2]
    assert "| 00_ok | ok | 12.3 s | 120 s | smoke | cpu (2 threads) | yes | acc = 0.9375, n = 3 |" in lines
    assert "| 01_slow | ok | 130.0 s **over budget** | 120 s | smoke | cpu | no | - |" in lines
    assert "| 02_bad | failed | 1.0 s | - | - | - | - | - |" in lines
    assert "- 02_bad (failed): ValueError: bad \\| value" not in lines and "- 02_bad (failed): ValueError: bad | value" in lines
    assert "interrupted" not in text


def test_summary_of_an_interrupted_run_says_so():
    results = [Result("00_a", "ok", 1.0), Result("01_b", "interrupted", 0.0, "stopped by Ctrl-C"),
               Result("02_c", "not run", 0.0)]
    text = summary_markdown(results, command="x", when=WHEN, interrupted=True)
    assert "**The run was interrupted (Ctrl-C): the table is incomplete.**" in text
    assert "| 01_b | interrupted |" in text and "| 02_c | not run |" in text


def test_find_notebooks_sorts_and_filters(tmp_path):
    for name in ["02_c", "00_a", "01_b"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert find_notebooks(tmp_path) == ["00_a", "01_b", "02_c"]
    assert find_notebooks(tmp_path, ["02", "00"]) == ["00_a", "02_c"]


def test_no_notebooks_exits_1(tmp_path, capsys):
    assert main(["--notebooks", str(tmp_path), "--runs", str(tmp_path / "runs")]) == 1
    assert "no notebooks" in capsys.readouterr().err


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.delenv("TUTORLIB_RUNS", raising=False)
    monkeypatch.setenv("TUTORLIB_PROGRESS", "0")
    monkeypatch.setenv("TUTORLIB_DATA", str(tmp_path / "data"))
    notebooks, runs = tmp_path / "notebooks", tmp_path / "runs"
    notebooks.mkdir()
    return notebooks, runs


def test_runner_end_to_end_with_progress_lines(folders, capsys):
    notebooks, runs = folders
    write_notebook(notebooks / "00_ok.ipynb", "x = 1", FINISH.format(name="00_ok"))
    write_notebook(notebooks / "01_bad.ipynb", 'raise ValueError("broken on purpose")')
    write_notebook(notebooks / "02_garbled.ipynb",
                   "from tutorlib.report import metrics_path\nmetrics_path('02_garbled').write_text('{oops')")

    status = main(["--notebooks", str(notebooks), "--runs", str(runs), "--profile", "smoke"])

    assert status == 1
    summary = (runs / "summary.md").read_text()
    assert "| 00_ok | ok |" in summary and "accuracy = 0.9375" in summary and "| 120 s |" in summary
    assert "| 01_bad | failed |" in summary and "- 01_bad (failed): ValueError: broken on purpose" in summary
    assert "- 02_garbled (failed): 02_garbled.metrics.json is unreadable" in summary
    executed = nbformat.read(runs / "00_ok.ipynb", as_version=4)
    assert any('profile = "smoke"' in cell.source for cell in executed.cells)
    err = capsys.readouterr().err
    assert "00_ok: 1/3 cells done · 1 · Part 1 · 0:" in err and "00_ok: 2/3 cells done · 2 · Part 2" in err and "of a 2:00 budget" in err
    assert "00_ok: ok in 0:" in err and "01_bad: failed in" in err


def test_ctrl_c_marks_the_run_interrupted_and_still_writes_the_summary(folders, monkeypatch):
    import tutorlib.runner as runner

    notebooks, runs = folders
    for name in ("00_a", "01_b", "02_c"):
        write_notebook(notebooks / f"{name}.ipynb", "x = 1")
    real = runner.run_notebook

    def interrupting(name, *args, **kwargs):
        if name == "01_b":
            raise KeyboardInterrupt
        return real(name, *args, **kwargs)

    monkeypatch.setattr(runner, "run_notebook", interrupting)
    assert main(["--notebooks", str(notebooks), "--runs", str(runs), "--profile", "smoke"]) == 130
    summary = (runs / "summary.md").read_text()
    assert "interrupted (Ctrl-C)" in summary and "| 01_b | interrupted |" in summary and "| 02_c | not run |" in summary
    assert "| 00_a | failed |" in summary  # it wrote no metrics: a notebook must end with run.finish


def test_estimate_runs_dry_and_records_each_training_stage(folders):
    notebooks, runs = folders
    write_notebook(notebooks / "00_train.ipynb", TRAINING, FINISH.format(name="00_train"))
    assert main(["--notebooks", str(notebooks), "--runs", str(runs), "--estimate"]) == 0
    result = json.loads((runs / "estimate.json").read_text())
    [stage] = result["notebooks"]["00_train"]["stages"]
    # dry ran 2 of the 1000 planned steps and recorded one: 8 x 4 -> 2 linear layer, forward + weight gradient
    assert stage["stage"] == "toy regression" and stage["steps"] == 1000 and stage["parameters"] == 10
    assert stage["gflops_per_step"] == pytest.approx(2 * (8 * 4 * 2) * 2 / 1e9)
    assert "| 00_train | toy regression | 1000 |" in (runs / "estimate.md").read_text()
    assert json.loads((runs / "dry" / "00_train.metrics.json").read_text())["profile"] == "dry"


def test_run_notebooks_time_limit_stops_a_slow_notebook(folders):
    notebooks, runs = folders
    write_notebook(notebooks / "00_slow.ipynb", "import time\ntime.sleep(60)")
    [result] = run_notebooks(["00_slow"], "smoke", runs, notebooks, time_limit=3)
    assert result.status == "timed out" and result.seconds < 30
