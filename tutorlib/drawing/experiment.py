"""Notebook 03's measurements: GAN quality, the word data drawn by the GAN, and plain vs edited-negative training.

Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tutorlib.cache import cached_dir
from tutorlib.paths import atomic_write
from tutorlib.plots import image_grid
from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.text import object_phrase
from tutorlib.world.views.captioned import CONCEPTS, CaptionedScenes

from .config import DrawingConfig
from .dissection import Dissection
from .editing import edited_negatives
from .gan import Generator, generate
from .segmenter import Segmenter, describe, find_objects, segment, well_formed_share
from .word_eval import edited_negatives_recall, retrieval, word_test
from .word_train import train_word_model
from .words import WordModel

METHODS = ("plain", "edited")  # margin loss alone; margin loss + the edited-negative term


def gan_quality(generator: Generator, segmenter: Segmenter, n: int, bank_seed: int = 0) -> dict[str, float]:
    """The share of images in which the segmenter finds only well-formed objects, on n GAN samples and on n real
    renders of the GAN's world. Introduced in notebook 03_drawing_gan_units."""
    c = generator.config
    real = CaptionedScenes(n, c.image_size, c.world_seed + 7, c.n_objects, progress=False).images
    return {"gan": well_formed_share(segment(segmenter, generate(generator, ids=range(n), bank_seed=bank_seed))),
            "real": well_formed_share(segment(segmenter, real))}


def caption_accuracy(segmenter: Segmenter, n: int, world_seed: int = 4000) -> dict[str, float]:
    """How well `describe` captions n held-out renders of the segmenter's world: the share of scenes whose caption
    names exactly the visible objects (as a multiset of phrases), and per attribute the share of visible objects
    whose best-overlapping found object has the right value (a missed object counts as wrong).

    Introduced in notebook 03_drawing_gan_units.
    """
    c = segmenter.config
    data = CaptionedScenes(n, c.image_size, world_seed, c.n_objects, progress=False)
    exact, right, total = 0, {a: 0 for a in ATTRIBUTES}, 0
    for scene, ids, p in zip(data.scenes, data.ids.long(), segment(segmenter, data.images)):
        found = find_objects(p)
        visible = [(k, o) for k, o in enumerate(scene.objects) if bool((ids == k).any())]
        exact += sorted(f.phrase for f in found) == sorted(object_phrase(o) for _, o in visible)
        for k, obj in visible:
            overlaps = [int((f.mask & (ids == k)).sum()) for f in found]
            total += 1
            if overlaps and max(overlaps) > 0:
                best = found[int(np.argmax(overlaps))]
                for a in ATTRIBUTES:
                    right[a] += best.attributes[a] == obj.attributes()[a]
    return {"exact caption": exact / max(n, 1), **{a: right[a] / max(total, 1) for a in ATTRIBUTES}}


def captioned_grid(images: torch.Tensor, segmenter: Segmenter, nrow: int = 6) -> Figure:
    """Images titled with the segmenter's captions (describe). Introduced in notebook 03_drawing_gan_units."""
    captions = [describe(p)[1] for p in segment(segmenter, images)]
    return image_grid(images, nrow=nrow, titles=captions, scale=1.6)


def _presence(objects) -> torch.Tensor:
    row = torch.zeros(len(CONCEPTS), dtype=torch.bool)
    for o in objects:
        for attribute, value in o.attributes.items():
            row[CONCEPTS.index(f"{attribute}={value}")] = True
    return row


WORD_TENSORS = "word_data.safetensors"
WORD_JSON = "word_data.json"


@dataclass
class WordData:
    """GAN samples captioned by the segmenter, with their edited negatives. Introduced in notebook 03."""

    train_ids: list[int]
    train_images: torch.Tensor  # (N, 3, S, S) uint8
    train_captions: list[str]
    train_edited: torch.Tensor  # (N, 3, S, S): each image with one of its concepts ablated
    train_edited_concepts: list[str]
    test_ids: list[int]
    test_images: torch.Tensor
    test_captions: list[str]
    test_presence: torch.Tensor  # (M, C) bool: concepts of the objects the segmenter found
    test_negatives: torch.Tensor  # (M, K, 3, S, S) edited negatives of the 1-vs-K test

    def save(self, folder: Path) -> None:
        """Tensors to word_data.safetensors, the rest to word_data.json (loading them never runs code)."""
        fields = asdict(self)
        tensors = {k: v.contiguous() for k, v in fields.items() if isinstance(v, torch.Tensor)}
        with atomic_write(folder / WORD_TENSORS) as temporary:
            save_file(tensors, str(temporary))
        with atomic_write(folder / WORD_JSON) as temporary:
            temporary.write_text(json.dumps({k: v for k, v in fields.items() if k not in tensors}))

    @classmethod
    def load(cls, folder: Path) -> "WordData":
        try:
            tensors = load_file(str(folder / WORD_TENSORS))
            rest = json.loads((folder / WORD_JSON).read_text())
            return cls(**tensors, **rest)
        except (OSError, ValueError, TypeError, SafetensorError) as error:
            raise ValueError(f"damaged word data in {folder} ({error}); delete that folder to rebuild it") from error


