"""Intersection over union of masks, one definition for every notebook.

IoU = |A ∩ B| / |A ∪ B|. When both masks are empty the union is 0 and the IoU is undefined: it is NaN here, and
each caller says what it does with it (leave it out of a mean with ``nanmean``, or count it as 0 where a paper's
code does, as netdissect does for a unit that never fires on a concept that never appears).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def iou_from_counts(intersection: torch.Tensor, union: torch.Tensor) -> torch.Tensor:
    """intersection / union, NaN where the union is 0 (both masks empty)."""
    intersection, union = torch.as_tensor(intersection).double(), torch.as_tensor(union).double()
    return torch.where(union > 0, intersection / union.clamp(min=1e-300), torch.full_like(union, float("nan")))


def mask_iou(a: torch.Tensor, b: torch.Tensor, dims: Sequence[int] | None = None) -> torch.Tensor:
    """IoU of boolean masks ``a`` and ``b`` (same shape), the counts summed over ``dims`` (default: all), NaN
    where both are empty. ``dims=(-2, -1)`` gives one IoU per mask of a batch."""
    if a.shape != b.shape:
        raise ValueError(f"masks of different shapes: {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.bool(), b.bool()
    dims = tuple(range(a.dim())) if dims is None else tuple(dims)
    return iou_from_counts((a & b).sum(dims), (a | b).sum(dims))
