"""Shared pieces of the seed formats: one error type, atomic writes, and image and JSON files.

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from tutorlib.paths import atomic_write as atomic_file  # noqa: F401  (re-exported for the format writers)


class FormatError(ValueError):
    """A missing or malformed dataset file. The message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Write a dataset folder atomically: yields a temporary sibling folder that replaces `target` only
    when the block finishes, so an interrupted run leaves no half-written dataset.

    Introduced in notebook 00_shapes_world.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)


def require_file(path: str | os.PathLike) -> Path:
    """The path, if it is an existing file; else a FormatError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file not found")
    return path


def read_json(path: str | os.PathLike):
    """Parse a JSON file; a missing or malformed file raises FormatError naming it and the problem."""
    path = require_file(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(path, f"not valid JSON ({err})") from None


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON (indented, UTF-8)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1))


def write_image(path: str | os.PathLike, image) -> None:
    """Save an RGB image given as (3, H, W) or (H, W, 3) uint8 (tensor or array) to PNG or JPEG by suffix."""
    array = np.asarray(image.cpu() if hasattr(image, "cpu") else image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array.astype(np.uint8))).save(path)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of an image file; FormatError if missing or unreadable."""
    path = require_file(path)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as err:
        raise FormatError(path, f"not a readable image ({err})") from None


def describe_folder(folder: str | os.PathLike, per_folder: int = 3) -> str:
    """A short tree of a dataset folder: each sub-folder with its file count and first few files, with sizes.

    Introduced in notebook 00_shapes_world.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "not a folder")
    lines = [f"{folder.name}/"]
    for directory in sorted(p for p in folder.rglob("*") if p.is_dir()) + [folder]:
        files = sorted(p for p in directory.iterdir() if p.is_file())
        if not files:
            continue
        prefix = "  " + (f"{directory.relative_to(folder)}/" if directory != folder else "")
        shown = [f"{prefix}{f.name}  ({f.stat().st_size:,} bytes)" for f in files[:per_folder]]
        if len(files) > per_folder:
            shown.append(f"{prefix}... {len(files) - per_folder} more files")
        lines += shown
    return "\n".join(lines)
