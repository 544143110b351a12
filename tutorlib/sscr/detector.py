"""The evaluation detector of GeNeVA: which of the 24 entities an image shows, and where.

Trained on ground-truth canvases of the world; its own accuracy is measured against the exact scene graphs.
Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tutorlib.world.attributes import ENTITIES

THRESHOLD = 0.5  # an entity is detected when its probability exceeds this
COORD_SCALE = 128.0  # i-CLEVR coordinates are in 128ths of the image
COORD_WEIGHT = 10.0  # weight of the localisation loss


class Detector(nn.Module):
    """A small fully convolutional detector: a map of 24 entity logits on a grid of size / 4 cells;
    presence = the largest logit of each map, position = the soft-argmax of the map (the softmax-weighted
    mean of the cell centres), as (column, row) in [0, 1].

    Introduced in notebook 01_sscr_iterative_editing.
    """

    def __init__(self, image_size: int, channels: int = 32):
        super().__init__()
        c = channels
        block = lambda cin, cout: [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]  # noqa: E731
        self.body = nn.Sequential(*block(3, c), *block(c, c), nn.MaxPool2d(2), *block(c, 2 * c), *block(2 * c, 2 * c),
                                  nn.MaxPool2d(2), *block(2 * c, 4 * c), *block(4 * c, 4 * c),
                                  nn.Conv2d(4 * c, len(ENTITIES), 1))
        cells = image_size // 4
        centres = (torch.arange(cells) + 0.5) / cells
        self.register_buffer("grid", torch.stack(torch.meshgrid(centres, centres, indexing="xy"), -1).view(-1, 2))

    def forward(self, images: torch.Tensor):
        """images (N, 3, S, S) in [-1, 1] -> (presence logits (N, 24), positions (N, 24, 2) in [0, 1])."""
        maps = self.body(images).flatten(2)  # (N, 24, cells^2)
        # position = sum_k softmax(map)_k * centre_k
        return maps.max(dim=2).values, torch.softmax(maps, dim=2) @ self.grid


def detector_loss(detector: Detector, images, objects, coords) -> torch.Tensor:
    """BCE(presence, objects) + COORD_WEIGHT * mean over present entities of ||position - coords / 128||^2.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    logits, position = detector(images)
    target = coords[..., :2] / COORD_SCALE
    error = ((position - target) ** 2).sum(-1)
    localisation = (error * objects).sum() / objects.sum().clamp(min=1)
    return F.binary_cross_entropy_with_logits(logits, objects) + COORD_WEIGHT * localisation


@torch.no_grad()
def detect(detector: Detector, images: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Detections (N, 24) as 0/1 and positions (N, 24, 2) in i-CLEVR units (128ths), for images in [-1, 1].

    Introduced in notebook 01_sscr_iterative_editing.
    """
    detector.eval()
    found, where = [], []
    for start in range(0, len(images), batch):
        logits, position = detector(images[start : start + batch])
        found.append((torch.sigmoid(logits) > THRESHOLD).float())
        where.append(position * COORD_SCALE)
    return torch.cat(found).cpu(), torch.cat(where).cpu()
