"""Evaluation of the word-learning model as in the paper: retrieval both ways, one positive against K edited
negatives, the per-attribute word test, and matchmaps drawn over images.

Ranks count ties against the positive: a negative that scores exactly as high as the positive ranks above it
(an edit that changed nothing is not a win).
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from tutorlib.plots import to_display
from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.text import tokenize
from tutorlib.world.views.captioned import CONCEPTS

from .speech import spoken_captions
from .words import WordModel, matchmap, similarity, similarity_matrix

RECALL_AT = (1, 5, 10)


@torch.no_grad()
def encode_images(model: WordModel, images: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Image features (N, D, h, w) on the CPU, `chunk` images at a time. Introduced in notebook 03_drawing_gan_units."""
    model.eval()
    return torch.cat([model.encode_images(images[s: s + chunk]).cpu() for s in range(0, len(images), chunk)])


@torch.no_grad()
def encode_captions(model: WordModel, captions: Sequence, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Caption features (N, D, T) and mask (N, T) on the CPU, padded to the longest caption.

    Introduced in notebook 03_drawing_gan_units.
    """
    model.eval()
    parts = [model.encode_captions(captions[s: s + chunk]) for s in range(0, len(captions), chunk)]
    length = max(f.shape[2] for f, _ in parts)
    features = torch.cat([F.pad(f.cpu(), (0, length - f.shape[2])) for f, _ in parts])
    return features, torch.cat([F.pad(m.cpu(), (0, length - m.shape[1])) for _, m in parts])


def ranks_of_positives(scores: torch.Tensor) -> torch.Tensor:
    """(N,) rank of the positive in each row of (N, N) scores whose positive is on the diagonal: the number of
    other entries of the row scoring at least as high (0 = first). Introduced in notebook 03_drawing_gan_units."""
    positive = scores.diagonal()[:, None]
    others = ~torch.eye(len(scores), dtype=torch.bool)
    return ((scores >= positive) & others).sum(dim=1)


def recall_at(ranks: torch.Tensor, ks: Sequence[int] = RECALL_AT) -> dict[str, float]:
    """{"R@k": share of ranks < k}. Introduced in notebook 03_drawing_gan_units."""
    return {f"R@{k}": float((ranks < k).float().mean()) for k in ks}


def retrieval(model: WordModel, images: torch.Tensor, captions: Sequence) -> dict[str, dict[str, float]]:
    """R@1/5/10 over N pairs in both directions: {"image_to_caption": {...}, "caption_to_image": {...}}.
    Chance R@k is k / N. Introduced in notebook 03_drawing_gan_units."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    scores = similarity_matrix(encode_images(model, images), *encode_captions(model, captions))
    return {"image_to_caption": recall_at(ranks_of_positives(scores)),
            "caption_to_image": recall_at(ranks_of_positives(scores.T))}


def edited_negatives_recall(model: WordModel, images: torch.Tensor, captions: Sequence, negatives: torch.Tensor,
                            ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """One positive against K edited negatives per caption: images (N, 3, H, W), N captions, negatives
    (N, K, 3, H, W) (image i edited K ways) -> {"R@1", "R@5"}: share of captions whose own image ranks within
    the top k of the K + 1. Chance R@k is k / (K + 1). Introduced in notebook 03_drawing_gan_units."""
    if negatives.ndim != 5 or negatives.shape[0] != len(images) or negatives.shape[2:] != images.shape[1:]:
        raise ValueError(f"negatives must be (N, K, 3, H, W) with N = {len(images)} and images of shape "
                         f"{tuple(images.shape[1:])}, got {tuple(negatives.shape)}")
    n, k = negatives.shape[:2]
    captions_f, mask = encode_captions(model, captions)
    positive = similarity(encode_images(model, images), captions_f, mask)
    negative = similarity(encode_images(model, negatives.flatten(0, 1)), captions_f.repeat_interleave(k, 0),
                          mask.repeat_interleave(k, 0)).view(n, k)
    ranks = (negative >= positive[:, None]).sum(dim=1)
    return recall_at(ranks, ks)


def _pair_share(with_scores: torch.Tensor, without_scores: torch.Tensor) -> float:
    # share of (with, without) pairs with S(with) > S(without); ties count half
    difference = with_scores[:, None] - without_scores[None, :]
    return float(((difference > 0).float() + 0.5 * (difference == 0).float()).mean())


def word_captions(caption: str, values: Sequence[str]) -> dict[str, object]:
    """The one-word caption of each attribute value ("red"): the word itself for text, its espeak-ng log-mel
    spectrogram for speech. Introduced in notebook 03_drawing_gan_units."""
    if caption == "text":
        return {value: value for value in values}
    return dict(zip(values, spoken_captions(list(values), show_progress=False)))


@torch.no_grad()
def word_features(model: WordModel, values: Sequence[str], captions: Sequence[str] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (V, D, T) and mask (V, T) of each word, as a caption the model reads.

    Without `captions` each word is read alone (word_captions). With text `captions`, a word is read in context:
    its token's feature averaged over every occurrence in the captions, a_w = mean_k A_k(t_k), a one-position
    caption (a word that occurs in none of them is read alone). Introduced in notebook 03_drawing_gan_units.
    """
    values = list(values)
    if not values:
        raise ValueError("no words to read")
    found: dict[str, list[torch.Tensor]] = {}
    if captions is not None:
        if model.config.caption != "text":
            raise ValueError("words are read in context from text captions; a speech model reads them alone "
                             "(captions=None)")
        features, _ = encode_captions(model, list(captions))
        for row, words in enumerate(tokenize(c) for c in captions):
            for position, word in enumerate(words):
                if word in values:
                    found.setdefault(word, []).append(features[row, :, position])
    columns = {value: (torch.stack(found[value]).mean(dim=0)[:, None], torch.ones(1, dtype=torch.bool))
               for value in found}
    alone = [value for value in values if value not in found]
    if alone:
        spoken = word_captions(model.config.caption, alone)
        features, mask = encode_captions(model, [spoken[value] for value in alone])
        columns.update({value: (features[k], mask[k]) for k, value in enumerate(alone)})
    length = max(mask.shape[0] for _, mask in columns.values())
    features = torch.stack([F.pad(columns[v][0], (0, length - columns[v][0].shape[1])) for v in values])
    return features, torch.stack([F.pad(columns[v][1], (0, length - columns[v][1].shape[0])) for v in values])


def word_test(model: WordModel, images: torch.Tensor, presence: torch.Tensor, captions: Sequence[str] | None = None,
              concepts: Sequence[str] = CONCEPTS) -> dict:
    """The per-attribute word test. For each concept c = "attribute=value" with images both with and without it
    (presence (N, C) bool over `concepts`), the word is its value ("red"), S(image, word) is the similarity of the
    image to the word read as a caption (word_features: alone, or in context from text `captions`), and the score
    is the share of (with, without) image pairs with S(with, word) > S(without, word) (ties count half; chance 0.5).
    Returns {"per_word": {value: score}, "per_attribute": {attribute: mean over its values}, "mean": mean of
    the attribute means}. Introduced in notebook 03_drawing_gan_units.
    """
    presence = torch.as_tensor(presence, dtype=torch.bool)
    if presence.shape != (len(images), len(concepts)):
        raise ValueError(f"presence must be (N, C) = ({len(images)}, {len(concepts)}), got {tuple(presence.shape)}")
    tested = [(i, c) for i, c in enumerate(concepts) if 0 < int(presence[:, i].sum()) < len(images)]
    values = [c.split("=", 1)[1] for _, c in tested]
    scores = similarity_matrix(encode_images(model, images), *word_features(model, values, captions))  # (N, words)
    per_word, per_attribute = {}, {}
    for column, ((index, concept), value) in enumerate(zip(tested, values)):
        has = presence[:, index]
        per_word[value] = _pair_share(scores[has, column], scores[~has, column])
        per_attribute.setdefault(concept.split("=", 1)[0], []).append(per_word[value])
    per_attribute = {a: float(np.mean(per_attribute[a])) for a in ATTRIBUTES if a in per_attribute}
    return {"per_word": per_word, "per_attribute": per_attribute,
            "mean": float(np.mean(list(per_attribute.values()))) if per_attribute else math.nan}


def caption_positions(model: WordModel, caption, mask_length: int) -> list[str]:
    """Labels of a caption's feature positions: its words for text, time spans in seconds for speech."""
    if model.config.caption == "text":
        return tokenize(caption)
    seconds = model.caption.POOLING * 0.01
    return [f"{t * seconds:.2f}-{(t + 1) * seconds:.2f} s" for t in range(mask_length)]


@torch.no_grad()
def plot_matchmap(model: WordModel, image: torch.Tensor, caption, max_panels: int = 8, scale: float = 1.4) -> Figure:
    """The image and, per caption position (word, or speech segment), the matchmap M(h, w, t) upsampled over it
    as a heat map, titled with the word and max M; image (3, H, W) uint8; caption a string or a spectrogram.
    At most `max_panels` positions are drawn (speech positions are grouped evenly). Introduced in notebook 03."""
    if image.ndim != 3:
        raise ValueError(f"image must be (3, H, W), got shape {tuple(image.shape)}")
    model.eval()
    image_f = model.encode_images(image[None])[0].cpu()
    caption_f, mask = model.encode_captions([caption])
    length = int(mask[0].sum())
    maps = matchmap(image_f, caption_f[0, :, :length].cpu())  # (h, w, T)
    labels = caption_positions(model, caption, length)
    if length > max_panels:  # group consecutive positions, keeping each group's strongest response
        groups = np.array_split(np.arange(length), max_panels)
        maps = torch.stack([maps[..., g].amax(dim=-1) for g in groups], dim=-1)
        labels = [labels[g[0]].split("-")[0] + "-" + labels[g[-1]].split("-")[-1] if model.config.caption == "speech"
                  else " ".join(labels[i] for i in g) for g in groups]
    size = image.shape[-2:]
    upsampled = F.interpolate(maps.permute(2, 0, 1)[None], size=tuple(size), mode="bilinear", align_corners=False)[0]
    low, high = float(upsampled.min()), float(upsampled.max())
    figure, axes = plt.subplots(1, len(labels) + 1, figsize=((len(labels) + 1) * scale, scale + 0.4), squeeze=False)
    shown = to_display(image)
    axes[0, 0].imshow(shown)
    axes[0, 0].set_title("image", fontsize=8)
    for axis, heat, label in zip(axes[0, 1:], upsampled, labels):
        axis.imshow(shown)
        axis.imshow(heat.numpy(), cmap="jet", alpha=0.55, vmin=low, vmax=high)
        axis.set_title(f"{label}\nmax {float(heat.max()):.2f}", fontsize=7)
    for axis in axes.flat:
        axis.axis("off")
    figure.tight_layout()
    return figure
