"""The data layout of "Learning words by drawing images", used by notebook 03_drawing_gan_units.

    name_list_train.txt, name_list_val.txt, name_list_test.txt   sample ids, one per line
    text/{id}.txt       the transcript (first line), then the other captions, one per line
    audio/{id}.wav      the spoken caption (real data; listed, never decoded here)
    images/{id}.png     optional: "normally regenerated" from the id (.jpg in the real data)
    masks/{id}.png      object ids as uint8: 0 floor, k + 1 object k (written here)
    scenes/{id}.json    scene graph (written here)
    world.json          size, seed, n_objects: what regenerates sample `id` of the shapes world

A sample's id is its index in the latent bank: with world.json and no images/, the reader regenerates
every image (and its masks, scene and captions) from the ids alone.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..progress import progress
from ..world.render import MAX_SIZE, MIN_SIZE
from ..world.rng import SEED_LIMIT
from ..world.sampling import MAX_OBJECTS
from ..world.scene import Scene
from ..world.views.captioned import CONCEPTS, concept_masks, regenerate
from ..world.views.common import SPLITS, SplitDataset
from .common import (IMAGE_ERRORS, IMAGE_SUFFIXES, FormatError, atomic_dir, check_size, files_by_stem, image_size,
                     read_image, read_json, read_text, write_image, write_json)


def write_drawing(dataset, folder: str | os.PathLike, with_images: bool = True, *, overwrite: bool = False,
                  show_progress: bool = True) -> Path:
    """Write captioned scenes (items as in CaptionedScenes) to a drawing folder, atomically.

    world.json is written when the dataset can say how to regenerate its samples (`dataset.world()`);
    `with_images=False` then leaves images/ out, as the paper does.
    """
    folder = Path(folder)
    world = dataset.world() if callable(getattr(dataset, "world", None)) else None
    if not with_images and world is None:
        raise ValueError("without images the folder needs world.json, and this dataset cannot regenerate its images")
    names: dict[str, list[str]] = {s: [] for s in SPLITS}
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        bar = {} if show_progress else {"disable": True}
        for index in progress(range(len(dataset)), desc="write drawing folder", **bar):
            item = dataset[index]
            sample = str(item["id"])
            if item["split"] not in names:
                raise ValueError(f"sample {sample}: split must be one of {SPLITS}, got {item['split']!r}")
            names[item["split"]].append(sample)
            captions = list(item.get("captions") or [])
            if captions:
                if any("\n" in c for c in captions):
                    raise ValueError(f"sample {sample}: a caption spans lines")
                (tmp / "text").mkdir(exist_ok=True)
                (tmp / "text" / f"{sample}.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
            if with_images:
                write_image(tmp / "images" / f"{sample}.png", item["image"])
            if item.get("ids") is not None:
                ids = torch.as_tensor(item["ids"]).long()
                if int(ids.max()) >= 255:
                    raise ValueError(f"sample {sample}: more than 254 objects do not fit a uint8 mask")
                (tmp / "masks").mkdir(exist_ok=True)
                Image.fromarray((ids + 1).to(torch.uint8).numpy()).save(tmp / "masks" / f"{sample}.png")
            if item.get("scene") is not None:
                write_json(tmp / "scenes" / f"{sample}.json", item["scene"].to_dict())
            if item.get("audio"):
                (tmp / "audio").mkdir(exist_ok=True)
                shutil.copyfile(item["audio"], tmp / "audio" / f"{sample}{Path(item['audio']).suffix}")
        all_names = [n for split in SPLITS for n in names[split]]
        if len(set(all_names)) != len(all_names):
            raise ValueError("sample ids must be unique")
        for split in SPLITS:
            (tmp / f"name_list_{split}.txt").write_text("".join(f"{n}\n" for n in names[split]), encoding="utf-8")
        if world is not None:
            write_json(tmp / "world.json", world)
    return folder


def read_drawing(folder: str | os.PathLike) -> "DrawingFolder":
    """Read a drawing folder as a Dataset with CaptionedScenes' items (see DrawingFolder)."""
    return DrawingFolder(folder)


def _is_bank_index(name: str) -> bool:
    """Whether a sample id names an index of the latent bank: ASCII digits only ("٣" is a digit, not an index)."""
    return name.isascii() and name.isdigit()


