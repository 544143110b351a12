"""Run profiles: how big and how long a notebook run is.

``smoke`` checks that every stage runs (CI), ``standard`` measures the paper's claim on a CPU,
``full`` uses larger images and models on a GPU.
"""
from __future__ import annotations

import os
from typing import TypeVar

import torch

PROFILES = ("smoke", "standard", "full")

T = TypeVar("T")


def _check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {PROFILES}")
    return profile


def resolve_profile(profile: str = "auto", device: torch.device | str | None = None) -> str:
    """The profile to run under.

    ``$TUTORLIB_PROFILE``, when set, overrides everything (nbval cannot inject parameters).
    ``"auto"`` means ``"full"`` on a cuda device and ``"standard"`` elsewhere.

    Introduced in notebook 00_shapes_world.
    """
    profile = os.environ.get("TUTORLIB_PROFILE") or profile
    if profile == "auto":
        on_cuda = device is not None and torch.device(device).type == "cuda"
        return "full" if on_cuda else "standard"
    return _check_profile(profile)


def by_profile(profile: str, *, smoke: T, standard: T, full: T) -> T:
    """The value given for ``profile``, e.g. ``by_profile(p, smoke=50, standard=2000, full=8000)``.

    Introduced in notebook 00_shapes_world.
    """
    return {"smoke": smoke, "standard": standard, "full": full}[_check_profile(profile)]