def _captions(images: torch.Tensor, segmenter: Segmenter) -> tuple[list[str], list[list]]:
    described = [describe(p) for p in segment(segmenter, images)]
    return [caption for _, caption in described], [objects for objects, _ in described]


def build_word_data(config: DrawingConfig, generator: Generator, segmenter: Segmenter, dissection: Dissection
                    ) -> WordData:
    """Captions (segmenter), one edited negative per training image (a concept of its caption, drawn with the
    config's seed, ablated with `edit_units` units in its dilated mask) and K edited negatives per test image;
    every image is then resized (area average) to `word_image_size`.

    Introduced in notebook 03_drawing_gan_units.
    """
    train_ids = list(range(config.word_train))
    test_ids = list(range(config.word_train, config.word_train + config.word_test))
    train_images = generate(generator, ids=train_ids, bank_seed=config.bank_seed)
    test_images = generate(generator, ids=test_ids, bank_seed=config.bank_seed)
    train_captions, train_objects = _captions(train_images, segmenter)
    test_captions, test_objects = _captions(test_images, segmenter)
    rng = np.random.default_rng(config.seed)
    chosen = []
    for objects in train_objects:
        present = [CONCEPTS[c] for c in torch.nonzero(_presence(objects)).flatten().tolist()] or ["shape=cube"]
        chosen.append(present[int(rng.integers(len(present)))])
    common = dict(n_units=config.edit_units, dilation=config.dilation, bank_seed=config.bank_seed)
    train_edited = edited_negatives(generator, segmenter, dissection, train_ids, chosen, **common)
    test_negatives = edited_negatives(generator, segmenter, dissection, test_ids, k=config.negatives,
                                      seed=config.seed, **common)
    side = config.word_image_size

    def resized(images: torch.Tensor) -> torch.Tensor:
        flat = images.reshape(-1, *images.shape[-3:]).float()
        out = F.interpolate(flat, size=(side, side), mode="area").round().to(torch.uint8)
        return out.reshape(*images.shape[:-2], side, side)

    return WordData(train_ids, resized(train_images), train_captions, resized(train_edited), chosen, test_ids,
                    resized(test_images), test_captions, torch.stack([_presence(o) for o in test_objects]),
                    resized(test_negatives))


def word_data_for(config: DrawingConfig, generator: Generator, segmenter: Segmenter, dissection: Dissection
                  ) -> WordData:
    """build_word_data, cached by the configs it depends on (computed once per configuration).

    Introduced in notebook 03_drawing_gan_units.
    """
    key = {"gan": config.gan, "segmenter": config.segmenter, "layer": dissection.layer,
           "dissect_samples": dissection.n_samples, **{k: v for k, v in asdict(config).items()
                                                      if k not in ("gan", "segmenter", "words")}}
    folder = cached_dir("drawing-word-data", key,
                        lambda tmp: build_word_data(config, generator, segmenter, dissection).save(tmp))
    return WordData.load(folder)


def evaluate_word_model(model: WordModel, data: WordData, captions: Sequence | None = None) -> dict[str, float]:
    """Retrieval R@1/5/10 both ways, 1-vs-K edited negatives R@1/R@5 and the word test (per attribute, mean),
    on the test samples, as one flat dict. `captions` replaces the test captions (e.g. their spectrograms for a
    speech model). Introduced in notebook 03_drawing_gan_units."""
    captions = data.test_captions if captions is None else captions
    rows: dict[str, float] = {}
    for direction, recalls in retrieval(model, data.test_images, captions).items():
        rows.update({f"{direction} {k}": v for k, v in recalls.items()})
    k = data.test_negatives.shape[1]
    rows.update({f"1 vs {k} edited {name}": v for name, v in
                 edited_negatives_recall(model, data.test_images, captions, data.test_negatives).items()})
    counts = data.test_presence.sum(dim=0)
    if bool(((counts > 0) & (counts < len(data.test_presence))).any()):
        in_context = data.test_captions if model.config.caption == "text" else None
        words = word_test(model, data.test_images, data.test_presence, in_context)
        rows.update({f"word test {a}": v for a, v in words["per_attribute"].items()})
        rows["word test mean"] = words["mean"]
    else:  # no concept is present in some test images and absent in others: nothing to test
        rows["word test mean"] = float("nan")
    return rows


