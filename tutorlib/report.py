"""What a notebook run leaves behind, and the one rule that decides whether a paper's claim held.

A notebook starts with ``start_run`` (device, threads, profile, seeds, a stage timer) and ends with
``NotebookRun.finish``, which writes ``runs/<notebook>.metrics.json``, prints the wall time against the profile's
budget and, as its last line, ``claim held: yes|no — <the claim>``.
"""
from __future__ import annotations

import contextlib
import json
import math
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from tutorlib.cache import to_json_value
from tutorlib.device import configure, describe_device, pick_device, set_threads
from tutorlib.paths import atomic_write, runs_dir
from tutorlib.profiles import BUDGET_SECONDS, by_profile, resolve_profile
from tutorlib.seeding import seed_everything

# The claim rule, the same for every notebook.
MIN_SEEDS = 3
CONFIDENCE = 0.95
CLAIM_RULE = (
    f"A claim holds when its paired per-seed differences (the method minus its baseline on the same seed and data, "
    f"signed so that a positive value supports the claim) come from at least {MIN_SEEDS} seeds and the one-sided "
    f"{CONFIDENCE:.0%} lower confidence bound of their mean (Student's t, n - 1 degrees of freedom) is above zero. "
    f"A claim with several parts holds when every part holds."
)


class StageTimer:
    """Wall seconds per named stage: ``with timer.stage("train"): ...``; a repeated name adds up.

    ``elapsed`` is the wall time since the timer was made, stages or not.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body of the ``with`` block under ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    @property
    def total(self) -> float:
        """Seconds over all stages."""
        return sum(self.seconds.values())

    @property
    def elapsed(self) -> float:
        """Wall seconds since the timer was made."""
        return time.perf_counter() - self.started


def _student_t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom, by Simpson's rule on its density:
    f(x) = Γ((ν+1)/2) / (√(νπ) Γ(ν/2)) · (1 + x²/ν)^(-(ν+1)/2),  F(t) = 1/2 + ∫₀ᵗ f(x) dx."""
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(x: float) -> float:
        return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))

    intervals = 4000
    h = abs(t) / intervals
    total = density(0.0) + density(abs(t))
    total += sum((4 if k % 2 else 2) * density(k * h) for k in range(1, intervals))
    area = total * h / 3
    return 0.5 + math.copysign(area, t)


