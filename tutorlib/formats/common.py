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
    if path.is_dir():
        raise FormatError(path, "is a folder where a file is expected")
    if not path.is_file():
        raise FormatError(path, "file not found")
    return path


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file, with or without a byte-order mark (spreadsheet exports write one);
    FormatError naming the file when it is missing or not UTF-8 text."""
    path = require_file(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not a UTF-8 text file ({err})") from None
    except OSError as err:
        raise FormatError(path, f"unreadable ({err})") from None


def read_json(path: str | os.PathLike):
    """Parse a JSON file; a missing or malformed file raises FormatError naming it and the problem."""
    path = Path(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(path, f"not valid JSON ({err})") from None
    except RecursionError:
        raise FormatError(path, "not valid JSON (nested too deeply)") from None


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON (indented, UTF-8)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1), encoding="utf-8")


def write_image(path: str | os.PathLike, image) -> None:
    """Save an RGB image given as (3, H, W) or (H, W, 3) uint8 (tensor or array) to PNG or JPEG by suffix."""
    array = np.asarray(image.cpu() if hasattr(image, "cpu") else image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array.astype(np.uint8))).save(path)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def files_by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """stem -> path of the files of `folder` with one of `suffixes` (any case), first by sorted name; empty when
    the folder is absent. A folder named like such a file raises FormatError."""
    if not folder.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes:
            found.setdefault(path.stem, require_file(path))
    return found


# Integer grey images (16-bit PNG and TIFF open in one of these modes) are read as 16-bit values.
WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _rgb(path: Path, image: Image.Image) -> np.ndarray:
    if image.mode in WIDE_GREY_MODES:
        grey = np.asarray(image).astype(np.int64)
        if grey.size and not 0 <= grey.min() <= grey.max() <= 65535:
            raise FormatError(path, f"{image.mode} image with values beyond 16 bits "
                                    f"({grey.min()} to {grey.max()}); save it with 8 or 16 bits per channel")
        # 16 bits to 8: v8 = round(v16 * 255 / 65535)
        eight = ((grey * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(eight[..., None], 3, axis=2)
    if image.mode == "F":
        raise FormatError(path, "floating-point image; save it with 8 or 16 bits per channel")
    return np.asarray(image.convert("RGB"))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of an image file; FormatError if missing or unreadable.

    16-bit channels are scaled to 8 bits, grey becomes three equal channels.
    """
    path = require_file(path)
    try:
        with Image.open(path) as image:
            return _rgb(path, image)
    except FormatError:
        raise
    except IMAGE_ERRORS as err:
        raise FormatError(path, f"not a readable image ({type(err).__name__}: {err})") from None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file, from its header alone; FormatError if missing or unreadable."""
    path = require_file(path)
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except IMAGE_ERRORS as err:
        raise FormatError(path, f"not a readable image ({type(err).__name__}: {err})") from None


def check_size(path: str | os.PathLike, shape: tuple[int, ...], size: tuple[int, int], reference: str) -> None:
    """FormatError naming `path` unless an image of `shape` (H, W, ...) has `size` (height, width), the size of
    `reference` (a file name or what fixes the size)."""
    if tuple(shape[:2]) != tuple(size):
        raise FormatError(path, f"image is {shape[1]}x{shape[0]} px (width x height) where {reference} is "
                                f"{size[1]}x{size[0]} px; the images must have one size")


def describe_folder(folder: str | os.PathLike, per_folder: int = 3) -> str:
    """A short tree of a dataset folder: each sub-folder with its file count and first few files, with sizes."""
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
