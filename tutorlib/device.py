"""One helper chooses the device (cuda, mps, cpu), so no code hard-wires where tensors live."""
from __future__ import annotations

import contextlib
import os

import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """Names of the devices this machine can use, e.g. ``["cpu", "cuda:0"]``.

    Introduced in notebook 00_shapes_world.
    """
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def _is_available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        index = device.index or 0
        return torch.cuda.is_available() and index < torch.cuda.device_count()
    return torch.backends.mps.is_available()


def pick_device(preference: str = "auto") -> torch.device:
    """The device to compute on.

    ``"auto"`` takes ``$TUTORLIB_DEVICE`` when set, else cuda, then mps, then cpu. An explicit name
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) is honoured or, when that device is missing,
    refused with a ValueError listing what is available.

    Introduced in notebook 00_shapes_world.
    """
    if preference == "auto":
        preference = os.environ.get("TUTORLIB_DEVICE") or "auto"
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"unknown device {preference!r}; use 'auto' or one of {DEVICE_TYPES}")
    if not _is_available(device):
        raise ValueError(
            f"device {preference!r} is not available here; available: {available_devices()}"
        )
    return device


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """Mixed precision where it pays: bfloat16 ``torch.autocast`` on cuda, a no-op elsewhere.

    Introduced in notebook 00_shapes_world.
    """
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device: torch.device | str) -> str:
    """A short human name for reports: ``"cpu (2 threads)"``, the GPU's name, or ``"mps"``.

    Introduced in notebook 00_shapes_world.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    if device.type == "cuda":
        return torch.cuda.get_device_name(device.index or 0)
    return device.type
