"""SIMAT's database folder (facebookresearch/SIMAT simat_db/), used by notebook 02_simat_delta_retrieval.

    triplets.csv    region_id, subj, rel, obj, dataset_id       one row per image
    captions.txt    one triplet caption per line; caption id = line index
    transfos.csv    region_id, field, value, target, query_ids, target_ids, norm2, is_test
    images/         {dataset_id}.png (written here); the real release keeps
                    images/<caption>/<region_id>.jpg, which is read too
    scenes.json     dataset_id -> scene graph (ground truth; written here, absent from real data)

One reader per file (read_triplets, read_captions, read_transformations, read_scenes), composed by
read_simat. They accept extra columns (the real transfos.csv has a pandas index and transfo_id, norm,
dataset_id), a UTF-8 byte-order mark (spreadsheet exports), and any non-empty word or phrase as subject,
relation or object (the release has "sitting on a", "holding" and words outside the shapes world); they
check the rest: unique integer ids, fields, caption ids in range, norm2 positive and finite, booleans.
Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Collection, Sequence

import numpy as np
import torch

from ..progress import progress
from ..world.scene import Scene
from ..world.views.simat import FIELDS, SimatData, Transformation
from .common import (IMAGE_SUFFIXES, FormatError, atomic_dir, check_size, files_by_stem, image_size, read_image,
                     read_json, read_text, require_file, write_image, write_json)

TRIPLET_COLUMNS = ("region_id", "subj", "rel", "obj", "dataset_id")
TRANSFO_COLUMNS = ("region_id", "field", "value", "target", "query_ids", "target_ids", "norm2", "is_test")


def write_simat(db: SimatData, folder: str | os.PathLike, *, overwrite: bool = False, with_images: bool = True,
                show_progress: bool = True) -> Path:
    """Write a SIMAT database (SimatDatabase or one read by read_simat) to `folder`, atomically."""
    folder = Path(folder)
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        with open(tmp / "triplets.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(TRIPLET_COLUMNS)
            for region_id, (subj, rel, obj), dataset_id in zip(db.region_ids, db.triplets, db.dataset_ids):
                writer.writerow([region_id, subj, rel, obj, dataset_id])
        with open(tmp / "captions.txt", "w", encoding="utf-8") as f:
            for caption in db.captions:
                if "\n" in caption:
                    raise ValueError(f"caption {caption!r} spans lines")
                f.write(caption + "\n")
        with open(tmp / "transfos.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(TRANSFO_COLUMNS)
            for t in db.transformations:
                writer.writerow([t.region_id, t.field, t.value, t.target, t.query_ids, t.target_ids, t.norm2,
                                 "True" if t.is_test else "False"])
        if with_images and db.has_images:
            bar = {} if show_progress else {"disable": True}
            for position in progress(range(len(db)), desc="write SIMAT images", **bar):
                write_image(tmp / "images" / f"{db.dataset_ids[position]}.png", db.image(position))
        if db.scenes is not None:
            write_json(tmp / "scenes.json", {str(d): s.to_dict() for d, s in zip(db.dataset_ids, db.scenes)})
    return folder


def _read_csv(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV file as (line number, {column: text}); FormatError when a required column is missing."""
    path = require_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise FormatError(path, f"missing columns {missing} (header: {header})")
            rows = []
            for row in reader:
                if None in row or any(row.get(c) is None for c in columns):
                    raise FormatError(path, f"line {reader.line_num}: expected {len(header)} fields")
                rows.append((reader.line_num, row))
    except (UnicodeDecodeError, csv.Error) as err:
        raise FormatError(path, f"not a readable CSV file ({err})") from None
    return rows


def _int(path: Path, line: int, column: str, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, f"line {line}: {column} must be an integer, found {text!r}") from None
    if not value.is_integer():
        raise FormatError(path, f"line {line}: {column} must be an integer, found {text!r}")
    return int(value)


