"""Small figures for notebooks: image grids and loss curves (kept small; notebooks are committed)."""
from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from tutorlib.training import History

ImageLike = np.ndarray | torch.Tensor


def _as_array(image: ImageLike) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        return (image.float() if image.is_floating_point() else image).numpy()
    return np.asarray(image)


def _has_negatives(images: Sequence[np.ndarray]) -> bool:
    return any(np.issubdtype(image.dtype, np.floating) and image.min() < 0 for image in images)


def to_display(image: ImageLike, signed: bool | None = None) -> np.ndarray:
    """One image as an ``H x W x 3`` uint8 array, ready for ``imshow``.

    Accepts ``(3, H, W)``, ``(H, W, 3)``, one channel or ``(H, W)``; uint8, or floats in [0, 1] or,
    when ``signed`` (detected from negative values when None), in [-1, 1].
    """
    array = _as_array(image)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"an image needs 2 or 3 dimensions, got shape {tuple(array.shape)}")
    if array.shape[0] in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.shape[-1] not in (1, 3):
        raise ValueError(f"an image needs 1 or 3 channels first or last, got shape {tuple(array.shape)}")
    array = np.broadcast_to(array, (*array.shape[:2], 3))
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"image dtype {array.dtype} is not supported; use uint8 or a float type")
    if signed is None:
        signed = _has_negatives([array])
    if signed:
        # x in [-1, 1] -> (x + 1) / 2 in [0, 1]
        array = (array + 1) / 2
    return (np.clip(array, 0, 1) * 255).round().astype(np.uint8)


def image_grid(
    images: ImageLike | Sequence[ImageLike],
    nrow: int | None = None,
    titles: Sequence[str] | None = None,
    scale: float = 1.5,
) -> Figure:
    """A grid of images, ``nrow`` per row (at most 8 by default), with optional titles.

    ``images`` is a batch ``(N, 3, H, W)`` or ``(N, H, W, 3)`` or a list of images; a batch with any
    negative value is read as [-1, 1] throughout. ``scale`` is the size of one image in inches.
    """
    arrays = [_as_array(image) for image in images]
    if not arrays:
        raise ValueError("image_grid needs at least one image")
    if titles is not None and len(titles) != len(arrays):
        raise ValueError(f"got {len(titles)} titles for {len(arrays)} images")
    per_row = nrow or min(len(arrays), 8)
    rows = math.ceil(len(arrays) / per_row)
    signed = _has_negatives(arrays)
    # Long titles wrap to the width of one image (about 12 characters of 8-point text per inch).
    wrapped = [textwrap.fill(t, width=max(8, int(12 * scale))) for t in titles] if titles else None
    title_room = 0.14 * max(t.count("\n") + 1 for t in wrapped) + 0.1 if wrapped else 0.0
    figure, axes = plt.subplots(
        rows, per_row, figsize=(per_row * scale, rows * (scale + title_room)), squeeze=False
    )
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(arrays):
            axis.imshow(to_display(arrays[index], signed=signed))
            if wrapped:
                axis.set_title(wrapped[index], fontsize=8)
    figure.tight_layout()
    return figure


# Explorers draw at the notebook's width (about 850 CSS px in JupyterLab): at most three panels a row, each
# PANEL_INCHES wide at EXPLORER_DPI, keeps every picture at least 256 px wide on the page.
EXPLORER_DPI = 100
PANELS_PER_ROW = 3
PANEL_INCHES = 3.0


def panel_figure(n_panels: int, title_inches: float = 0.9, extra_inches: float = 0.0) -> tuple[Figure, list]:
    """A figure for an explorer: ``n_panels`` square panels, at most ``PANELS_PER_ROW`` a row, each
    ``PANEL_INCHES`` wide plus ``title_inches`` above it for its title; ``extra_inches`` of height are left at
    the top for a suptitle. The figure lays itself out (constrained layout): do not call ``tight_layout`` on it.
    Returns the figure and its first ``n_panels`` axes (the others are removed)."""
    if n_panels < 1:
        raise ValueError(f"a figure needs at least one panel, got {n_panels}")
    rows = math.ceil(n_panels / PANELS_PER_ROW)
    cols = min(n_panels, PANELS_PER_ROW)
    figure, axes = plt.subplots(rows, cols, squeeze=False, dpi=EXPLORER_DPI, layout="constrained",
                                figsize=(cols * PANEL_INCHES, rows * (PANEL_INCHES + title_inches) + extra_inches))
    # Narrow gaps between panels (constrained layout still makes room for titles): the width goes to the pictures.
    figure.get_layout_engine().set(w_pad=0.01, wspace=0.01)
    axes = list(axes.flat)
    for spare in axes[n_panels:]:
        spare.remove()
    return figure, axes[:n_panels]


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of each run of ``window`` consecutive values (``len(values) - window + 1`` of them).
    """
    if not 1 <= window <= len(values):
        raise ValueError(f"window {window} must be between 1 and the number of values ({len(values)})")
    # average[i] = (values[i] + ... + values[i + window - 1]) / window
    return np.convolve(np.asarray(values, dtype=float), np.ones(window) / window, mode="valid")


def plot_losses(
    history: History | Mapping[str, Sequence[Sequence[float]]],
    names: Sequence[str] | None = None,
    smooth: int = 0,
) -> Figure:
    """One small subplot per logged loss against the step.

    ``history`` is a ``History`` or its ``to_dict()``. With ``smooth > 1`` a moving average over that
    many logged points is drawn over the faint raw curve.
    """
    if not isinstance(history, History):
        history = History.from_dict(history)
    names = list(names or history.values)
    if not names:
        raise ValueError("nothing to plot: the history has no logged values")
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.4), squeeze=False)
    for axis, name in zip(axes.flat, names):
        steps, values = history.series(name)
        window = min(smooth, len(values))
        axis.plot(steps, values, alpha=0.35 if window > 1 else 1.0, color="C0")
        if window > 1:
            axis.plot(steps[window - 1 :], moving_average(values, window), color="C0")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    return figure
