"""Execute every notebook headlessly and summarise the runs: ``python -m tutorlib.runner``.

- ``python -m tutorlib.runner [--profile P] [--only 00 03]``: each notebook is executed with papermill into
  ``runs/<name>.ipynb``; a live line on stderr shows the cells done, the section running and the time against the
  profile's budget; a table closes the run, and ``runs/summary.md`` lists status, wall time, budget, profile,
  device, the claim's verdict and the headline metrics of each notebook (from ``runs/<name>.metrics.json``).
- ``--estimate``: every notebook under ``dry``, each training stage's cost recorded (``tutorlib.stages``), then the
  estimated time of ``full`` on one H100-class GPU per notebook and stage (``tutorlib.estimate``).
- ``--gpu-check``: on a machine with a GPU, every notebook under ``full`` with a time limit each; the summary puts
  the measured times beside the estimates (from ``runs/estimate.json`` when an estimate was run).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from tutorlib.estimate import estimate, estimate_markdown
from tutorlib.paths import atomic_write, notebooks_dir, repo_root, runs_dir
from tutorlib.profiles import BUDGET_SECONDS, PROFILES
from tutorlib.report import load_metrics, metrics_path
from tutorlib.stages import STAGES_VARIABLE, read_records

# Seconds one cell may run before the notebook fails (a hung kernel must not stall a whole run).
CELL_TIMEOUT = 1800
# Seconds one notebook may run under --gpu-check: twice the full profile's budget.
GPU_CHECK_LIMIT = 2 * BUDGET_SECONDS["full"]


@dataclass
class Result:
    """How one notebook run went: status is ok, failed, timed out, interrupted or not run."""

    name: str
    status: str
    seconds: float
    error: str | None = None
    metrics: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def find_notebooks(folder: Path, only: Sequence[str] = ()) -> list[str]:
    """Names of the notebooks in ``folder``, sorted, kept when they start with one of ``only``."""
    names = sorted(path.stem for path in Path(folder).glob("*.ipynb"))
    return [name for name in names if not only or name.startswith(tuple(only))]


@contextlib.contextmanager
def _environment(**variables: str) -> Iterator[None]:
    """Set environment variables (inherited by kernels) for the body of the ``with`` block."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _first_line(error: BaseException) -> str:
    if isinstance(error, PapermillExecutionError):
        return f"{error.ename}: {error.evalue}".splitlines()[0]
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


class ProgressLine:
    """One live line on stderr per notebook: cells done of total, the section running, elapsed / budget.

    On a terminal the line is redrawn every second; elsewhere (CI logs) a line is printed when the section changes.
    """

    def __init__(self, name: str, notebook: nbformat.NotebookNode, budget: float, stream=None):
        self.name, self.budget, self.stream = name, budget, stream or sys.stderr
        self.sections: dict[str, tuple[str, int]] = {}  # cell id -> (section, code cells before this one)
        section, code_cells = "start", 0
        for cell in notebook.cells:
            if cell.cell_type == "markdown" and cell.source.startswith("## "):
                section = cell.source.splitlines()[0][3:].strip()
            self.sections[cell.get("id", "")] = (section, code_cells)
            code_cells += cell.cell_type == "code"
        self.total = code_cells
        self.done, self.section, self.started = 0, "start", time.perf_counter()
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._stop = threading.Event()
        if self.live:
            threading.Thread(target=self._tick, daemon=True).start()

    def text(self) -> str:
        elapsed = time.perf_counter() - self.started
        return (f"{self.name}: {self.done}/{self.total} cells done · {self.section[:48]} · {_clock(elapsed)} of a "
                f"{_clock(self.budget)} budget")

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.stream.write("\r\033[K" + self.text())
            self.stream.flush()

    def cell_started(self, cell: nbformat.NotebookNode, cell_index: int) -> None:
        """nbclient's on_cell_start hook (called for every cell, markdown included)."""
        section, self.done = self.sections.get(cell.get("id", ""), (self.section, self.done))  # papermill's own
        if section != self.section:                                                              # cell is unknown
            self.section = section
            if not self.live:
                print(self.text(), file=self.stream, flush=True)

    def close(self, status: str, seconds: float) -> None:
        self._stop.set()
        prefix = "\r\033[K" if self.live else ""
        print(f"{prefix}{self.name}: {status} in {_clock(seconds)} (budget {_clock(self.budget)})", file=self.stream,
              flush=True)


