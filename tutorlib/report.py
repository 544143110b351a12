"""What a notebook run leaves behind: wall time per stage and ``runs/<notebook>.metrics.json``."""
from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tutorlib.cache import to_json_value
from tutorlib.paths import atomic_write, runs_dir


class StageTimer:
    """Wall seconds per named stage: ``with timer.stage("train"): ...``; a repeated name adds up.

    Introduced in notebook 00_shapes_world.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

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


def metrics_path(notebook: str, runs: Path | None = None) -> Path:
    """``<runs>/<notebook>.metrics.json``, with ``runs_dir()`` as the default folder.

    Introduced in notebook 00_shapes_world.
    """
    return (runs or runs_dir()) / f"{notebook.removesuffix('.ipynb')}.metrics.json"


def save_metrics(
    notebook: str,
    *,
    profile: str,
    device: Any,
    seeds: Any,
    stage_seconds: Mapping[str, float],
    metrics: Mapping[str, Any],
    headline: Mapping[str, Any],
    claim: str,
    claim_held: bool | None,
) -> Path:
    """Write the run's record to ``runs_dir()/<notebook>.metrics.json`` (atomically) and return its path.

    ``headline`` holds the few numbers shown in the run summary; ``claim`` states the paper's claim
    and ``claim_held`` whether this run reproduced it (None when the profile cannot tell).

    Introduced in notebook 00_shapes_world.
    """
    record = {
        "notebook": notebook.removesuffix(".ipynb"),
        "profile": profile,
        "device": str(device),
        "seeds": seeds,
        "stage_seconds": dict(stage_seconds),
        "wall_seconds": sum(stage_seconds.values()),
        "metrics": dict(metrics),
        "headline": dict(headline),
        "claim": {"statement": claim, "held": claim_held},
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    path = metrics_path(notebook)
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(to_json_value(record, "metrics record"), indent=2) + "\n")
    return path


def load_metrics(notebook: str, runs: Path | None = None) -> dict | None:
    """The record ``save_metrics`` wrote for ``notebook``, or None when there is none.

    Introduced in notebook 00_shapes_world.
    """
    path = metrics_path(notebook, runs)
    return json.loads(path.read_text()) if path.is_file() else None