def _read_names(folder: Path) -> tuple[list[str], list[str]]:
    """The sample ids of the name lists and the split of each, in the order train, val, test."""
    lists = [folder / f"name_list_{s}.txt" for s in SPLITS]
    if not any(p.exists() for p in lists):
        raise FormatError(folder, f"no name list ({', '.join(p.name for p in lists)})")
    names, splits, seen = [], [], {}
    for split, path in zip(SPLITS, lists):
        if not path.exists():
            continue
        for line in read_text(path).splitlines():
            name = line.strip()
            if not name:
                continue
            if "/" in name or "\\" in name:
                raise FormatError(path, f"sample id {name!r} is not a file name")
            key = int(name) if _is_bank_index(name) else name  # "7" and "007" are one bank index
            if key in seen:
                raise FormatError(path, f"sample id {name!r} is also listed in name_list_{seen[key]}.txt")
            if _is_bank_index(name) and key >= SEED_LIMIT:
                raise FormatError(path, f"sample id {name!r} is too large for a bank index (at most 2**63 - 1)")
            seen[key] = split
            names.append(name)
            splits.append(split)
    if not names:
        raise FormatError(folder, "the name lists hold no sample id")
    return names, splits


def _check_world(path: Path, world) -> dict[str, Any]:
    if not isinstance(world, dict):
        raise FormatError(path, "must be a JSON object with size, seed and n_objects")
    for key in ("size", "seed", "n_objects"):
        if key not in world:
            raise FormatError(path, f"missing {key!r}")
    size, seed, n_objects = world["size"], world["seed"], world["n_objects"]
    integer = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not integer(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise FormatError(path, f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}, found {size!r}")
    if not integer(seed) or not 0 <= seed < SEED_LIMIT:
        raise FormatError(path, f"seed must be an integer from 0 to 2**63 - 1, found {seed!r}")
    if (not isinstance(n_objects, list) or len(n_objects) != 2 or not all(integer(k) for k in n_objects)
            or not 0 <= n_objects[0] <= n_objects[1] <= MAX_OBJECTS):
        raise FormatError(path, f"n_objects must be [min, max] with 0 <= min <= max <= {MAX_OBJECTS}, "
                                f"found {n_objects!r}")
    return world


def _read_scene(path: Path) -> Scene:
    try:
        return Scene.from_dict(read_json(path))
    except FormatError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise FormatError(path, f"malformed scene ({type(err).__name__}: {err})") from None


class DrawingFolder(SplitDataset):
    """A drawing folder read as a Dataset, in the order train, val, test (name-list order).

    Item (a dict, as CaptionedScenes): image (3, H, W) uint8, ids (H, W) int64 or None, masks (C, H, W) bool
    or None (needs ids and the scene), captions list[str] ([] without text), transcript (or None), scene
    (or None), id (int when numeric), split, audio (path of audio/{id}.wav, or None).
    Images come from images/ when present, else are regenerated from world.json and the id (once, when the
    folder is read); every image has one size (world.json's, else the first stored image's). Real folders
    (audio, text, images, no masks or scenes) read with None in those fields.
    """

    concepts = CONCEPTS

    def __init__(self, folder: str | os.PathLike):
        self.folder = folder = Path(folder)
        if not folder.is_dir():
            raise FormatError(folder, "folder not found")
        self.names, self.splits = _read_names(folder)
        self.text_files = files_by_stem(folder / "text", (".txt",))
        self.audio_files = files_by_stem(folder / "audio", (".wav", ".flac", ".mp3"))
        self.image_files = files_by_stem(folder / "images", IMAGE_SUFFIXES)
        self.mask_files = files_by_stem(folder / "masks", (".png",))
        self.scene_files = files_by_stem(folder / "scenes", (".json",))
        self.world = None
        if (folder / "world.json").exists():
            self.world = _check_world(folder / "world.json", read_json(folder / "world.json"))
        for name in self.names:
            if name not in self.text_files and name not in self.audio_files:
                raise FormatError(folder, f"sample {name!r} has neither text/{name}.txt nor audio/{name}.wav")
        self._regenerate([n for n in self.names if n not in self.image_files])
        # Every image has one size: world.json's, else the first stored image's.
        if self.world is not None:
            self.size, self.size_source = (self.world["size"],) * 2, "world.json"
        else:  # without world.json every sample has a stored image (else _regenerate refused the folder)
            first = self.image_files[self.names[0]]
            self.size, self.size_source = image_size(first), first.name

    def _regenerate(self, missing: list[str]) -> None:
        """Regenerate, from world.json, the samples whose image is not stored."""
        self._generated: dict[str, int] = {}
        if not missing:
            return
        folder = self.folder
        if self.world is None:
            raise FormatError(folder, f"{len(missing)} samples lack an image (e.g. images/{missing[0]}.png) "
                                      "and there is no world.json to regenerate them")
        not_numeric = [n for n in missing if not _is_bank_index(n)]
        if not_numeric:
            name_list = folder / f"name_list_{self.splits[self.names.index(not_numeric[0])]}.txt"
            raise FormatError(name_list, f"sample id {not_numeric[0]!r} has no image and is not a bank index (ASCII "
                                         "digits) to regenerate it from world.json")
        scenes, images, ids, captions = regenerate([int(n) for n in missing], self.world["size"],
                                                   self.world["seed"], tuple(self.world["n_objects"]))
        self._generated = {n: k for k, n in enumerate(missing)}
        self._gen_scenes, self._gen_images, self._gen_ids, self._gen_captions = scenes, images, ids, captions
        probe = missing[0]
        if probe in self.scene_files and _read_scene(self.scene_files[probe]) != scenes[0]:
            raise FormatError(folder / "world.json", f"does not regenerate the stored scene of sample {probe!r}: "
                                                     "wrong size, seed or n_objects?")

    def __len__(self) -> int:
        return len(self.names)

    def _image(self, name: str) -> torch.Tensor:
        if name in self._generated:
            return self._gen_images[self._generated[name]]
        path = self.image_files[name]
        image = read_image(path)
        check_size(path, image.shape, self.size, self.size_source)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))

    def _ids(self, name: str) -> torch.Tensor | None:
        if name in self.mask_files:
            path = self.mask_files[name]
            try:
                with Image.open(path) as image:
                    array = np.asarray(image)
            except IMAGE_ERRORS as err:
                raise FormatError(path, f"not a readable image ({type(err).__name__}: {err})") from None
            if array.ndim != 2 or array.dtype.kind not in "bui":
                raise FormatError(path, f"an instance mask must be one channel of integers, found shape "
                                        f"{array.shape} {array.dtype}")
            return torch.from_numpy(array.astype(np.int64) - 1)
        if name in self._generated:
            return self._gen_ids[self._generated[name]]
        return None

    def _scene(self, name: str) -> Scene | None:
        if name in self.scene_files:
            return _read_scene(self.scene_files[name])
        if name in self._generated:
            return self._gen_scenes[self._generated[name]]
        return None

    def _captions(self, name: str) -> list[str]:
        if name in self.text_files:
            captions = [line.strip() for line in read_text(self.text_files[name]).splitlines() if line.strip()]
            if not captions:
                raise FormatError(self.text_files[name], "no caption")
            return captions
        if name in self._generated:
            return list(self._gen_captions[self._generated[name]])
        return []

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        name = self.names[index]
        image, ids, scene, captions = self._image(name), self._ids(name), self._scene(name), self._captions(name)
        if ids is not None and tuple(ids.shape) != tuple(image.shape[1:]):
            raise FormatError(self.mask_files.get(name, self.folder),
                              f"mask of sample {name!r} is {tuple(ids.shape)}, its image {tuple(image.shape[1:])}")
        masks = None
        if ids is not None and scene is not None:
            try:
                masks = concept_masks(ids, scene)
            except ValueError as err:
                raise FormatError(self.mask_files.get(name, self.folder), f"sample {name!r}: {err}") from None
        audio = self.audio_files.get(name)
        return {
            "image": image,
            "ids": ids,
            "masks": masks,
            "captions": captions,
            "transcript": captions[0] if captions else None,
            "scene": scene,
            "id": int(name) if _is_bank_index(name) else name,
            "split": self.splits[index],
            "audio": None if audio is None else str(audio),
        }

    def describe(self) -> str:
        counts = {s: self.splits.count(s) for s in SPLITS}
        stored = sum(n in self.image_files for n in self.names)
        return (f"drawing folder {self.folder.name}: {len(self)} samples (train {counts['train']} / val "
                f"{counts['val']} / test {counts['test']}); images: {stored} stored, {len(self._generated)} "
                f"regenerated from world.json; {sum(n in self.text_files for n in self.names)} transcripts, "
                f"{sum(n in self.audio_files for n in self.names)} audio files, "
                f"{sum(n in self.mask_files for n in self.names)} masks.")

    def __repr__(self) -> str:
        return f"read_drawing({str(self.folder)!r})"
