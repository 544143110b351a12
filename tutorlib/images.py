"""Image values: uint8 pixels in [0, 255] and the signed floats in [-1, 1] that the generative models use."""
from __future__ import annotations

import torch


def to_signed(images: torch.Tensor, noise: torch.Generator | None = None) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1]: x / 127.5 - 1.

    With a ``noise`` generator, dequantisation noise U(0, 1/127.5) is added (GeNeVA's training images).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"to_signed expects uint8 images, got {images.dtype}")
    x = images.float() / 127.5 - 1.0
    if noise is not None:
        x = x + torch.rand(x.shape, generator=noise).to(x.device) / 127.5
    return x


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8: round((x + 1) * 127.5), clamped to [0, 255]."""
    if not images.is_floating_point():
        raise TypeError(f"to_uint8 expects float images in [-1, 1], got {images.dtype}")
    return ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
