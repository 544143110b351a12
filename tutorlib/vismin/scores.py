"""VisMin's text, image and group scores for two-tower models. Introduced in notebook 04_vismin_minimal_change."""
from __future__ import annotations

from typing import Sequence

import torch

from tutorlib.clip import Clip

CATEGORY_ORDER = ("object", "attribute", "relation", "counting")


@torch.no_grad()
def pair_similarities(clip: Clip, items: Sequence[dict], batch: int = 512) -> torch.Tensor:
    """(N, 2, 2) similarities s[n, c, i] = <caption c, image i> of each minimal-change item (c, i in {0, 1}).

    Introduced in notebook 04_vismin_minimal_change.
    """
    images = torch.stack([item[f"image{k}"] for item in items for k in (0, 1)])
    captions = [item[f"caption{k}"] for item in items for k in (0, 1)]
    x = clip.encode_images(images, batch).view(len(items), 2, -1)
    t = clip.encode_texts(captions, batch).view(len(items), 2, -1)
    return torch.einsum("ncd,nid->nci", t, x)


def score_pairs(similarities: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean text, image and group outcomes per item, with strict comparisons:
    text_ok  = s(c0, i0) > s(c1, i0) and s(c1, i1) > s(c0, i1)
    image_ok = s(c0, i0) > s(c0, i1) and s(c1, i1) > s(c1, i0)
    group_ok = text_ok and image_ok.  Introduced in notebook 04_vismin_minimal_change.
    """
    if similarities.ndim != 3 or similarities.shape[1:] != (2, 2):
        raise ValueError(f"similarities must have shape (N, 2, 2), got {tuple(similarities.shape)}")
    s = similarities
    text = (s[:, 0, 0] > s[:, 1, 0]) & (s[:, 1, 1] > s[:, 0, 1])
    image = (s[:, 0, 0] > s[:, 0, 1]) & (s[:, 1, 1] > s[:, 1, 0])
    return {"text": text, "image": image, "group": text & image}


def summarise_scores(outcomes: dict[str, torch.Tensor], categories: Sequence[str]) -> dict[str, dict[str, float]]:
    """Percentages per category (and "average" over the categories present) of each score.

    Introduced in notebook 04_vismin_minimal_change.
    """
    if len(categories) != len(outcomes["group"]):
        raise ValueError(f"{len(categories)} categories for {len(outcomes['group'])} items")
    present = [c for c in CATEGORY_ORDER if c in set(categories)] + sorted(set(categories) - set(CATEGORY_ORDER))
    table = {}
    for category in present:
        rows = torch.tensor([c == category for c in categories])
        table[category] = {k: 100.0 * float(v[rows].float().mean()) for k, v in outcomes.items()}
    table["average"] = {k: sum(table[c][k] for c in present) / len(present) for k in outcomes}
    return table
