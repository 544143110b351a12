"""GeNeVA's scores of a final canvas: per-sample precision, recall, F1 of the detected entities, and relational
similarity (rsim) as GeNeVA's evaluation code computes it. Introduced in notebook 01_sscr_iterative_editing.
"""
from __future__ import annotations

import torch

from tutorlib.sscr.detector import COORD_SCALE

METRICS = ("precision", "recall", "f1", "rsim")
# per mode of relation_agreement: the fewest shared entities that make a graph, and the share when fewer are shared
_TOO_FEW = {"geneva": (1, 0.0), "pairs": (2, 1.0)}


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


def _relation_graph(points: torch.Tensor) -> torch.Tensor:
    """GeNeVA's `construct_graph` of n points (n, 2) in [0, 1]: G[i, j, axis] = sign(p_i[axis] - q_ij[axis]),
    q_ij = p_j for i != j and the image centre (0.5, 0.5) for i == j (each object's side of the centre)."""
    query = points[None].expand(len(points), -1, -1).clone()
    query[torch.arange(len(points)), torch.arange(len(points))] = 0.5
    return torch.sign(points[:, None] - query)


def relation_agreement(detected, positions, labels, label_positions, mode: str = "geneva") -> torch.Tensor:
    """Per-sample share (N,) of equal entries of the relation graphs of the drawing and the reference, over the
    n entities found in both bags; positions (N, 24, 2) in i-CLEVR units (128ths of the image).

    mode "geneva" (default; GeNeVA's `get_graph_similarity` / `construct_graph`, geneva/metrics/inception_localizer.py):
    the graph is 2 x n x n, entry (i, j) = sign(p_i - p_j) per axis and the diagonal (i, i) = sign(p_i - centre),
    with coordinates scaled to [0, 1] and centre (0.5, 0.5); share over all 2 n^2 entries; 0 when no entity is
    shared (GeNeVA's rsim is then 0). Ties give sign 0 in both graphs, as GeNeVA's if/elif leaves 0.
    mode "pairs": only the off-diagonal entries (i != j), the 2 n (n - 1) relations between objects; 1 when fewer
    than two entities are shared (no relation contradicts).

    Introduced in notebook 01_sscr_iterative_editing.
    """
    if mode not in _TOO_FEW:
        raise ValueError(f"mode must be 'geneva' or 'pairs', got {mode!r}")
    fewest, share_if_fewer = _TOO_FEW[mode]
    shares = []
    for found, where, wanted, there in zip(detected, positions, labels, label_positions):
        common = torch.nonzero(found * wanted > 0)[:, 0]
        n = len(common)
        if n < fewest:
            shares.append(share_if_fewer)
            continue
        equal = _relation_graph(where[common, :2] / COORD_SCALE) == _relation_graph(there[common, :2] / COORD_SCALE)
        kept = torch.ones(n, n, dtype=torch.bool) if mode == "geneva" else ~torch.eye(n, dtype=torch.bool)
        shares.append(float(equal[kept].float().mean()))
    return torch.tensor(shares)


def score(detected, positions, labels, label_positions, mode: str = "geneva") -> dict[str, float]:
    """Mean precision, recall, F1 and rsim = recall x relation agreement (`relation_agreement`'s mode), in
    percent, over the samples.

    Introduced in notebook 01_sscr_iterative_editing.
    """
    precision, recall, f1 = per_sample_prf(detected, labels)
    rsim = recall * relation_agreement(detected, positions, labels, label_positions, mode)
    return {name: 100 * float(v.mean()) for name, v in zip(METRICS, (precision, recall, f1, rsim))}