def student_t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p for Student's t with ``df`` degrees of freedom (bisection on the cdf)."""
    if not 0.5 <= p < 1 or df < 1:
        raise ValueError(f"need 0.5 <= p < 1 and df >= 1, got p={p}, df={df}")
    low, high = 0.0, 1.0
    while _student_t_cdf(high, df) < p:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if _student_t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class Comparison:
    """One part of a claim: per-seed paired differences and the verdict of ``CLAIM_RULE`` on them."""

    name: str
    differences: dict[int, float]  # seed -> method minus baseline, positive supports the claim

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.differences.values()) if self.differences else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (NaN with fewer than 2)."""
        return statistics.stdev(self.differences.values()) if self.n >= 2 else math.nan

    @property
    def lower(self) -> float:
        """One-sided ``CONFIDENCE`` lower bound of the mean: mean - t(CONFIDENCE, n-1) · std / √n."""
        if self.n < 2:
            return math.nan
        return self.mean - student_t_quantile(CONFIDENCE, self.n - 1) * self.std / math.sqrt(self.n)

    @property
    def held(self) -> bool:
        return self.n >= MIN_SEEDS and self.lower > 0

    @property
    def reason(self) -> str:
        if self.n < MIN_SEEDS:
            return f"{self.n} seed(s): the rule needs at least {MIN_SEEDS}"
        bound = f"mean {self.mean:+.3g}, {CONFIDENCE:.0%} lower bound {self.lower:+.3g}"
        return f"{bound} > 0" if self.held else f"{bound} <= 0"

    def to_dict(self) -> dict:
        return {"name": self.name, "differences": {str(k): v for k, v in self.differences.items()}, "n": self.n,
                "mean": self.mean, "std": self.std, "lower": self.lower, "held": self.held, "reason": self.reason}


def compare(name: str, method: Mapping[int, float], baseline: Mapping[int, float],
            higher_is_better: bool = True) -> Comparison:
    """The paired comparison of ``method`` and ``baseline`` (seed -> value) over the seeds both have."""
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        raise ValueError(f"{name}: method and baseline share no seed ({sorted(method)} vs {sorted(baseline)})")
    sign = 1.0 if higher_is_better else -1.0
    return Comparison(name, {s: sign * (float(method[s]) - float(baseline[s])) for s in seeds})


@dataclass(frozen=True)
class Check:
    """A part of a claim that is an exact property rather than a statistic (a round trip, a determinism test)."""

    name: str
    held: bool
    reason: str

    def to_dict(self) -> dict:
        return {"name": self.name, "held": self.held, "reason": self.reason}


@dataclass(frozen=True)
class Claim:
    """A paper's claim as measured here: held when every part holds (``CLAIM_RULE`` for the comparisons)."""

    statement: str
    comparisons: tuple[Comparison | Check, ...]

    def __post_init__(self) -> None:
        if not self.comparisons:
            raise ValueError(f"claim {self.statement!r} has no comparison to decide it")

    @property
    def held(self) -> bool:
        return all(c.held for c in self.comparisons)

    @property
    def line(self) -> str:
        return f"claim held: {'yes' if self.held else 'no'} — {self.statement}"

    def table(self) -> str:
        """The comparisons as a markdown table: differences per seed, mean ± std, lower bound, verdict."""
        rows = ["| comparison | per seed | mean ± std | lower bound | holds |", "|---|---|---|---|---|"]
        for c in self.comparisons:
            verdict = f"{'yes' if c.held else 'no'} ({c.reason})"
            if isinstance(c, Check):
                rows.append(f"| {c.name} | - | - | - | {verdict} |")
                continue
            per_seed = ", ".join(f"{v:+.3g}" for v in c.differences.values())
            rows.append(f"| {c.name} | {per_seed} | {c.mean:+.3g} ± {c.std:.2g} | {c.lower:+.3g} | {verdict} |")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return {"statement": self.statement, "held": self.held, "rule": CLAIM_RULE,
                "comparisons": [c.to_dict() for c in self.comparisons]}


def metrics_path(notebook: str, runs: Path | None = None) -> Path:
    """``<runs>/<notebook>.metrics.json``, with ``runs_dir()`` as the default folder."""
    return (runs or runs_dir()) / f"{notebook.removesuffix('.ipynb')}.metrics.json"


def save_metrics(notebook: str, *, profile: str, device: Any, seeds: Any, stage_seconds: Mapping[str, float],
                 metrics: Mapping[str, Any], headline: Mapping[str, Any], claim: Claim | str,
                 wall_seconds: float | None = None, claim_held: bool | None = None) -> Path:
    """Write the run's record to ``runs_dir()/<notebook>.metrics.json`` (atomically) and return its path.

    ``headline`` holds the few numbers shown in the run summary; ``claim`` the paper's claim and its verdict.
    """
    budget = BUDGET_SECONDS[profile]
    wall_seconds = sum(stage_seconds.values()) if wall_seconds is None else wall_seconds  # TRANSITION
    claim_record = claim.to_dict() if isinstance(claim, Claim) else {"statement": claim, "held": claim_held}
    record = {
        "notebook": notebook.removesuffix(".ipynb"),
        "profile": profile,
        "device": str(device),
        "seeds": seeds,
        "stage_seconds": dict(stage_seconds),
        "wall_seconds": wall_seconds,
        "budget_seconds": budget,
        "over_budget": wall_seconds > budget,
        "metrics": dict(metrics),
        "headline": dict(headline),
        "claim": claim_record,
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = metrics_path(notebook)
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(to_json_value(record, "metrics record"), indent=2) + "\n")
    return path