def _budget(profile: str) -> float:
    return BUDGET_SECONDS["standard" if profile == "auto" else profile]


def run_notebook(name: str, profile: str, runs: Path, notebooks: Path, time_limit: float | None = None) -> Result:
    """Execute ``notebooks/<name>.ipynb`` into ``runs/<name>.ipynb`` and read the metrics it wrote."""
    metrics_path(name, runs).unlink(missing_ok=True)  # never report a previous run's numbers
    source = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
    line = ProgressLine(name, source, time_limit or _budget(profile))
    start = time.perf_counter()
    deadline = None if time_limit is None else start + time_limit
    status, error = "ok", None

    def cell_timeout(cell) -> int:
        if deadline is None:
            return CELL_TIMEOUT
        return max(1, min(CELL_TIMEOUT, int(deadline - time.perf_counter())))

    try:
        # A saved notebook cannot update a progress bar, so headless runs hide them unless asked.
        progress_setting = os.environ.get("TUTORLIB_PROGRESS", "0")
        with _environment(TUTORLIB_RUNS=str(runs.resolve()), TUTORLIB_PROGRESS=progress_setting):
            papermill.execute_notebook(
                str(notebooks / f"{name}.ipynb"), str(runs / f"{name}.ipynb"), parameters={"profile": profile},
                kernel_name="python3", cwd=str(repo_root()), progress_bar=False, execution_timeout=CELL_TIMEOUT,
                on_cell_start=line.cell_started, timeout_func=cell_timeout)
    except KeyboardInterrupt:
        line.close("interrupted", time.perf_counter() - start)
        raise
    except Exception as failure:  # a failing notebook must not stop the others
        timed_out = deadline is not None and time.perf_counter() >= deadline - 1
        status, error = ("timed out" if timed_out else "failed"), _first_line(failure)
    metrics = None
    try:
        metrics = load_metrics(name, runs)
    except (OSError, ValueError) as problem:
        status, error = "failed", f"{metrics_path(name, runs).name} is unreadable: {problem}"
    if status == "ok" and metrics is None:
        status, error = "failed", f"{name} wrote no {metrics_path(name, runs).name}"
    seconds = time.perf_counter() - start
    line.close(status, seconds)
    return Result(name, status, seconds, error, metrics)


