"""Where a figure's PNG draws pictures: the solid rectangles that `imshow` panels leave on a white page.

A matplotlib figure reaches the page as one PNG; the pictures inside it (a scene, a mask, a heat map) are
what a student has to see, so the browser tests measure those, not the PNG as a whole.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

BACKGROUND = 250  # a pixel with every channel at or above this (or mostly transparent) is page, not ink
MIN_SIDE = 12     # smaller solid shapes are glyphs, markers or ticks
MIN_FILL = 0.7    # share of a panel's bounding box that is ink (holes: white objects, a white mask)
MAX_ASPECT = 5.0  # longer thin bars are colour bars or rules, not pictures


@dataclass(frozen=True)
class Panel:
    """A picture inside a PNG: its bounding box in PNG pixels (`x`, `y` top-left, `width`, `height`)."""

    x: int
    y: int
    width: int
    height: int


def ink_mask(png: bytes) -> np.ndarray:
    """(H, W) bool: the pixels of the PNG that are not page background (near white or transparent)."""
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    return (rgba[..., 3] >= 128) & (rgba[..., :3].min(axis=2) < BACKGROUND)


def _row_runs(row: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def components(mask: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """4-connected components of a bool mask as (x0, y0, x1, y1, pixels), x1 and y1 exclusive.

    Runs of True per row are joined (union-find) with the runs they overlap in the row above.
    """
    runs: list[tuple[int, int, int]] = []  # (row, start, end)
    parent: list[int] = []

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    previous: list[int] = []
    for y, row in enumerate(mask):
        current = []
        for start, end in _row_runs(row):
            index = len(runs)
            runs.append((y, start, end))
            parent.append(index)
            for above in previous:
                _, a_start, a_end = runs[above]
                if a_start < end and start < a_end:
                    parent[root(index)] = root(above)
            current.append(index)
        previous = current
    boxes: dict[int, list[int]] = {}
    for index, (y, start, end) in enumerate(runs):
        box = boxes.setdefault(root(index), [start, y, end, y + 1, 0])
        box[0], box[1] = min(box[0], start), min(box[1], y)
        box[2], box[3] = max(box[2], end), max(box[3], y + 1)
        box[4] += end - start
    return [tuple(box) for box in boxes.values()]


def image_panels(png: bytes) -> list[Panel]:
    """The pictures drawn in a PNG, top to bottom then left to right.

    A picture is a connected patch of ink whose bounding box is at least MIN_SIDE pixels on each side,
    at most MAX_ASPECT times longer than wide, and at least MIN_FILL full.
    """
    panels = []
    for x0, y0, x1, y1, pixels in components(ink_mask(png)):
        width, height = x1 - x0, y1 - y0
        if (min(width, height) >= MIN_SIDE and max(width, height) <= MAX_ASPECT * min(width, height)
                and pixels >= MIN_FILL * width * height):
            panels.append(Panel(x0, y0, width, height))
    return sorted(panels, key=lambda p: (p.y, p.x))