def _bool(path: Path, line: int, column: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise FormatError(path, f"line {line}: {column} must be True or False, found {text!r}")


def _words(path: Path, line: int, row: dict[str, str], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The stripped texts of `columns`: any non-empty word or phrase ("man", "sitting on a")."""
    words = tuple(row[c].strip() for c in columns)
    empty = [c for c, word in zip(columns, words) if not word]
    if empty:
        raise FormatError(path, f"line {line}: empty {', '.join(empty)}")
    return words


def _unique(path: Path, name: str, ids: list[int]) -> None:
    seen: set[int] = set()
    for value in ids:
        if value in seen:
            raise FormatError(path, f"{name} {value} appears more than once")
        seen.add(value)


def read_triplets(path: str | os.PathLike) -> tuple[list[int], list[int], list[tuple[str, str, str]]]:
    """triplets.csv: region ids, dataset ids (each unique) and (subj, rel, obj) triplets, one row per image."""
    path = Path(path)
    region_ids, dataset_ids, triplets = [], [], []
    for line, row in _read_csv(path, TRIPLET_COLUMNS):
        region_ids.append(_int(path, line, "region_id", row["region_id"]))
        dataset_ids.append(_int(path, line, "dataset_id", row["dataset_id"]))
        triplets.append(_words(path, line, row, FIELDS))
    if not triplets:
        raise FormatError(path, "no rows")
    _unique(path, "region_id", region_ids)
    _unique(path, "dataset_id", dataset_ids)
    return region_ids, dataset_ids, triplets


def read_captions(path: str | os.PathLike) -> list[str]:
    """captions.txt: one caption per line, the caption id is the line index (trailing blank lines dropped)."""
    captions = read_text(path).splitlines()
    while captions and not captions[-1].strip():
        captions.pop()
    if not captions:
        raise FormatError(path, "no captions")
    return captions


def read_transformations(path: str | os.PathLike, region_ids: Collection[int], n_captions: int) -> list[Transformation]:
    """transfos.csv: one Transformation per row; region ids must be those of triplets.csv, caption ids lines of
    captions.txt (`n_captions` lines), norm2 a positive finite number.
    """
    path = Path(path)
    known_regions = set(region_ids)
    transformations = []
    for line, row in _read_csv(path, TRANSFO_COLUMNS):
        region_id = _int(path, line, "region_id", row["region_id"])
        if region_id not in known_regions:
            raise FormatError(path, f"line {line}: region_id {region_id} is not in triplets.csv")
        field, value, target = _words(path, line, row, ("field", "value", "target"))
        if field not in FIELDS:
            raise FormatError(path, f"line {line}: field must be one of {list(FIELDS)}, found {field!r}")
        ids = {}
        for column in ("query_ids", "target_ids"):
            ids[column] = _int(path, line, column, row[column])
            if not 0 <= ids[column] < n_captions:
                raise FormatError(path, f"line {line}: {column} {ids[column]} is not a line of captions.txt "
                                        f"({n_captions} captions)")
        try:
            norm2 = float(row["norm2"])
        except ValueError:
            raise FormatError(path, f"line {line}: norm2 must be a number, found {row['norm2']!r}") from None
        if not 0 < norm2 < math.inf:
            raise FormatError(path, f"line {line}: norm2 must be a positive finite number, found {row['norm2']!r}")
        transformations.append(Transformation(
            region_id, field, value, target, ids["query_ids"], ids["target_ids"],
            int(norm2) if norm2.is_integer() else norm2, _bool(path, line, "is_test", row["is_test"])))
    return transformations


def read_scenes(path: str | os.PathLike, dataset_ids: Sequence[int]) -> list[Scene]:
    """scenes.json: the scene graph of every dataset id, in the order of `dataset_ids`."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, f"expected an object mapping dataset ids to scenes, found {type(data).__name__}")
    scenes = []
    for dataset_id in dataset_ids:
        if str(dataset_id) not in data:
            raise FormatError(path, f"no scene for dataset_id {dataset_id}")
        try:
            scenes.append(Scene.from_dict(data[str(dataset_id)]))
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise FormatError(path, f"dataset_id {dataset_id}: malformed scene ({type(err).__name__}: {err})") from None
    return scenes


def read_simat(folder: str | os.PathLike) -> SimatData:
    """Read a SIMAT folder into a SimatData (same API as SimatDatabase: items, triplets, captions,
    transformations, split("dev" | "test")). Images load lazily; without images/ the items' image is None.

    Every image must have the size of the first one (by dataset id). Any malformed file raises a FormatError
    naming it and the problem.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "folder not found")
    region_ids, dataset_ids, triplets = read_triplets(folder / "triplets.csv")
    captions = read_captions(folder / "captions.txt")
    transformations = read_transformations(folder / "transfos.csv", region_ids, len(captions))
    scenes = read_scenes(folder / "scenes.json", dataset_ids) if (folder / "scenes.json").exists() else None
    images = ImageFolder.open(folder / "images", dict(zip(dataset_ids, region_ids)))
    # When every triplet's caption is known (our files: captions are the triplets present, in the order of
    # their first query), SimatData recovers the caption ids from the queries.
    return SimatData(region_ids, dataset_ids, triplets, captions, transformations, image_loader=images,
                     scenes=scenes, name=f"SIMAT folder {folder.name}")


class ImageFolder:
    """images/ of a SIMAT folder as a function dataset_id -> (3, H, W) uint8 image.

    Looks for images/{dataset_id}.png|.jpg, then the real release's images/<caption>/<region_id>.jpg; a missing
    image is an error when it is loaded. Every image must have the size of the stored image of the smallest
    dataset id (FormatError naming both otherwise).
    """

    def __init__(self, folder: Path, region_of_dataset: dict[int, int]):
        self.folder, self.region_of_dataset = folder, region_of_dataset
        self.by_name = files_by_stem(folder, IMAGE_SUFFIXES)
        self.by_region: dict[str, Path] = {}
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            for stem, path in files_by_stem(sub, IMAGE_SUFFIXES).items():
                self.by_region.setdefault(stem, path)
        stored = [path for path in map(self._find, sorted(region_of_dataset)) if path is not None]
        self.reference = stored[0] if stored else None
        self.size = image_size(self.reference) if stored else None

    @classmethod
    def open(cls, folder: Path, region_of_dataset: dict[int, int]) -> "ImageFolder | None":
        """The image folder, or None when there is no images/ folder."""
        return cls(folder, region_of_dataset) if folder.is_dir() else None

    def _find(self, dataset_id: int) -> Path | None:
        return self.by_name.get(str(dataset_id)) or self.by_region.get(str(self.region_of_dataset[dataset_id]))

    def path(self, dataset_id: int) -> Path:
        path = self._find(dataset_id)
        if path is None:
            raise FormatError(self.folder, f"no image for dataset_id {dataset_id}: neither {dataset_id}.png (.jpg, "
                                           f".jpeg) nor <caption>/{self.region_of_dataset[dataset_id]}.jpg")
        return path

    def __call__(self, dataset_id: int) -> torch.Tensor:
        path = self.path(dataset_id)
        image = read_image(path)
        check_size(path, image.shape, self.size, self.reference.name)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