def run_notebooks(names: Sequence[str], profile: str, runs: Path, notebooks: Path | None = None,
                  time_limit: float | None = None) -> list[Result]:
    """Run the notebooks one after another. A failure is recorded and the next one still runs; Ctrl-C marks the
    running notebook interrupted and the rest not run, and ends the run (``Interrupted`` carries the results)."""
    notebooks, runs = Path(notebooks or notebooks_dir()), Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    for index, name in enumerate(names):
        try:
            results.append(run_notebook(name, profile, runs, notebooks, time_limit))
        except KeyboardInterrupt:
            results.append(Result(name, "interrupted", 0.0, "stopped by Ctrl-C"))
            results += [Result(rest, "not run", 0.0) for rest in names[index + 1 :]]
            raise Interrupted(results) from None
    return results


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``results`` holds what was done."""

    def __init__(self, results: list[Result]):
        super().__init__("run interrupted")
        self.results = results


def _format_value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(results: Sequence[Result], *, command: str, when: datetime, interrupted: bool = False,
                     estimates: dict | None = None) -> str:
    """The run summary as markdown: one row per notebook (over-budget runs flagged), then the failures."""
    lines = ["# Notebook runs", "", f"Run on {when.isoformat(timespec='seconds')} with `{command}`."]
    if interrupted:
        lines.append("**The run was interrupted (Ctrl-C): the table is incomplete.**")
    estimate_column = " estimated |" if estimates else ""
    lines += ["", f"| notebook | status | wall time | budget |{estimate_column} profile | device | claim held | headline |",
              "|---" * (8 + bool(estimates)) + "|"]
    for result in results:
        metrics = result.metrics or {}
        budget = metrics.get("budget_seconds")
        over = budget is not None and result.seconds > budget
        headline = ", ".join(f"{key} = {_format_value(value)}" for key, value in metrics.get("headline", {}).items())
        held = (metrics.get("claim") or {}).get("held")
        row = [result.name, result.status, f"{result.seconds:.1f} s" + (" **over budget**" if over else ""),
               f"{budget} s" if budget is not None else "-"]
        if estimates:
            estimated = estimates.get(result.name)
            row.append(f"{estimated:.0f} s" if estimated is not None else "-")
        row += [metrics.get("profile", "-"), metrics.get("device", "-"),
                "-" if held is None else ("yes" if held else "no"), headline or "-"]
        lines.append("| " + " | ".join(_cell(item) for item in row) + " |")
    failures = [result for result in results if result.error]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {result.name} ({result.status}): {result.error}" for result in failures]
    return "\n".join(lines) + "\n"


def _write_summary(runs: Path, results: Sequence[Result], command: str, interrupted: bool = False,
                   estimates: dict | None = None) -> str:
    summary = summary_markdown(results, command=command, when=datetime.now(timezone.utc), interrupted=interrupted,
                               estimates=estimates)
    with atomic_write(Path(runs) / "summary.md") as temporary:
        temporary.write_text(summary)
    return summary


def _run_estimate(names: Sequence[str], runs: Path, notebooks: Path) -> tuple[list[Result], dict]:
    """Every notebook under dry with its stages recorded; the estimate of full written to runs/estimate.*."""
    dry = runs / "dry"
    records = {}
    results = []
    for name in names:
        stages_file = dry / f"{name}.stages.jsonl"
        stages_file.unlink(missing_ok=True)
        with _environment(**{STAGES_VARIABLE: str(stages_file.resolve())}):
            results += run_notebooks([name], "dry", dry, notebooks)
        records[name] = read_records(stages_file)
    result = estimate(records)
    (runs / "estimate.json").write_text(json.dumps(result, indent=1) + "\n")
    (runs / "estimate.md").write_text(estimate_markdown(result))
    return results, result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when a notebook failed or none was found)."""
    parser = argparse.ArgumentParser(prog="python -m tutorlib.runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="auto", choices=("auto", *PROFILES))
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes, e.g. 00 03")
    parser.add_argument("--runs", type=Path, default=None, help="output folder (default: runs/)")
    parser.add_argument("--notebooks", type=Path, default=None, help="input folder (default: notebooks/)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--estimate", action="store_true", help="run every notebook under dry and estimate full")
    mode.add_argument("--gpu-check", action="store_true", help="run every notebook under full, each time-limited")
    arguments = parser.parse_args(argv)
    notebooks = arguments.notebooks or notebooks_dir()
    names = find_notebooks(notebooks, arguments.only)
    if not names:
        print(f"no notebooks in {notebooks} match --only {arguments.only}", file=sys.stderr)
        return 1
    runs = Path(arguments.runs or runs_dir())
    runs.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python -m tutorlib.runner", *(sys.argv[1:] if argv is None else argv)])
    try:
        if arguments.estimate:
            results, result = _run_estimate(names, runs, notebooks)
            _write_summary(runs / "dry", results, command)
            print(estimate_markdown(result))
            return 0 if all(r.ok for r in results) else 1
        estimates = None
        if arguments.gpu_check:
            estimate_file = runs / "estimate.json"
            if estimate_file.is_file():
                estimates = {n: v["seconds"] for n, v in json.loads(estimate_file.read_text())["notebooks"].items()}
            results = run_notebooks(names, "full", runs, notebooks, time_limit=GPU_CHECK_LIMIT)
        else:
            results = run_notebooks(names, arguments.profile, runs, notebooks)
    except Interrupted as stop:
        print(_write_summary(runs, stop.results, command, interrupted=True, estimates=None))
        return 130
    print(_write_summary(runs, results, command, estimates=estimates))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
