"""Captioned scenes with exact masks: the data of notebook 03_drawing_gan_units (learning words by drawing).

In the seed paper, images come from a GAN whose latent codes form a fixed bank: a sample's id is its index
in the bank, so an image is regenerated from its id and never needs storing. Here the bank is the world
itself: sample `id` of a dataset with seed `seed` is the scene drawn from `item_seeds(seed, [id])`, so
(size, seed, n_objects, id) regenerate the image, the object-id map, every concept mask and the captions.

Concept masks are the supervised stand-in for GAN dissection: one boolean mask per concept "attribute=value"
(CONCEPTS, in a fixed order: sizes, colours, materials, shapes) marking the pixels of objects that have it.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ...progress import progress as _progress
from ..attributes import ATTRIBUTES
from ..render import check_image_size, render
from ..rng import check_seed
from ..sampling import check_object_range, sample_scenes
from ..scene import Scene
from ..text import scene_captions
from .common import SPLITS, VIEW_CAPTIONED, SplitDataset, check_count, item_seeds, split_names

CONCEPTS: tuple[str, ...] = tuple(f"{a}={v}" for a, values in ATTRIBUTES.items() for v in values)


def concept_table(scene: Scene) -> torch.Tensor:
    """(K, C) boolean table: object k has concept c (CONCEPTS order)."""
    table = torch.zeros(len(scene), len(CONCEPTS), dtype=torch.bool)
    for k, obj in enumerate(scene.objects):
        for a, v in obj.attributes().items():
            table[k, CONCEPTS.index(f"{a}={v}")] = True
    return table


def concept_masks(ids: torch.Tensor, scene: Scene) -> torch.Tensor:
    """(C, H, W) boolean masks of every concept, from an object-id map (H, W) (-1 floor) and its scene."""
    table = torch.cat([torch.zeros(1, len(CONCEPTS), dtype=torch.bool), concept_table(scene)])
    if ids.numel() and int(ids.max()) >= len(scene):
        raise ValueError(f"the id map names object {int(ids.max())}, the scene has {len(scene)} objects")
    return table[ids.long() + 1].permute(2, 0, 1).contiguous()


def regenerate(ids: Sequence[int], size: int, seed: int, n_objects: tuple[int, int], device="cpu",
               chunk: int = 512, progress: bool = False):
    """Scenes, images (N, 3, H, W) uint8, id maps (N, H, W) int64 and caption lists of samples `ids` of the
    world (size, seed, n_objects): what world.json and an id are enough to rebuild.
    """
    ids = np.asarray(list(ids), dtype=np.int64)
    if len(ids) and ids.min() < 0:
        raise ValueError("sample ids are bank indices: they must be >= 0")
    if not len(ids):
        return [], torch.zeros(0, 3, size, size, dtype=torch.uint8), torch.zeros(0, size, size, dtype=torch.long), []
    seeds = item_seeds(seed, ids, VIEW_CAPTIONED)
    batch = sample_scenes(seeds, tuple(n_objects))
    scenes = batch.scenes()
    images, id_maps = [], []
    bar = {} if progress else {"disable": True}
    for start in _progress(range(0, len(scenes), chunk), desc="render scenes", **bar):
        rendering = render(scenes[start : start + chunk], size, device=device)
        images.append(rendering.images.cpu())
        id_maps.append(rendering.ids.cpu())
    captions = [scene_captions(s, seed=int(k)) for s, k in zip(scenes, seeds)]
    return scenes, torch.cat(images), torch.cat(id_maps), captions


class CaptionedScenes(SplitDataset):
    """`n` captioned scenes (ids 0..n-1) with object-id maps and concept masks, split train / val / test.

    Splits are contiguous id ranges (train first): the scenes are independent draws, so this is a random
    split, and a name list is a range. Images and id maps are rendered when the dataset is built and kept
    in memory (ids as int8); concept masks are computed per item.

    Item (a dict):
        image       (3, H, W) uint8
        ids         (H, W) int64, -1 on the floor, k on object k
        masks       (C, H, W) bool, one per concept of CONCEPTS ("color=red", ...)
        captions    list[str] (scene_captions); transcript: the first caption
        scene       the scene graph
        id          int, the sample's index in the bank (regenerates it)
        split       "train", "val" or "test"
        audio       None (a real folder may list audio files)
    """

    concepts = CONCEPTS

    def __init__(self, n: int, size: int = 64, seed: int = 0, n_objects: tuple[int, int] = (2, 5),
                 split_shares: tuple[float, float, float] = (0.8, 0.1, 0.1), *, device="cpu", progress: bool = True):
        self.n, self.size, self.seed = check_count("n", n), check_image_size(size), check_seed(seed)
        self.n_objects = check_object_range(n_objects)
        self.split_shares = tuple(float(s) for s in split_shares)
        self.splits = split_names(self.n, self.split_shares)
        self.scenes, images, ids, self.captions = regenerate(range(self.n), self.size, self.seed, self.n_objects,
                                                             device=device, progress=progress)
        self.images = images
        self.ids = ids.to(torch.int8)  # at most a few objects: small in memory

    def world(self) -> dict[str, Any]:
        """What regenerates any sample from its id (the content of world.json)."""
        return {"generator": "tutorlib.world.views.CaptionedScenes", "size": self.size, "seed": self.seed,
                "n_objects": list(self.n_objects)}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.n <= index < self.n:
            raise IndexError(f"sample {index} out of range for {self.n} samples")
        index %= self.n
        ids = self.ids[index].long()
        return {
            "image": self.images[index],
            "ids": ids,
            "masks": concept_masks(ids, self.scenes[index]),
            "captions": list(self.captions[index]),
            "transcript": self.captions[index][0],
            "scene": self.scenes[index],
            "id": index,
            "split": self.splits[index],
            "audio": None,
        }

    def describe(self) -> str:
        counts = {s: self.splits.count(s) for s in SPLITS}
        objects = np.bincount([len(s) for s in self.scenes], minlength=self.n_objects[1] + 1)
        histogram = ", ".join(f"{k}: {c}" for k, c in enumerate(objects) if c)
        return (f"CaptionedScenes: {self.n} scenes of {self.size}x{self.size} px (seed {self.seed}), "
                f"train {counts['train']} / val {counts['val']} / test {counts['test']}; objects per scene "
                f"{{{histogram}}}; {len(CONCEPTS)} concepts; {sum(len(c) for c in self.captions)} captions.")

    def __repr__(self) -> str:
        return (f"CaptionedScenes(n={self.n}, size={self.size}, seed={self.seed}, n_objects={self.n_objects}, "
                f"split_shares={self.split_shares})")