def load_metrics(notebook: str, runs: Path | None = None) -> dict | None:
    """The record ``save_metrics`` wrote for ``notebook``, or None when there is none."""
    path = metrics_path(notebook, runs)
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class NotebookRun:
    """One notebook's run: its profile, device, seeds and stage timer; ``finish`` writes the record."""

    notebook: str
    profile: str
    device: torch.device
    seeds: list[int]
    threads: int
    timer: StageTimer = field(default_factory=StageTimer)

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @property
    def budget_seconds(self) -> int:
        return BUDGET_SECONDS[self.profile]

    def stage(self, name: str) -> contextlib.AbstractContextManager:
        """Time a stage: ``with run.stage("train"): ...``."""
        return self.timer.stage(name)

    def finish(self, *, metrics: Mapping[str, Any], headline: Mapping[str, Any], claim: Claim) -> Path:
        """Write ``runs/<notebook>.metrics.json``; print the stage times, the wall time against the budget, the
        claim's comparisons and, last, ``claim held: yes|no — <the claim>``."""
        wall = self.timer.elapsed
        path = save_metrics(self.notebook, profile=self.profile, device=describe_device(self.device),
                            seeds=self.seeds, stage_seconds=self.timer.seconds, wall_seconds=wall, metrics=metrics,
                            headline=headline, claim=claim)
        print("stage times:", ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.timer.seconds.items()))
        over = " (over budget)" if wall > self.budget_seconds else ""
        print(f"wall time {wall / 60:.1f} min; the {self.profile} budget is {self.budget_seconds / 60:.0f} min{over}")
        print(f"wrote {path.name}")
        print(claim.table())
        print(claim.line)
        return path


def start_run(notebook: str, *, profile: str = "auto", device: str = "auto", seed: int = 0, n_seeds: int = 0,
              threads: int = 0) -> NotebookRun:
    """Set up a notebook run: the device (``pick_device``), torch's CPU threads (``set_threads``; 0 = every
    core), the profile (``resolve_profile``), the seeds (``n_seeds`` consecutive from ``seed``; 0 means the
    profile's default: 1 for smoke and dry, ``MIN_SEEDS`` otherwise), every random generator seeded, a timer."""
    if seed < 0 or n_seeds < 0:
        raise ValueError(f"seed and n_seeds must be >= 0, got seed={seed}, n_seeds={n_seeds}")
    chosen = pick_device(device)
    configure(chosen)
    used_threads = set_threads(threads) if chosen.type == "cpu" else torch.get_num_threads()
    profile = resolve_profile(profile, chosen)
    n_seeds = n_seeds or by_profile(profile, smoke=1, standard=MIN_SEEDS, full=MIN_SEEDS, dry=1)
    run = NotebookRun(notebook.removesuffix(".ipynb"), profile, chosen, [seed + k for k in range(n_seeds)],
                      used_threads)
    seed_everything(seed)
    print(f"profile {profile}, device {describe_device(chosen)}, seeds {run.seeds}, "
          f"budget {run.budget_seconds / 60:.0f} min")
    return run


def seeds_table(values: Mapping[str, Mapping[int, float]], digits: int = 1) -> str:
    """A markdown table of per-seed values (row name -> seed -> value) with their mean ± std."""
    seeds = sorted({s for row in values.values() for s in row})
    rows = ["| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std |", "|---" * (len(seeds) + 2) + "|"]
    for name, row in values.items():
        numbers = [row[s] for s in seeds if s in row]
        spread = statistics.stdev(numbers) if len(numbers) >= 2 else math.nan
        cells = [f"{row[s]:.{digits}f}" if s in row else "-" for s in seeds]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.fmean(numbers):.{digits}f} ± "
                    f"{spread:.{digits}f} |")
    return "\n".join(rows)


__all__ = ["CLAIM_RULE", "Check", "Claim", "Comparison", "NotebookRun", "StageTimer", "compare", "load_metrics",
           "metrics_path", "save_metrics", "seeds_table", "start_run", "student_t_quantile"]

