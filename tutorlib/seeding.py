"""One helper fixes every random number generator a notebook touches."""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed python's ``random``, numpy and torch (all cuda devices included).

    Returns a CPU ``torch.Generator`` seeded with ``seed``: diffusion sampling draws its noise from it,
    so samples match across devices.

    Introduced in notebook 00_shapes_world.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every cuda device
    return torch.Generator(device="cpu").manual_seed(seed)
