"""Run profiles: how big and how long a notebook run is.

- ``smoke``: checks that every stage runs (CI); tiny models, a few steps, little data.
- ``standard``: measures the paper's claim on a CPU, on top of the shipped pretrained bases.
- ``full``: the GPU profile; every shipped base is trained from scratch, with larger images and models.
- ``dry``: ``full``'s models, image sizes and batch sizes with ``smoke``'s data amounts, and every training stops
  after ``DRY_STEPS`` steps (``tutorlib.training.train_loop`` enforces it). It proves the GPU path on a CPU and
  records what one ``full`` step costs (``tutorlib.stages``).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

import torch

PROFILES = ("smoke", "standard", "full", "dry")
# Steps each training runs under `dry`: one to measure, one to show that a second step works.
DRY_STEPS = 2
# Budget of one notebook, in seconds: smoke and standard on a 2-core CPU, full and dry as stated in DESIGN.md
# (full: all six notebooks in 12 minutes on one H100-class GPU).
BUDGET_SECONDS = {"smoke": 120, "standard": 900, "full": 120, "dry": 300}

T = TypeVar("T")
_active: str | None = None


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {PROFILES}")
    return profile


def resolve_profile(profile: str = "auto", device: torch.device | str | None = None) -> str:
    """The profile to run under, remembered as the active one (``active_profile``).

    ``$TUTORLIB_PROFILE``, when set, overrides everything (nbval cannot inject parameters).
    ``"auto"`` means ``"full"`` on a cuda device and ``"standard"`` elsewhere.
    """
    global _active
    profile = os.environ.get("TUTORLIB_PROFILE") or profile
    if profile == "auto":
        on_cuda = device is not None and torch.device(device).type == "cuda"
        profile = "full" if on_cuda else "standard"
    _active = _check_profile(profile)
    return _active


def active_profile() -> str | None:
    """The profile the last ``resolve_profile`` call chose in this process (None before any call)."""
    return _active


def by_profile(profile: str, *, smoke: T, standard: T, full: T, dry: T | None = None) -> T:
    """The value given for ``profile``, e.g. ``by_profile(p, smoke=50, standard=2000, full=8000)``.

    ``dry`` takes ``full``'s value unless ``dry`` is given: pass ``dry=<smoke's value>`` for data amounts.
    """
    values = {"smoke": smoke, "standard": standard, "full": full, "dry": full if dry is None else dry}
    return values[_check_profile(profile)]


def dry_from(full: T, smoke: Any, *data_fields: str) -> T:
    """The ``dry`` config: ``full`` (a dataclass) with the named data-amount fields taken from ``smoke``.

    A dotted name reaches into a nested config: ``dry_from(full, smoke, "n_pairs", "gan.pool")``. Step counts stay
    ``full``'s (``train_loop`` stops after ``DRY_STEPS``), so a ``dry`` run records what ``full`` would cost.
    """
    nested: dict[str, list[str]] = {}
    for name in data_fields:
        head, _, rest = name.partition(".")
        if head not in {f.name for f in dataclasses.fields(full)}:
            raise ValueError(f"{type(full).__name__} has no field {head!r} (in {name!r})")
        nested.setdefault(head, []).append(rest)
    changes = {head: getattr(smoke, head) if "" in rests else dry_from(getattr(full, head), getattr(smoke, head), *rests)
               for head, rests in nested.items()}
    return dataclasses.replace(full, **changes)
