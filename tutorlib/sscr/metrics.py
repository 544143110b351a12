"""GeNeVA's scores of a final canvas: per-sample precision, recall, F1 of the detected entities, and relational
similarity (rsim). Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import torch

METRICS = ("precision", "recall", "f1", "rsim")


def _safe_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b, 0 where b is 0 (scikit-learn's zero_division=0)."""
    return torch.where(b > 0, a / b.clamp(min=1e-12), torch.zeros_like(a))


def per_sample_prf(detected: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample precision, recall and F1 (N,) of 0/1 bags (N, 24):
    P = |D & L| / |D|,  R = |D & L| / |L|,  F1 = 2 P R / (P + R), each 0 when its denominator is 0.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    hits = (detected * labels).sum(1)
    precision, recall = _safe_divide(hits, detected.sum(1)), _safe_divide(hits, labels.sum(1))
    return precision, recall, _safe_divide(2 * precision * recall, precision + recall)


def relation_agreement(detected, positions, labels, label_positions) -> torch.Tensor:
    """Per-sample share (N,) of equal entries of the two relation matrices: for every ordered pair (i, j) of
    entities found in both bags, sign(x_i - x_j) and sign(y_i - y_j) in the drawing and in the reference.
    1 when fewer than two entities are shared (no relation contradicts). Introduced in notebook 01_sscr_iterative_editing.
    """
    shares = []
    for found, where, wanted, there in zip(detected, positions, labels, label_positions):
        common = torch.nonzero(found * wanted > 0)[:, 0]
        if len(common) < 2:
            shares.append(1.0)
            continue
        a, b = where[common, :2], there[common, :2]
        # R[i, j, axis] = sign(p_i[axis] - p_j[axis])
        ra = torch.sign(a[:, None] - a[None])
        rb = torch.sign(b[:, None] - b[None])
        off_diagonal = ~torch.eye(len(common), dtype=torch.bool)
        shares.append(float((ra == rb)[off_diagonal].float().mean()))
    return torch.tensor(shares)


def score(detected, positions, labels, label_positions) -> dict[str, float]:
    """Mean precision, recall, F1 and rsim = recall x relation agreement, in percent, over the samples.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    precision, recall, f1 = per_sample_prf(detected, labels)
    rsim = recall * relation_agreement(detected, positions, labels, label_positions)
    return {name: 100 * float(v.mean()) for name, v in zip(METRICS, (precision, recall, f1, rsim))}
