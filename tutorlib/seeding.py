"""One helper fixes every random number generator a notebook touches."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed python's ``random``, numpy and torch (all cuda devices included).

    Returns a CPU ``torch.Generator`` seeded with ``seed``: diffusion sampling draws its noise from it,
    so samples match across devices.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every cuda device
    return torch.Generator(device="cpu").manual_seed(seed)


# Seeds of consecutive steps of different runs never meet while a run has fewer steps than this.
STEP_STRIDE = 1_000_003


def step_seed(seed: int, step: int) -> int:
    """The seed of step ``step`` of the run seeded ``seed``: ``seed * STEP_STRIDE + step``.

    Every step draws from its own stream, so a resumed run draws what an uninterrupted one would.
    """
    if seed < 0 or step < 0:
        raise ValueError(f"seed and step must be >= 0, got seed={seed}, step={step}")
    return seed * STEP_STRIDE + step


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded with ``step_seed(seed, step)``."""
    return torch.Generator().manual_seed(step_seed(seed, step))
