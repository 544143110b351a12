"""Execute every notebook headlessly and summarise the runs: ``python -m tutorlib.runner``.

Each notebook is executed with papermill into ``runs/<name>.ipynb``; ``runs/summary.md`` lists its
status, wall time, profile, device and headline metrics (from ``runs/<name>.metrics.json``).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError

from tutorlib.paths import notebooks_dir, repo_root, runs_dir
from tutorlib.profiles import PROFILES
from tutorlib.report import load_metrics, metrics_path


@dataclass
class Result:
    """How one notebook run went.

    Introduced in notebook 00_shapes_world.
    """

    name: str
    ok: bool
    seconds: float
    error: str | None = None
    metrics: dict | None = None


def find_notebooks(folder: Path, only: Sequence[str] = ()) -> list[str]:
    """Names of the notebooks in ``folder``, sorted, kept when they start with one of ``only``.

    Introduced in notebook 00_shapes_world.
    """
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


def _first_line(error: Exception) -> str:
    if isinstance(error, PapermillExecutionError):
        return f"{error.ename}: {error.evalue}".splitlines()[0]
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


# Seconds one cell may run before the notebook fails (a hung kernel must not stall a whole run).
CELL_TIMEOUT = 1800


def run_notebooks(
    names: Sequence[str], profile: str, runs: Path, notebooks: Path | None = None
) -> list[Result]:
    """Execute ``notebooks/<name>.ipynb`` for each name into ``runs/<name>.ipynb``, one after another.

    A failure is recorded (its error's first line) and the next notebook still runs.

    Introduced in notebook 00_shapes_world.
    """
    notebooks = Path(notebooks or notebooks_dir())
    runs = Path(runs)
    runs.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        metrics_path(name, runs).unlink(missing_ok=True)  # never report a previous run's numbers
        start = time.perf_counter()
        error = None
        try:
            # A saved notebook cannot update a progress bar, so headless runs hide them unless asked.
            progress_setting = os.environ.get("TUTORLIB_PROGRESS", "0")
            with _environment(TUTORLIB_RUNS=str(runs.resolve()), TUTORLIB_PROGRESS=progress_setting):
                papermill.execute_notebook(
                    str(notebooks / f"{name}.ipynb"),
                    str(runs / f"{name}.ipynb"),
                    parameters={"profile": profile},
                    kernel_name="python3",
                    cwd=str(repo_root()),
                    progress_bar=False,
                    execution_timeout=CELL_TIMEOUT,
                )
        except Exception as failure:  # a failing notebook must not stop the others
            error = _first_line(failure)
        result = Result(name, error is None, time.perf_counter() - start, error, load_metrics(name, runs))
        print(f"{name}: {'ok' if result.ok else 'failed'} ({result.seconds:.1f} s)", flush=True)
        results.append(result)
    return results


def _format_value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_markdown(results: Sequence[Result], *, command: str, when: datetime) -> str:
    """The run summary as markdown: one table row per notebook, then the failures' errors.

    Introduced in notebook 00_shapes_world.
    """
    lines = [
        "# Notebook runs",
        "",
        f"Run on {when.isoformat(timespec='seconds')} with `{command}`.",
        "",
        "| notebook | status | wall time | profile | device | headline |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        metrics = result.metrics or {}
        headline = ", ".join(
            f"{key} = {_format_value(value)}" for key, value in metrics.get("headline", {}).items()
        )
        row = [
            result.name,
            "ok" if result.ok else "failed",
            f"{result.seconds:.1f} s",
            metrics.get("profile", "-"),
            metrics.get("device", "-"),
            headline or "-",
        ]
        lines.append("| " + " | ".join(_cell(item) for item in row) + " |")
    failures = [result for result in results if not result.ok]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {result.name}: {result.error}" for result in failures]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status (1 when a notebook failed or none was found).

    Introduced in notebook 00_shapes_world.
    """
    parser = argparse.ArgumentParser(prog="python -m tutorlib.runner", description=__doc__)
    parser.add_argument("--profile", default="auto", choices=("auto", *PROFILES))
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes, e.g. 00 03")
    parser.add_argument("--runs", type=Path, default=None, help="output folder (default: runs/)")
    parser.add_argument("--notebooks", type=Path, default=None, help="input folder (default: notebooks/)")
    arguments = parser.parse_args(argv)
    notebooks = arguments.notebooks or notebooks_dir()
    names = find_notebooks(notebooks, arguments.only)
    if not names:
        print(f"no notebooks in {notebooks} match --only {arguments.only}", file=sys.stderr)
        return 1
    runs = arguments.runs or runs_dir()
    results = run_notebooks(names, arguments.profile, runs, notebooks)
    command = " ".join(["python -m tutorlib.runner", *(sys.argv[1:] if argv is None else argv)])
    summary = summary_markdown(results, command=command, when=datetime.now(timezone.utc))
    (Path(runs) / "summary.md").write_text(summary)
    print(summary)
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
