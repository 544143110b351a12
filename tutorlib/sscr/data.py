"""Editing dialogues as tensors for training: images, token ids, entity bags; built from any dataset with
EditingDialogues' item layout (the generated world, or a real i-CLEVR file read by read_iclevr).

Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tutorlib.cache import cached_dir
from tutorlib.formats import read_iclevr, write_iclevr
from tutorlib.world.text import Vocabulary
from tutorlib.world.views import EditingDialogues

from .text import encode

# Generated data: one file per split, from these world seeds (the training seed of a run does not change them).
SPLIT_SEEDS = {"train": 0, "test": 1}


def iclevr_file(split: str, n: int, size: int, turns: int = 5) -> Path:
    """The path of a generated i-CLEVR file of `n` dialogues (cached: written once, then reused).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    if split not in SPLIT_SEEDS:
        raise ValueError(f"split must be one of {list(SPLIT_SEEDS)}, got {split!r}")
    spec = {"split": split, "n": n, "size": size, "turns": turns, "seed": SPLIT_SEEDS[split]}
    folder = cached_dir("iclevr", spec, lambda tmp: write_iclevr(
        EditingDialogues(n, size=size, seed=SPLIT_SEEDS[split], turns=turns, progress=False),
        tmp / f"clevr_{split}.h5", show_progress=False))
    return folder / f"clevr_{split}.h5"


@dataclass
class DialogueTensors:
    """Dialogues as tensors: images (N, T, 3, S, S) uint8, background (3, S, S) uint8, ids (N, T, L),
    lengths (N, T), objects (N, T, 24), coords (N, T, 24, 3), instructions, and the scene graphs when known.

    Introduced in notebook 01_sscr_iterative_editing.
    """

    images: torch.Tensor
    background: torch.Tensor
    ids: torch.Tensor
    lengths: torch.Tensor
    objects: torch.Tensor
    coords: torch.Tensor
    instructions: list[list[str]]
    unknown: list[str]

    @classmethod
    def from_dataset(cls, dataset, vocab: Vocabulary, max_len: int = 16) -> "DialogueTensors":
        """Read every item; unknown words (mapped to <unk>) are collected in `.unknown`."""
        items = [dataset[i] for i in range(len(dataset))]
        if not items:
            raise ValueError("the dataset holds no dialogues")
        turns = len(items[0]["instructions"])
        texts = [t for item in items for t in item["instructions"]]
        encoded = encode(vocab, texts, max_len)
        n, length = len(items), encoded.ids.shape[1]
        return cls(
            images=torch.stack([item["images"] for item in items]),
            background=items[0]["background"],
            ids=encoded.ids.view(n, turns, length),
            lengths=encoded.lengths.view(n, turns),
            objects=torch.stack([torch.as_tensor(item["objects"]) for item in items]),
            coords=torch.stack([torch.as_tensor(item["coords"]) for item in items]),
            instructions=[list(item["instructions"]) for item in items],
            unknown=sorted({w for words in encoded.unknown for w in words}),
        )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def turns(self) -> int:
        return self.images.shape[1]

    def head(self, share: float) -> "DialogueTensors":
        """The first `share` of the dialogues (at least one): SSCR's data-scarcity setting."""
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share}")
        k = max(1, int(len(self) * share))
        return DialogueTensors(self.images[:k], self.background, self.ids[:k], self.lengths[:k], self.objects[:k],
                               self.coords[:k], self.instructions[:k], self.unknown)

    def batch(self, indices: torch.Tensor, device, generator: torch.Generator | None = None) -> dict:
        """Training tensors of the chosen dialogues: `images` (B, T, 3, S, S) and `previous` (the canvas before
        each turn, the background first) in [-1, 1] with dequantisation noise U(0, 1/127.5); ids, lengths,
        objects, and `added` (the entities each turn adds)."""
        images = to_signed(self.images[indices], generator)
        background = to_signed(self.background.expand(len(indices), 1, *self.background.shape), generator)
        objects = self.objects[indices]
        added = objects - torch.cat([torch.zeros_like(objects[:, :1]), objects[:, :-1]], dim=1)
        return {k: v.to(device) for k, v in {
            "images": images, "previous": torch.cat([background, images[:, :-1]], dim=1),
            "ids": self.ids[indices], "lengths": self.lengths[indices], "objects": objects,
            "added": added.clamp(min=0)}.items()}


def to_signed(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]: x / 127.5 - 1, plus noise U(0, 1/127.5) when a generator is given.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    x = images.float() / 127.5 - 1
    if generator is not None:
        x = x + torch.rand(x.shape, generator=generator) / 127.5
    return x


def load_split(split: str, n: int, size: int, vocab: Vocabulary, path: str | Path | None = None) -> DialogueTensors:
    """A split as tensors: the generated world file, or a real i-CLEVR file at `path` (resized to `size`).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    source = read_iclevr(path or iclevr_file(split, n, size))
    data = DialogueTensors.from_dataset(source if path is None else _Resized(source, size, n), vocab)
    source.close()
    return data


class _Resized:
    """The first n items of an i-CLEVR file with images resized to `size` (real files are 128 px)."""

    def __init__(self, source, size: int, n: int):
        self.source, self.size, self.n = source, size, min(n, len(source))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        item = dict(self.source[i])
        for key in ("images", "background"):
            x = item[key].float()
            x = x if x.ndim == 4 else x[None]
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True,
                                                align_corners=False)
            item[key] = x.round().clamp(0, 255).to(torch.uint8).squeeze(0) if key == "background" else \
                x.round().clamp(0, 255).to(torch.uint8)
        return item
