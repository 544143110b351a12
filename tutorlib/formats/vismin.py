"""VisMin's training format: a JSON list of source images and captions, each with minimally edited negatives.

    [{"image_path": ..., "caption": ..., "negatives": [{"edited_image_path": ..., "edited_caption": ...,
      "category": ..., ...}]}]

Paths are relative to the JSON file's folder; categories are VisMin's four (object, attribute, counting,
relation); the edited image of a negative has its source image's size. The shapes world adds ground truth: "scene" beside each image
(the source scene in the entry, the edited scene in the negative), and in the negative "source_phrase",
"edited_phrase", "source_box" and "edit_box" (x, y, w, h of the edited region in each image). Real data lacks
them; they then read as None.
Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
from torch.utils.data import Dataset

from ..world.scene import Scene
from ..world.views.minimal_change import CATEGORIES
from .common import FormatError, atomic_dir, check_size, image_size, read_image, read_json, write_image, write_json

ANNOTATIONS = "annotations.json"
# Ground truth of the shapes world: item key -> JSON key, in the entry and in its negative.
ENTRY_EXTRAS = {"scene0": "scene"}
NEGATIVE_EXTRAS = {"scene1": "scene", "source_phrase": "source_phrase", "edited_phrase": "edited_phrase",
                   "box0": "source_box", "box1": "edit_box"}
# The largest pixel coordinate a box may hold.
MAX_PIXEL = 2**31 - 1


def write_vismin(items: Iterable[dict], folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write minimal-change items (see MinimalChangePairs) as images/*.png and annotations.json, atomically."""
    with atomic_dir(folder, overwrite) as tmp:
        entries = []
        for k, item in enumerate(items):
            source, edited = f"images/{k:06d}_source.png", f"images/{k:06d}_edited.png"
            write_image(tmp / source, item["image0"])
            write_image(tmp / edited, item["image1"])
            negative = {"edited_image_path": edited, "edited_caption": item["caption1"], "category": item["category"]}
            negative.update(ground_truth_json(item, NEGATIVE_EXTRAS))
            entry = {"image_path": source, "caption": item["caption0"], "negatives": [negative]}
            entry.update(ground_truth_json(item, ENTRY_EXTRAS))
            entries.append(entry)
        write_json(tmp / ANNOTATIONS, entries)
    return Path(folder)


def ground_truth_json(item: dict, keys: dict[str, str]) -> dict:
    """The item's ground-truth fields that are present (not None), renamed by `keys` and made JSON-ready
    (Scene -> dict, box tensor -> list of ints).
    """
    fields = {}
    for item_key, json_key in keys.items():
        value = item.get(item_key)
        if isinstance(value, Scene):
            fields[json_key] = value.to_dict()
        elif isinstance(value, torch.Tensor):
            fields[json_key] = [int(v) for v in value]
        elif value is not None:
            fields[json_key] = value
    return fields


