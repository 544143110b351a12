"""GeNeVA's i-CLEVR HDF5 format (clevr_{train,val,test}.h5), used by notebook 01_sscr_iterative_editing.

Layout of one file:

    background        (H, W, 3) uint8, BGR           the empty floor
    entities          JSON string: 24 names "shape color"
    <scene_id>/       one group per dialogue (real files: digit names)
        images        (turns, H, W, 3) uint8, BGR    the canvas after each turn
        text          JSON string: list of instructions
        objects       (turns, 24) cumulative 0/1 bag over the entities
        coords        (turns, 24, 3) x / 320 * 128, y / 240 * 128, depth
        scene_id      string

Files written here add two JSON string attributes to each group, `scenes` (the scene graph after each
turn) and `edits` (what each turn did), so a round trip keeps the ground truth; real files lack them and
the reader then returns None for both. Real i-CLEVR is 128 px; any size is read.
Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from ..progress import progress
from ..world.attributes import ENTITIES
from ..world.scene import Scene
from .common import FormatError, atomic_file

REQUIRED_GROUP_KEYS = ("images", "text", "objects", "coords", "scene_id")


def _decode_string(value) -> str:
    """A string stored by h5py in any of its forms (str, bytes, 0-d array of either)."""
    if isinstance(value, np.ndarray):
        value = value.item() if value.shape == () else value.tolist()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return _decode_string(value[0])
    if not isinstance(value, (str, int, np.integer)):
        raise ValueError(f"expected a string, found {type(value).__name__}")
    return str(value)


def _json_string(path: Path, value, where: str):
    """The JSON document held by an HDF5 string (a dataset's value or an attribute)."""
    try:
        return json.loads(_decode_string(value))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise FormatError(path, f"{where} is not a JSON string ({err})") from None


# What h5py raises on damaged files (truncated, flipped bytes, broken compressed chunks).
HDF5_ERRORS = (OSError, RuntimeError, KeyError)


def write_iclevr(dataset, path: str | os.PathLike, *, overwrite: bool = False, compression: str | None = "gzip",
                 show_progress: bool = True) -> Path:
    """Write a dataset of editing dialogues (items as in EditingDialogues) to an i-CLEVR HDF5 file.

    Images are stored BGR, (turns, H, W, 3), as in the real files. `compression="gzip"` keeps generated
    files small (real files are uncompressed; h5py reads both). The file appears atomically.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    entities = tuple(getattr(dataset, "entities", ENTITIES))
    background = getattr(dataset, "background", None)
    if background is None:
        background = dataset[0]["background"] if len(dataset) else torch.zeros(3, 1, 1, dtype=torch.uint8)
    options = {"compression": compression} if compression else {}
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("background", data=_to_bgr(background))
        f.create_dataset("entities", data=json.dumps(list(entities)))
        for key in ("size", "seed", "turns"):
            if getattr(dataset, key, None) is not None:
                f.attrs[key] = int(getattr(dataset, key))
        bar = {} if show_progress else {"disable": True}
        for index in progress(range(len(dataset)), desc="write i-CLEVR", **bar):
            item = dataset[index]
            scene_id = str(item["scene_id"])
            if scene_id in f:
                raise ValueError(f"scene_id {scene_id!r} appears twice in the dataset")
            group = f.create_group(scene_id)
            group.create_dataset("images", data=_to_bgr(item["images"]), **options)
            group.create_dataset("text", data=json.dumps(list(item["instructions"])))
            group.create_dataset("objects", data=np.asarray(item["objects"], dtype=np.float32))
            group.create_dataset("coords", data=np.asarray(item["coords"], dtype=np.float32))
            group.create_dataset("scene_id", data=scene_id)
            if item.get("scenes") is not None:
                # Relationships are derived from positions: leave them out to keep the attribute small.
                scenes = [{k: v for k, v in s.to_dict().items() if k != "relationships"} for s in item["scenes"]]
                group.attrs["scenes"] = json.dumps(scenes)
            if item.get("edits") is not None:
                group.attrs["edits"] = json.dumps(item["edits"])
    return path


def _to_bgr(images) -> np.ndarray:
    """(..., 3, H, W) RGB tensor or array -> (..., H, W, 3) BGR uint8 array."""
    array = np.asarray(images.cpu() if hasattr(images, "cpu") else images)
    if array.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {array.dtype}")
    return np.ascontiguousarray(np.moveaxis(array, -3, -1)[..., ::-1])


def read_iclevr(path: str | os.PathLike, share: float = 1.0) -> "ICLEVRFile":
    """Open an i-CLEVR HDF5 file as a Dataset with EditingDialogues' item layout (RGB, (3, H, W) uint8).

    `share` keeps the first share of the dialogues (the data-scarcity experiments of SSCR). The file's
    structure is checked when opened (every group's keys, shapes and types), a dialogue's values when it is
    read (0/1 bags, finite coordinates, one instruction and one ground-truth entry per turn, readable chunks);
    a malformed file raises FormatError naming the file and the problem.
    """
    return ICLEVRFile(path, share)


class ICLEVRFile(Dataset):
    """An i-CLEVR HDF5 file read lazily (one dialogue at a time; safe with DataLoader workers).

    Attributes: path, keys (the dialogue groups kept), entities (column order of objects and coords:
    ENTITIES when the file holds the same 24 names, in any order), background (3, H, W) uint8 RGB, size.
    """

    def __init__(self, path: str | os.PathLike, share: float = 1.0):
        self.path = Path(path)
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if not self.path.is_file():
            raise FormatError(self.path, "file not found")
        if not h5py.is_hdf5(self.path):
            raise FormatError(self.path, "not an HDF5 file")
        self._file = None
        try:
            with h5py.File(self.path, "r") as f:
                self._check_and_index(f, share)
        except HDF5_ERRORS as err:
            raise FormatError(self.path, f"unreadable HDF5 file ({type(err).__name__}: {err})") from None

    def _check_and_index(self, f: h5py.File, share: float) -> None:
        p = self.path
        for key in ("background", "entities"):
            if key not in f or not isinstance(f[key], h5py.Dataset):
                raise FormatError(p, f"missing top-level dataset {key!r}")
        background = f["background"][()]
        if background.ndim != 3 or background.shape[2] != 3 or background.dtype != np.uint8:
            raise FormatError(p, f"'background' must be (H, W, 3) uint8, found {background.shape} {background.dtype}")
        entities = _json_string(p, f["entities"][()], "'entities'")
        if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities) or not entities:
            raise FormatError(p, "'entities' must be a JSON list of names")
        self.file_entities = tuple(entities)
        if sorted(entities) == sorted(ENTITIES) and len(entities) == len(ENTITIES):
            self.entities = ENTITIES
            self._columns = np.array([entities.index(e) for e in ENTITIES])
        else:
            self.entities = self.file_entities
            self._columns = np.arange(len(entities))
        n_entities = len(entities)

        keys = [k for k in f.keys() if isinstance(f[k], h5py.Group)]
        if not keys:
            raise FormatError(p, "no dialogue groups")
        image_size = None
        for key in keys:
            group = f[key]
            for name in REQUIRED_GROUP_KEYS:
                if name not in group:
                    raise FormatError(p, f"group {key!r} lacks {name!r}")
                if not isinstance(group[name], h5py.Dataset):
                    raise FormatError(p, f"group {key!r}: {name!r} must be a dataset, found a group")
            images, objects, coords = group["images"], group["objects"], group["coords"]
            for name, values in (("objects", objects), ("coords", coords)):
                if values.dtype.kind not in "iuf":
                    raise FormatError(p, f"group {key!r}: {name!r} must hold numbers, found {values.dtype}")
            if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
                raise FormatError(p, f"group {key!r}: 'images' must be (turns, H, W, 3) uint8, "
                                     f"found {images.shape} {images.dtype}")
            turns = images.shape[0]
            if image_size is None:
                image_size = images.shape[1:3]
            elif images.shape[1:3] != image_size:
                raise FormatError(p, f"group {key!r}: images are {images.shape[1:3]}, earlier groups {image_size}")
            if objects.shape != (turns, n_entities):
                raise FormatError(p, f"group {key!r}: 'objects' must be ({turns}, {n_entities}), found {objects.shape}")
            if coords.shape != (turns, n_entities, 3):
                raise FormatError(p, f"group {key!r}: 'coords' must be ({turns}, {n_entities}, 3), "
                                     f"found {coords.shape}")
        self.keys = keys[: max(1, int(len(keys) * share))]
        self.share = share
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.size = self.height if self.height == self.width else None
        rgb = torch.from_numpy(np.ascontiguousarray(background[..., ::-1].transpose(2, 0, 1)))
        if rgb.shape[1:] != (self.height, self.width):  # GeNeVA resizes the background to the images' size
            resized = torch.nn.functional.interpolate(rgb[None].float(), size=(self.height, self.width),
                                                      mode="bilinear", align_corners=False, antialias=True)
            rgb = resized[0].round().clamp(0, 255).to(torch.uint8)
        self.background = rgb
        self.attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}

    # The open file handle is per process: DataLoader workers reopen it.
    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None
        return state

    def _handle(self) -> h5py.File:
        if self._file is None:
            self._file = h5py.File(self.path, "r")
        return self._file

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"dialogue {index} out of range for {len(self)} dialogues")
        key = self.keys[index]
        try:
            return self._read_group(key, self._handle()[key])
        except HDF5_ERRORS as err:
            raise FormatError(self.path, f"group {key!r}: unreadable data ({type(err).__name__}: {err})") from None

    def _read_group(self, key: str, group: h5py.Group) -> dict[str, Any]:
        where = f"group {key!r}"
        images = group["images"][()]
        turns = len(images)
        text = _json_string(self.path, group["text"][()], f"{where} 'text'")
        if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
            raise FormatError(self.path, f"{where}: 'text' must be a JSON list of strings")
        if len(text) != turns:
            raise FormatError(self.path, f"{where}: {len(text)} instructions for {turns} images")
        try:
            scene_id = _decode_string(group["scene_id"][()])
        except (ValueError, UnicodeDecodeError) as err:
            raise FormatError(self.path, f"{where}: 'scene_id' is not a string ({err})") from None
        objects = np.asarray(group["objects"][()], dtype=np.float32)[:, self._columns]
        coords = np.asarray(group["coords"][()], dtype=np.float32)[:, self._columns]
        if not np.isin(objects, (0.0, 1.0)).all():
            raise FormatError(self.path, f"{where}: 'objects' must hold 0 or 1 (a bag of entities)")
        if not np.isfinite(coords).all():
            raise FormatError(self.path, f"{where}: 'coords' holds NaN or infinite values")
        return {
            "images": torch.from_numpy(np.ascontiguousarray(images[..., ::-1].transpose(0, 3, 1, 2))),
            "background": self.background,
            "instructions": text,
            "objects": torch.from_numpy(objects),
            "coords": torch.from_numpy(coords),
            "scene_id": scene_id,
            "scenes": self._ground_truth(group, where, "scenes", turns),
            "edits": self._ground_truth(group, where, "edits", turns),
        }

    def _ground_truth(self, group: h5py.Group, where: str, name: str, turns: int) -> list | None:
        """The attribute `scenes` (one Scene per turn) or `edits` (one dict per turn); None when absent."""
        if name not in group.attrs:
            return None
        values = _json_string(self.path, group.attrs[name], f"{where} attribute {name!r}")
        if not isinstance(values, list) or len(values) != turns or not all(isinstance(v, dict) for v in values):
            raise FormatError(self.path, f"{where}: attribute {name!r} must be a JSON list of {turns} objects "
                                         "(one per turn)")
        if name == "edits":
            return values
        try:
            return [Scene.from_dict(v) for v in values]
        except (ValueError, KeyError, TypeError) as err:
            raise FormatError(self.path, f"{where}: attribute 'scenes' is malformed ({type(err).__name__}: "
                                         f"{err})") from None

    def describe(self) -> str:
        return (f"i-CLEVR file {self.path.name}: {len(self)} dialogues (share {self.share:g}), images "
                f"{self.height}x{self.width} px, {len(self.entities)} entities")

    def __repr__(self) -> str:
        return f"read_iclevr({str(self.path)!r}, share={self.share:g})"