def compare_training(config: DrawingConfig, data: WordData, seeds: Sequence[int], device: torch.device
                     ) -> tuple[dict[str, dict[int, dict[str, float]]], dict[tuple[str, int], WordModel]]:
    """Train the word model with the plain margin loss and with edited negatives, once per seed, and evaluate each.

    Returns results[method][seed] = evaluate_word_model(...) and the models by (method, seed).
    Introduced in notebook 03_drawing_gan_units.
    """
    results: dict[str, dict[int, dict[str, float]]] = {m: {} for m in METHODS}
    models = {}
    data_key = {"ids": [data.train_ids[0], data.train_ids[-1]], "gan": asdict(config.gan),
                "segmenter": asdict(config.segmenter), "edit_units": config.edit_units, "layer": config.edit_layer,
                "dilation": config.dilation, "data_seed": config.seed}
    for seed in seeds:
        word_config = replace(config.words, seed=seed)
        for method in METHODS:
            edited = data.train_edited if method == "edited" else None
            model, _ = train_word_model(word_config, data.train_images, data.train_captions, edited, device,
                                        data_key=data_key)
            results[method][seed] = evaluate_word_model(model, data)
            models[(method, seed)] = model
    return results, models


def summarise(results: dict[str, dict[int, dict[str, float]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per method and metric: (mean over seeds, spread = half the range over seeds). Introduced in notebook 03."""
    table = {}
    for method, per_seed in results.items():
        metrics = list(next(iter(per_seed.values())))
        table[method] = {m: (float(np.mean([r[m] for r in per_seed.values()])),
                             float(np.ptp([r[m] for r in per_seed.values()]) / 2)) for m in metrics}
    return table


def claim_held(table: dict[str, dict[str, tuple[float, float]]], metrics: Sequence[str]) -> dict[str, bool]:
    """Per metric: edited beats plain by more than the larger spread of the two. Introduced in notebook 03."""
    verdict = {}
    for m in metrics:
        (plain, s_plain), (edited, s_edited) = table["plain"][m], table["edited"][m]
        verdict[m] = bool(edited - plain > max(s_plain, s_edited))
    return verdict


def table_text(table: dict[str, dict[str, tuple[float, float]]]) -> str:
    """The summary as aligned text: one row per metric, mean ± spread per method, and the gain.

    Introduced in notebook 03_drawing_gan_units.
    """
    metrics = list(table["plain"])
    width = max(len(m) for m in metrics)
    lines = [f"{'metric':<{width}}  {'plain':>14}  {'edited':>14}  {'gain':>7}"]
    for m in metrics:
        (p, sp), (e, se) = table["plain"][m], table["edited"][m]
        lines.append(f"{m:<{width}}  {p:>7.3f} ± {sp:<5.3f}  {e:>7.3f} ± {se:<5.3f}  {e - p:>+7.3f}")
    return "\n".join(lines)


def plot_edit_curves(curves: dict[str, dict[str, list]], mode: str) -> Figure:
    """Per concept: the share removed (ablate) or present (insert) inside the region, and the share of pixels changed
    outside, against the number of units N; dashed: N random units. Introduced in notebook 03_drawing_gan_units."""
    figure, axes = plt.subplots(1, 2, figsize=(7.6, 2.8))
    for k, (concept, rows) in enumerate(curves.items()):
        colour = plt.get_cmap("tab10")(k % 10)
        axes[0].plot(rows["n_units"], rows["share"], "o-", color=colour, label=concept, ms=3)
        axes[0].plot(rows["n_units"], rows["control_share"], "--", color=colour, alpha=0.6, lw=1)
        axes[1].plot(rows["n_units"], rows["changed_outside"], "o-", color=colour, ms=3)
        axes[1].plot(rows["n_units"], rows["control_changed_outside"], "--", color=colour, alpha=0.6, lw=1)
    axes[0].set_ylabel("removed inside the region" if mode == "ablate" else "concept inside the box after")
    axes[1].set_ylabel("pixels changed outside")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("N units (solid: top-N of the concept; dashed: N random)")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"{mode} curves", fontsize=9)
    figure.tight_layout()
    return figure
