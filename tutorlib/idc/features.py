"""Grid features for IDC: a small CNN trained on rendered world scenes to tell, for each cell of a k x k grid,
the size, colour, material and shape of the object covering it (the world's stand-in for an ImageNet-trained
ResNet). Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tutorlib.cache import train_or_load
from tutorlib.training import History, train_loop
from tutorlib.world import ATTRIBUTES, render, sample_scenes

NAMES = tuple(ATTRIBUTES)  # size, color, material, shape


@dataclass(frozen=True)
class GridCnnConfig:
    """The grid CNN and its training. Introduced in notebook 05_idc_difference_captioning."""

    image_size: int = 64  # input side in pixels
    grid: int = 4  # cells per side of the output grid (image_size / grid must be a power of 2 >= 4)
    width: int = 32  # channels of the first convolution (doubled at each halving, at most 8 x width)
    steps: int = 250  # optimizer steps
    batch_size: int = 64  # freshly rendered scenes per step
    lr: float = 2e-3  # Adam learning rate
    min_share: float = 0.08  # a cell is labelled with the object covering at least this share of its pixels
    n_objects: tuple[int, int] = (3, 7)  # objects per training scene
    seed: int = 0  # initialisation and the stream of training scenes


class GridCnn(nn.Module):
    """Images (N, 3, H, W) uint8 -> (N, grid * grid, C) features, row by row; heads predict the cell's attributes.

    Introduced in notebook 05_idc_difference_captioning.
    """

    def __init__(self, config: GridCnnConfig):
        super().__init__()
        halvings = int(round(np.log2(config.image_size / config.grid)))
        if 2**halvings * config.grid != config.image_size or halvings < 2:
            raise ValueError(f"image_size / grid must be a power of 2 >= 4, got {config.image_size} / {config.grid}")
        layers, channels = [], 3
        for k in range(halvings):  # each halving: a strided 3x3 convolution; then one more at the grid's size
            out = config.width * min(2**k, 8)
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.dim = channels
        # one head per attribute; class 0 means "no object in this cell"
        self.heads = nn.ModuleDict({n: nn.Linear(channels, len(ATTRIBUTES[n]) + 1) for n in NAMES})

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 127.5 - 1.0  # uint8 -> [-1, 1]
        return self.body(x).flatten(2).transpose(1, 2)

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """(N, grid * grid, C) features on CPU, in eval mode."""
        self.eval()
        device = next(self.parameters()).device
        return torch.cat([self(images[i : i + batch].to(device)).cpu() for i in range(0, len(images), batch)])


def cell_labels(ids: torch.Tensor, attributes: dict[str, np.ndarray], grid: int, min_share: float) -> dict[str, torch.Tensor]:
    """(N, grid * grid) label per attribute: 1 + the value index of the object covering most of the cell's
    pixels (when at least `min_share` of them), else 0. `ids` is the renderer's (N, H, W) object-id map (-1 floor).

    Introduced in notebook 05_idc_difference_captioning.
    """
    n, size = ids.shape[0], ids.shape[-1]
    slots = next(iter(attributes.values())).shape[1]
    cell = size // grid
    # counts[b, cell, k] = pixels of object k in the cell (slot 0 counts the floor)
    blocks = (ids + 1).view(n, grid, cell, grid, cell).permute(0, 1, 3, 2, 4).reshape(n, grid * grid, cell * cell)
    counts = F.one_hot(blocks, slots + 1).sum(2)[..., 1:]
    share, winner = (counts.float() / cell**2).max(-1)
    labels = {}
    for name in attributes:
        values = torch.as_tensor(attributes[name]).gather(1, winner) + 1
        labels[name] = torch.where(share >= min_share, values, torch.zeros_like(values))
    return labels


def training_batch(config: GridCnnConfig, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Freshly rendered scenes of one step (a function of the step alone) and their cell labels."""
    seeds = np.arange(config.batch_size, dtype=np.int64) + (config.seed * 10**6 + step) * config.batch_size + 7 * 10**12
    batch = sample_scenes(seeds, config.n_objects)
    rendering = render(batch, config.image_size)
    return rendering.images, cell_labels(rendering.ids, batch.attributes, config.grid, config.min_share)


def train_grid_cnn(model: GridCnn, config: GridCnnConfig, device: torch.device) -> History:
    """Cross-entropy of every cell's four attribute labels, summed. Introduced in notebook 05."""
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def step_fn(batch, step):
        images, labels = batch
        features = model(images.to(device))
        losses = {n: F.cross_entropy(model.heads[n](features).flatten(0, 1), labels[n].to(device).flatten())
                  for n in NAMES}
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), **{f"{n} error": (model.heads[n](features).argmax(-1).cpu() != labels[n]).float().mean().item()
                                        for n in ("color", "shape")}}

    return train_loop(step_fn, lambda step: training_batch(config, step), config.steps, device=device,
                      desc="grid CNN", log_every=10)


def load_grid_cnn(config: GridCnnConfig, device: torch.device) -> tuple[GridCnn, dict]:
    """The trained grid CNN of `config`, from the cache or trained first. Introduced in notebook 05."""
    def make() -> GridCnn:
        torch.manual_seed(config.seed)
        return GridCnn(config)

    model, info = train_or_load("idc-grid-cnn", config, make,
                               lambda m: {"history": train_grid_cnn(m, config, device).to_dict()}, device)
    return model.to(device).eval(), info
