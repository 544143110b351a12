from datetime import datetime, timezone
from pathlib import Path

import nbformat

from tutorlib.runner import Result, find_notebooks, main, summary_markdown

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def write_notebook(path: Path, body: str) -> None:
    parameters = nbformat.v4.new_code_cell('profile: str = "auto"  # run profile')
    parameters.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)


PASSING = """
from tutorlib.report import save_metrics
save_metrics("00_ok", profile=profile, device="cpu", seeds=[0], stage_seconds={"all": 0.1},
             metrics={"accuracy": 0.9375}, headline={"accuracy": 0.9375},
             claim="it runs", claim_held=True)
"""


def test_summary_markdown_table_and_failures():
    results = [
        Result("00_ok", True, 12.34, metrics={"profile": "smoke", "device": "cpu (2 threads)",
                                             "headline": {"acc": 0.93751, "n": 3}}),
        Result("01_bad", False, 1.0, error="ValueError: bad | value"),
    ]
    text = summary_markdown(results, command="python -m tutorlib.runner --only 0", when=WHEN)
    lines = text.splitlines()
    assert "2024-05-01T12:00:00+00:00" in lines[2] and "`python -m tutorlib.runner --only 0`" in lines[2]
    assert "| 00_ok | ok | 12.3 s | smoke | cpu (2 threads) | acc = 0.9375, n = 3 |" in lines
    assert "| 01_bad | failed | 1.0 s | - | - | - |" in lines
    assert "- 01_bad: ValueError: bad | value" in lines


def test_summary_without_failures_has_no_failure_section():
    text = summary_markdown([Result("00_ok", True, 1.0)], command="x", when=WHEN)
    assert "Failures" not in text
    assert text.endswith("|---|---|---|---|---|---|\n| 00_ok | ok | 1.0 s | - | - | - |\n")


def test_find_notebooks_sorts_and_filters(tmp_path):
    for name in ["02_c", "00_a", "01_b"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    assert find_notebooks(tmp_path) == ["00_a", "01_b", "02_c"]
    assert find_notebooks(tmp_path, ["02", "00"]) == ["00_a", "02_c"]


def test_no_notebooks_exits_1(tmp_path, capsys):
    assert main(["--notebooks", str(tmp_path), "--runs", str(tmp_path / "runs")]) == 1
    assert "no notebooks" in capsys.readouterr().err


def test_runner_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv("TUTORLIB_RUNS", raising=False)
    monkeypatch.setenv("TUTORLIB_PROGRESS", "0")
    notebooks, runs = tmp_path / "notebooks", tmp_path / "runs"
    notebooks.mkdir()
    write_notebook(notebooks / "00_ok.ipynb", PASSING)
    write_notebook(notebooks / "01_bad.ipynb", 'raise ValueError("broken on purpose")')

    status = main(["--notebooks", str(notebooks), "--runs", str(runs), "--profile", "smoke"])

    assert status == 1
    summary = (runs / "summary.md").read_text()
    assert "| 00_ok | ok |" in summary and "accuracy = 0.9375" in summary
    assert "| 01_bad | failed |" in summary
    assert "- 01_bad: ValueError: broken on purpose" in summary
    assert (runs / "00_ok.ipynb").is_file() and (runs / "00_ok.metrics.json").is_file()
    executed = nbformat.read(runs / "00_ok.ipynb", as_version=4)
    assert any('profile = "smoke"' in cell.source for cell in executed.cells)
