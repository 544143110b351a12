"""How close each notebook's training stages come to what this CPU can do: ``python -m tutorlib.bench``.

Each notebook runs under ``standard`` with every training capped at a few steps (``$TUTORLIB_STEP_CAP``) while
``train_loop`` records each stage's first step (FLOPs, samples) and times the later ones (``tutorlib.stages``).
The machine's peak is a large float32 matrix product timed in the same run with the same threads. Per stage:

    samples/s = samples per step / seconds per step
    FLOP/s    = FLOPs per step / seconds per step       (forward and backward, counted by FlopCounterMode)
    ratio     = FLOP/s / peak FLOP/s

Ratios, not absolute times, compare across machines. ``--threads 1 2`` repeats everything per thread count.
The notebooks' other work (rendering, evaluation) runs at full size, so a pass takes minutes per notebook.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from tutorlib.paths import notebooks_dir, runs_dir
from tutorlib.runner import _environment, find_notebooks, run_notebooks
from tutorlib.stages import STAGES_VARIABLE, STEP_CAP_VARIABLE, read_records


def matmul_peak(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the fastest of ``repeats`` float32 products of two n×n matrices (2·n³ FLOPs each)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
        return 2 * n**3 / best
    finally:
        torch.set_num_threads(before)


def rows_for(records: Sequence[dict], notebook: str, threads: int, peak: float) -> list[dict]:
    """One row per recorded stage that has timed steps."""
    rows = []
    for record in records:
        seconds = record.get("seconds_per_step")
        if not seconds:
            continue
        flops_per_second = record["flops"] / seconds
        rows.append({"notebook": notebook, "stage": record["stage"], "threads": threads,
                     "samples_per_step": record["samples"], "samples_per_second": record["samples"] / seconds,
                     "gflops_per_second": flops_per_second / 1e9, "ratio_to_peak": flops_per_second / peak,
                     "seconds_per_step": seconds})
    return rows


def bench_markdown(rows: Sequence[dict], peaks: dict[int, float]) -> str:
    """The benchmark as markdown: the peaks, then one row per stage and thread count."""
    lines = ["Matrix-product peak: " + ", ".join(f"{t} thread(s) {p / 1e9:.1f} GFLOP/s" for t, p in peaks.items()),
             "", "| notebook | stage | threads | samples/step | samples/s | GFLOP/s | % of peak |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['notebook']} | {row['stage']} | {row['threads']} | {row['samples_per_step']} | "
                     f"{row['samples_per_second']:.1f} | {row['gflops_per_second']:.2f} | "
                     f"{100 * row['ratio_to_peak']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tutorlib.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=[], help="notebook name prefixes, e.g. 01 05")
    parser.add_argument("--steps", type=int, default=6, help="steps per training stage (the first is not timed)")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--runs", type=Path, default=None, help="output folder (default: runs/bench)")
    parser.add_argument("--notebooks", type=Path, default=None, help="input folder (default: notebooks/)")
    arguments = parser.parse_args(argv)
    if arguments.steps < 2:
        parser.error("--steps must be at least 2: the first step is measured, the others timed")
    runs = Path(arguments.runs or runs_dir() / "bench")
    notebooks = arguments.notebooks or notebooks_dir()
    names = find_notebooks(notebooks, arguments.only)
    rows, peaks = [], {}
    for threads in arguments.threads:
        peaks[threads] = matmul_peak(threads)
        for name in names:
            folder = runs / f"threads-{threads}"
            stages_file = folder / f"{name}.stages.jsonl"
            stages_file.parent.mkdir(parents=True, exist_ok=True)
            stages_file.unlink(missing_ok=True)
            with _environment(**{STAGES_VARIABLE: str(stages_file.resolve()), STEP_CAP_VARIABLE: str(arguments.steps),
                                 "TUTORLIB_THREADS": str(threads)}):
                [result] = run_notebooks([name], "standard", folder, notebooks)
            if not result.ok:
                print(f"{name} failed under the benchmark: {result.error}", file=sys.stderr)
            rows += rows_for(read_records(stages_file), name, threads, peaks[threads])
    (runs / "bench.json").write_text(json.dumps({"peaks": peaks, "rows": rows}, indent=1) + "\n")
    text = bench_markdown(rows, peaks)
    (runs / "bench.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
