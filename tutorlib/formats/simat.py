"""SIMAT's database folder (facebookresearch/SIMAT simat_db/), used by notebook 02_simat_delta_retrieval.

    triplets.csv    region_id, subj, rel, obj, dataset_id       one row per image
    captions.txt    one triplet caption per line; caption id = line index
    transfos.csv    region_id, field, value, target, query_ids, target_ids, norm2, is_test
    images/         {dataset_id}.png (written here); the real release keeps
                    images/<caption>/<region_id>.jpg, which is read too
    scenes.json     dataset_id -> scene graph (ground truth; written here, absent from real data)

The reader accepts extra columns (the real transfos.csv has a pandas index and transfo_id, norm,
dataset_id) and checks the required ones: names, integer ids, fields, caption ids in range, booleans.
Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..progress import progress
from ..world.scene import Scene
from ..world.views.simat import FIELDS, SimatData, Transformation
from .common import FormatError, atomic_dir, read_image, read_json, require_file, write_image, write_json

TRIPLET_COLUMNS = ("region_id", "subj", "rel", "obj", "dataset_id")
TRANSFO_COLUMNS = ("region_id", "field", "value", "target", "query_ids", "target_ids", "norm2", "is_test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def write_simat(db: SimatData, folder: str | os.PathLike, *, overwrite: bool = False, with_images: bool = True,
                show_progress: bool = True) -> Path:
    """Write a SIMAT database (SimatDatabase or one read by read_simat) to `folder`, atomically.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    folder = Path(folder)
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        with open(tmp / "triplets.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(TRIPLET_COLUMNS)
            for region_id, (subj, rel, obj), dataset_id in zip(db.region_ids, db.triplets, db.dataset_ids):
                writer.writerow([region_id, subj, rel, obj, dataset_id])
        with open(tmp / "captions.txt", "w") as f:
            for caption in db.captions:
                if "\n" in caption:
                    raise ValueError(f"caption {caption!r} spans lines")
                f.write(caption + "\n")
        with open(tmp / "transfos.csv", "w", newline="") as f:
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
        with open(path, newline="") as f:
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
            return rows
    except (UnicodeDecodeError, csv.Error) as err:
        raise FormatError(path, f"not a readable CSV file ({err})") from None


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


def read_simat(folder: str | os.PathLike) -> SimatData:
    """Read a SIMAT folder into a SimatData (same API as SimatDatabase: items, triplets, captions,
    transformations, split("dev" | "test")). Images load lazily; without images/ the items' image is None.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FormatError(folder, "folder not found")

    path = folder / "triplets.csv"
    region_ids, dataset_ids, triplets = [], [], []
    for line, row in _read_csv(path, TRIPLET_COLUMNS):
        region_ids.append(_int(path, line, "region_id", row["region_id"]))
        dataset_ids.append(_int(path, line, "dataset_id", row["dataset_id"]))
        triplet = tuple(row[c].strip() for c in ("subj", "rel", "obj"))
        if not all(triplet):
            raise FormatError(path, f"line {line}: empty subj, rel or obj")
        triplets.append(triplet)
    if not region_ids:
        raise FormatError(path, "no rows")
    for name, ids in (("region_id", region_ids), ("dataset_id", dataset_ids)):
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise FormatError(path, f"{name} {duplicate} appears more than once")
    known_regions = set(region_ids)

    path = require_file(folder / "captions.txt")
    try:
        captions = path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not a text file ({err})") from None
    while captions and not captions[-1].strip():
        captions.pop()
    if not captions:
        raise FormatError(path, "no captions")

    path = folder / "transfos.csv"
    transformations = []
    for line, row in _read_csv(path, TRANSFO_COLUMNS):
        region_id = _int(path, line, "region_id", row["region_id"])
        if region_id not in known_regions:
            raise FormatError(path, f"line {line}: region_id {region_id} is not in triplets.csv")
        field = row["field"].strip()
        if field not in FIELDS:
            raise FormatError(path, f"line {line}: field must be one of {list(FIELDS)}, found {field!r}")
        ids = {}
        for column in ("query_ids", "target_ids"):
            ids[column] = _int(path, line, column, row[column])
            if not 0 <= ids[column] < len(captions):
                raise FormatError(path, f"line {line}: {column} {ids[column]} is not a line of captions.txt "
                                        f"({len(captions)} captions)")
        try:
            norm2 = float(row["norm2"])
        except ValueError:
            raise FormatError(path, f"line {line}: norm2 must be a number, found {row['norm2']!r}") from None
        if not norm2 > 0:
            raise FormatError(path, f"line {line}: norm2 must be positive, found {row['norm2']!r}")
        transformations.append(Transformation(
            region_id, field, row["value"], row["target"], ids["query_ids"], ids["target_ids"],
            int(norm2) if norm2.is_integer() else norm2, _bool(path, line, "is_test", row["is_test"])))

    scenes = None
    if (folder / "scenes.json").exists():
        path = folder / "scenes.json"
        data = read_json(path)
        try:
            scenes = [Scene.from_dict(data[str(d)]) for d in dataset_ids]
        except KeyError as err:
            raise FormatError(path, f"no scene for dataset_id {err}") from None
        except (TypeError, ValueError) as err:
            raise FormatError(path, f"malformed scene ({err})") from None

    loader = _image_loader(folder / "images", dict(zip(dataset_ids, region_ids)))
    # When every triplet's caption is known (our files: captions are the triplets present, in the order of
    # their first query), SimatData recovers the caption ids from the queries.
    return SimatData(region_ids, dataset_ids, triplets, captions, transformations, image_loader=loader,
                     scenes=scenes, name=f"SIMAT folder {folder.name}")


def _image_loader(images: Path, region_of_dataset: dict[int, int]) -> Callable[[int], torch.Tensor] | None:
    """A function dataset_id -> (3, H, W) uint8 image, or None when there is no images/ folder.

    Looks for images/{dataset_id}.png|.jpg, then the real release's images/<caption>/<region_id>.jpg.
    """
    if not images.is_dir():
        return None
    by_name: dict[str, Path] = {}
    for path in images.iterdir():
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            by_name.setdefault(path.stem, path)
    by_region: dict[str, Path] = {}
    for sub in images.iterdir():
        if sub.is_dir():
            for path in sub.iterdir():
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    by_region.setdefault(path.stem, path)

    def load(dataset_id: int) -> torch.Tensor:
        path = by_name.get(str(dataset_id)) or by_region.get(str(region_of_dataset[dataset_id]))
        if path is None:
            raise FormatError(images, f"no image for dataset_id {dataset_id} (region {region_of_dataset[dataset_id]})")
        return torch.from_numpy(np.ascontiguousarray(read_image(path).transpose(2, 0, 1)))

    return load
