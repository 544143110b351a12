"""Scenes for the VisMin pipeline and its models, each use drawing from its own seed stream.

Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from tutorlib.world.render import Rendering, render
from tutorlib.world.sampling import sample_scenes
from tutorlib.world.scene import Scene
from tutorlib.world.views.common import VIEW_VISMIN_PIPELINE, item_seeds

# One stream per use, so the grounding model never trains on the pipeline's source images.
ROLES = {"sources": 0, "grounding-train": 1, "grounding-test": 2, "vqa-train": 3, "vqa-test": 4, "inpaint-train": 5,
         "inpaint-test": 6}
N_OBJECTS = (3, 6)


def rendered_scenes(seed: int, role: str, indices: Sequence[int], size: int,
                    device: torch.device | str = "cpu") -> tuple[list[Scene], Rendering]:
    """Scene graphs and renderings of items `indices` of the stream (seed, role); the same item is always the
    same scene. Introduced in notebook 04_vismin_minimal_change."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {list(ROLES)}")
    batch = sample_scenes(item_seeds(seed, np.asarray(indices), VIEW_VISMIN_PIPELINE, ROLES[role]), N_OBJECTS)
    return batch.scenes(), render(batch, size, device)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, 3, S, S) -> float in [-1, 1]. Introduced in notebook 04_vismin_minimal_change."""
    return images.float() / 127.5 - 1.0