def parse_box(value) -> torch.Tensor:
    """A JSON box [x, y, w, h] in pixels as a (4,) int64 tensor; ValueError unless it is 4 numbers from 0 to
    MAX_PIXEL (NaN and infinity are refused).
    """
    if not (isinstance(value, list) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValueError(f"expected 4 numbers x, y, w, h, found {value!r}")
    if not all(0 <= v <= MAX_PIXEL for v in value):
        raise ValueError(f"x, y, w, h must be numbers from 0 to {MAX_PIXEL} pixels, found {value!r}")
    return torch.tensor([int(v) for v in value], dtype=torch.int64)


class ImageRecords(Dataset):
    """Items read from disk: the fields named in `image_keys` hold file paths and are loaded as (3, H, W) uint8
    tensors when an item is read.

    The images of one item show one frame and must have one size (that of `frame`, a reference image, when
    given); a box (x, y, w, h) named in `boxes` (box key -> image key) must lie inside its image. A box that
    does not raises a FormatError naming `box_file` and the item's label (`labels[i]`).
    """

    def __init__(self, records: list[dict], image_keys: tuple[str, ...], *, frame: Path | None = None,
                 boxes: dict[str, str] | None = None, box_file: Path | None = None, labels: list[str] | None = None):
        self.records, self.image_keys = records, image_keys
        self.frame = None if frame is None else (frame.name, image_size(frame))
        self.boxes, self.box_file = boxes or {}, box_file
        self.labels = labels or [f"item {i}" for i in range(len(records))]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = dict(self.records[index])
        reference = self.frame
        for key in self.image_keys:
            path = record[key]
            image = read_image(path)
            if reference is None:
                reference = (path.name, image.shape[:2])
            check_size(path, image.shape, reference[1], reference[0])
            record[key] = torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous()
        for box_key, image_key in self.boxes.items():
            if record.get(box_key) is None:
                continue
            x, y, w, h = record[box_key].tolist()
            height, width = record[image_key].shape[1:]
            if x + w > width or y + h > height:
                raise FormatError(self.box_file, f"{self.labels[index]}: {box_key} {[x, y, w, h]} reaches beyond its "
                                                 f"{width}x{height} px image {Path(self.records[index][image_key]).name}")
        return record


def read_vismin(path: str | os.PathLike) -> ImageRecords:
    """Read a VisMin folder (with annotations.json) or JSON file: one item per (entry, negative) pair.

    Missing keys, wrong types and missing image files raise a FormatError naming the file and the entry.
    """
    path = Path(path)
    json_path = path / ANNOTATIONS if path.is_dir() else path
    entries = read_json(json_path)
    if not isinstance(entries, list):
        raise FormatError(json_path, f"expected a list of entries, found {type(entries).__name__}")
    parse = _EntryParser(json_path)
    records, labels = [], []
    for i, entry in enumerate(entries):
        for j, record in enumerate(parse(entry, i)):
            records.append(record)
            labels.append(f"entry {i}, negative {j}")
    return ImageRecords(records, ("image0", "image1"), boxes={"box0": "image0", "box1": "image1"},
                        box_file=json_path, labels=labels)


def _text(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, found {type(value).__name__}")
    return value


_GROUND_TRUTH_PARSERS = {"scene": Scene.from_dict, "source_box": parse_box, "edit_box": parse_box,
                         "source_phrase": _text, "edited_phrase": _text}


class _EntryParser:
    """Checks one entry at a time and turns it into item records; every problem names the file and the entry."""

    def __init__(self, json_path: Path):
        self.json_path, self.root = json_path, json_path.parent

    def __call__(self, entry, i: int) -> list[dict]:
        where = f"entry {i}"
        image0 = self.image(self.require(entry, "image_path", str, where), where)
        caption0 = self.require(entry, "caption", str, where)
        extras = {key: self.optional(entry, json_key, where) for key, json_key in ENTRY_EXTRAS.items()}
        negatives = self.require(entry, "negatives", list, where)
        records = []
        for j, negative in enumerate(negatives):
            at = f"{where}, negative {j}"
            records.append({
                "image0": image0, "caption0": caption0,
                "image1": self.image(self.require(negative, "edited_image_path", str, at), at),
                "caption1": self.require(negative, "edited_caption", str, at),
                "category": self.category(self.require(negative, "category", str, at), at),
                **extras, **{key: self.optional(negative, json_key, at) for key, json_key in NEGATIVE_EXTRAS.items()},
            })
        return records

    def require(self, mapping, key: str, kind: type, where: str):
        if not isinstance(mapping, dict):
            raise FormatError(self.json_path, f"{where}: expected an object, found {type(mapping).__name__}")
        if key not in mapping:
            raise FormatError(self.json_path, f"{where}: missing key {key!r}")
        if not isinstance(mapping[key], kind):
            raise FormatError(self.json_path, f"{where}: {key!r} must be a {kind.__name__}, "
                                              f"found {type(mapping[key]).__name__}")
        return mapping[key]

    def optional(self, mapping: dict, key: str, where: str):
        """A ground-truth field parsed (scene -> Scene, box -> (4,) int64 tensor, phrase -> str), or None if absent."""
        if key not in mapping:
            return None
        try:
            return _GROUND_TRUTH_PARSERS[key](mapping[key])
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise FormatError(self.json_path, f"{where}: malformed {key!r} ({type(err).__name__}: {err})") from None

    def category(self, value: str, where: str) -> str:
        if value not in CATEGORIES:
            raise FormatError(self.json_path, f"{where}: unknown category {value!r}; choose from {list(CATEGORIES)}")
        return value

    def image(self, relative: str, where: str) -> Path:
        image = self.root / relative
        if not image.is_file():
            problem = "is a folder where an image file is expected" if image.is_dir() else "image file not found"
            raise FormatError(image, f"{problem} ({where} of {self.json_path})")
        return image
