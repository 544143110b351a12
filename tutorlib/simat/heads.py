"""Adaptation heads: linear maps on top of a frozen CLIP, trained with a symmetric InfoNCE loss.

Introduced in notebook 02_simat_delta_retrieval.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tutorlib.training import History, train_loop


class AdaptationHeads(nn.Module):
    """An image head and a text head, each W = I + 0.01 R (near the identity), applied before normalising.

    Introduced in notebook 02_simat_delta_retrieval.
    """

    def __init__(self, dim: int, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.image = nn.Linear(dim, dim, bias=False)
        self.text = nn.Linear(dim, dim, bias=False)
        for head in (self.image, self.text):
            with torch.no_grad():
                head.weight.copy_(torch.eye(dim) + 0.01 * torch.randn(dim, dim, generator=generator))

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(x), dim=-1)

    def embed_texts(self, t: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(t), dim=-1)


def info_nce(image: torch.Tensor, text: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE: L = (CE(S, I) + CE(S^T, I)) / 2 with S = image text^T / tau (unit vectors).

    Introduced in notebook 02_simat_delta_retrieval.
    """
    logits = image @ text.T / tau
    labels = torch.arange(len(image), device=image.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def train_heads(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor, tau: float, steps: int,
                batch: int = 256, lr: float = 1e-3, seed: int = 0) -> tuple[AdaptationHeads, History]:
    """Train heads on frozen CLIP embeddings of matching (image, caption) pairs, at a fixed temperature tau.

    Introduced in notebook 02_simat_delta_retrieval.
    """
    if len(image_embeddings) != len(text_embeddings):
        raise ValueError(f"{len(image_embeddings)} image embeddings but {len(text_embeddings)} text embeddings")
    if tau <= 0:
        raise ValueError(f"tau must be positive, got {tau}")
    heads = AdaptationHeads(image_embeddings.shape[1], seed)
    optimizer = torch.optim.Adam(heads.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(image_embeddings), generator=generator)
    per_epoch = max(1, len(order) // batch)

    def step_fn(rows, step):
        loss = info_nce(heads.embed_images(image_embeddings[rows]), heads.embed_texts(text_embeddings[rows]), tau)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    history = train_loop(step_fn, lambda step: order[(step % per_epoch) * batch:(step % per_epoch + 1) * batch],
                         steps, device=torch.device("cpu"), desc=f"heads tau={tau}", amp=False)
    return heads.eval(), history
