"""CLEVR-Change data for IDC: the folder (world-generated or real), grid features of every image, the caption
vocabulary, and the captioning examples (a pair and its reference captions). Introduced in notebook
05_idc_difference_captioning.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tutorlib.cache import cached_dir
from tutorlib.formats import ClevrChangeFiles, read_clevr_change, write_clevr_change
from tutorlib.world.text import Vocabulary, world_vocabulary
from tutorlib.world.views.change_pairs import ChangePairs

MASK = "<mask>"
DISTRACTOR = "distractor"  # the change type of a pair whose "after" image only moved the camera or the light
SLOT_AFTER, SLOT_DISTRACTOR = 1, 2  # position of the second image in IdcData.features[:, slot]


def world_change_folder(n_pairs: int, image_size: int) -> Path:
    """A CLEVR-Change folder of `n_pairs` world change pairs (data seed 0), generated once and cached.

    Introduced in notebook 05_idc_difference_captioning.
    """
    spec = {"n_pairs": n_pairs, "size": image_size, "seed": 0}
    build = lambda tmp: write_clevr_change(ChangePairs(n_pairs, size=image_size, seed=0), tmp / "clevr_change")  # noqa: E731
    return cached_dir("idc-clevr-change", spec, build) / "clevr_change"


@dataclass
class IdcData:
    """Grid features and captions of a CLEVR-Change folder.

    features: (N, 3, R, C) standardised features of the before, after and distractor images (R grid cells);
    the captions, change types and splits per item; `files` gives the images (and, for world data, the scenes).
    Introduced in notebook 05_idc_difference_captioning.
    """

    features: torch.Tensor
    change_captions: list[list[str]]
    no_change_captions: list[list[str]]
    change_types: list[str]
    splits: list[str]
    files: ClevrChangeFiles

    def __len__(self) -> int:
        return len(self.change_types)

    def vocabulary(self) -> Vocabulary:
        """The world's words, every caption word and the <mask> token."""
        texts = [c for cs in self.change_captions + self.no_change_captions for c in cs]
        return Vocabulary(world_vocabulary(texts).words + [MASK])

    def examples(self, split: str, share: float = 1.0, seed: int = 0) -> "Examples":
        """The split's captioning examples: each item gives its change pair and its distractor pair. With
        share < 1 a random share of the items (at least one) is kept, both pairs of each."""
        items = [i for i, s in enumerate(self.splits) if s == split]
        if not items:
            raise ValueError(f"no items in split {split!r}; splits here: {sorted(set(self.splits))}")
        if share < 1.0:
            keep = max(1, int(round(share * len(items))))
            items = sorted(np.random.default_rng(seed).choice(items, keep, replace=False).tolist())
        rows = [(i, slot) for i in items for slot in (SLOT_AFTER, SLOT_DISTRACTOR)]
        return Examples(self, [i for i, _ in rows], [s for _, s in rows])


@dataclass
class Examples:
    """Captioning examples: pair k is (features[item[k], 0], features[item[k], slot[k]]).

    Introduced in notebook 05_idc_difference_captioning.
    """

    data: IdcData
    item: list[int]
    slot: list[int]

    def __len__(self) -> int:
        return len(self.item)

    def changed(self, k: int) -> bool:
        return self.slot[k] == SLOT_AFTER

    def references(self, k: int) -> list[str]:
        i = self.item[k]
        return self.data.change_captions[i] if self.changed(k) else self.data.no_change_captions[i]

    def change_type(self, k: int) -> str:
        return self.data.change_types[self.item[k]] if self.changed(k) else DISTRACTOR

    def pair_features(self, rows) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, R, C) features of the first and of the second image of examples `rows`."""
        items, slots = torch.as_tensor([self.item[k] for k in rows]), torch.as_tensor([self.slot[k] for k in rows])
        return self.data.features[items, 0], self.data.features[items, slots]


def encode_captions(vocab: Vocabulary, captions: list[str], max_text: int) -> torch.Tensor:
    """(N, max_text) token ids: the words, then <eos>, then <pad>; a long caption keeps its <eos> last.

    Introduced in notebook 05_idc_difference_captioning.
    """
    rows = torch.full((len(captions), max_text), vocab.pad, dtype=torch.long)
    for k, caption in enumerate(captions):
        ids = vocab.encode(caption)[0][: max_text - 1] + [vocab.index["<eos>"]]
        rows[k, : len(ids)] = torch.tensor(ids)
    return rows


def _standardise(features: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    # x' = (x - mean_c) / (std_c + 1e-6), channel statistics over the training items' before images
    flat = train.reshape(-1, features.shape[-1])
    return (features - flat.mean(0)) / (flat.std(0) + 1e-6)


def load_change_data(folder: str | os.PathLike, extract: Callable[[torch.Tensor], torch.Tensor], extractor_key) -> IdcData:
    """Read a CLEVR-Change folder (missing images or captions raise a FormatError naming them) and compute the
    grid features of every image with `extract` (uint8 images (N, 3, H, W) -> (N, R, C)); features are cached
    under the folder and `extractor_key` (any JSON value naming the extractor, e.g. its config).

    Introduced in notebook 05_idc_difference_captioning.
    """
    files = read_clevr_change(folder)

    def build(tmp: Path) -> None:
        parts = []
        for start in range(0, len(files), 256):  # a chunk of items at a time: real images are large
            items = [files[i] for i in range(start, min(start + 256, len(files)))]
            parts.append(torch.stack([extract(torch.stack([item[key] for item in items]))
                                      for key in ("before", "after", "distractor")], 1))
        save_file({"features": torch.cat(parts).contiguous()}, str(tmp / "features.safetensors"))

    spec = {"folder": str(Path(folder).resolve()), "extractor": extractor_key}
    features = load_file(str(cached_dir("idc-features", spec, build) / "features.safetensors"))["features"]
    records = files.records
    train = [k for k, r in enumerate(records) if r["split"] == "train"] or list(range(len(records)))
    return IdcData(_standardise(features, features[train, 0]), [r["change_captions"] for r in records],
                   [r["no_change_captions"] for r in records], [r["change_type"] for r in records],
                   [r["split"] for r in records], files)
