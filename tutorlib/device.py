"""One helper chooses the device (cuda, mps, cpu), so no code hard-wires where tensors live."""
from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

from tutorlib.profiles import active_profile

DEVICE_TYPES = ("cpu", "cuda", "mps")


def available_devices() -> list[str]:
    """Names of the devices this machine can use, e.g. ``["cpu", "cuda:0"]``.
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
    if device.type in ("cpu", "mps") and device.index not in (None, 0):
        raise ValueError(f"device {preference!r}: {device.type} has no index {device.index}; use {device.type!r}")
    if not _is_available(device):
        raise ValueError(
            f"device {preference!r} is not available here; available: {available_devices()}"
        )
    return device


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def set_threads(threads: int = 0) -> int:
    """Set torch's CPU threads and return the number used.

    ``0`` means every core this process may use; ``$TUTORLIB_THREADS``, when set, overrides the argument.
    Lower it when other heavy jobs share the cores: torch's threads then wait on each other and a step can
    take many times longer, while one thread per job slows down gracefully.
    """
    setting = os.environ.get("TUTORLIB_THREADS") or threads
    try:
        threads = int(setting)
    except ValueError:
        raise ValueError(f"TUTORLIB_THREADS must be a whole number, got {setting!r}") from None
    if threads < 0:
        raise ValueError(f"threads must be 0 (every core) or a positive number, got {threads}")
    threads = threads or cpu_cores()
    torch.set_num_threads(threads)
    return threads


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """Mixed precision where it pays: bfloat16 ``torch.autocast`` on cuda, a no-op elsewhere.

    Under the ``dry`` profile the CPU runs bfloat16 autocast too, so that the GPU path's dtypes are exercised.
    """
    device_type = torch.device(device).type
    if device_type == "cuda" or (device_type == "cpu" and active_profile() == "dry"):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def configure(device: torch.device) -> None:
    """Per-device settings that pay on a GPU: TF32 matrix products on cuda (no effect elsewhere)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def to_device(value: Any, device: torch.device | str) -> Any:
    """Tensors (alone or in tuples, lists and dicts) moved to ``device``; other values unchanged.

    On cuda, CPU tensors go through pinned memory without blocking, so the copy overlaps the computation.
    """
    device = torch.device(device)
    if isinstance(value, torch.Tensor):
        if device.type == "cuda" and value.device.type == "cpu":
            return value.pin_memory().to(device, non_blocking=True)
        return value.to(device)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        return type(value)(*(to_device(item, device) for item in value))
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(item, device) for item in value)
    return value


def describe_device(device: torch.device | str) -> str:
    """A short human name for reports: ``"cpu (2 threads)"``, the GPU's name, or ``"mps"``.
    """
    device = torch.device(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    if device.type == "cuda":
        return torch.cuda.get_device_name(device.index or 0)
    return device.type
