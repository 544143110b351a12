"""Fine-tuning a CLIP on minimal-change pairs, two ways.

- VisMin-CLIP: plain contrastive loss, each pair and its edited pair in the same batch, so the edited pair is
  a hard negative in both directions.
- CE-CLIP (the comparison): the source images only, their captions, and the edited captions as extra
  negatives on the text side; plus a cross-modal rank loss with an adaptive margin and an intra-modal term.
Introduced in notebook 04_vismin_minimal_change."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import open_clip
import torch
import torch.nn.functional as F

from tutorlib.clip import Clip
from tutorlib.training import History, train_loop


@dataclass(frozen=True)
class FinetuneConfig:
    """How the CLIP is fine-tuned on minimal-change pairs."""

    steps: int = 300  # optimizer steps
    pairs_per_batch: int = 64  # minimal-change pairs per step (2 images and 2 captions each)
    # AdamW learning rate (constant). The paper's 5e-6 barely moves this small CLIP trained from scratch at 1e-3;
    # measured in notebook 04, 3e-4 lets thousands of exactly rendered pairs raise the scores within 300 steps.
    lr: float = 3e-4
    weight_decay: float = 0.1  # AdamW weight decay
    seed: int = 0  # order of the training pairs
    loss: str = "vismin"  # "vismin" (pairs in the batch) or "ce-clip" (negative captions, rank and intra-modal terms)
    rank_weight: float = 0.2  # CE-CLIP: weight of the cross-modal rank loss
    intra_weight: float = 0.3  # CE-CLIP: weight of the intra-modal contrastive loss


LOSSES = ("vismin", "ce-clip")


def ce_clip_loss(image: torch.Tensor, text: torch.Tensor, negative: torch.Tensor, scale: torch.Tensor,
                 threshold: torch.Tensor, rank_weight: float = 0.2, intra_weight: float = 0.3
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """CE-CLIP's loss for unit embeddings of B images, their captions and one negative caption each.

    With S = scale * similarity:
      contrastive = (CE([S(v, t) | S(v, n)], diag) + CE(S(t, v), diag)) / 2   (negatives on the text side)
      rank        = mean(relu(theta + S(v_k, n_k) - S(v_k, t_k)))              (cross-modal, adaptive margin)
      intra       = CE([S(v_k, t_k) | S(t_k, n_j) for all j], 0)               (caption vs negative captions)
      loss        = contrastive + rank_weight * rank + intra_weight * intra
    theta for the next step = clamp(mean S(v, t) - mean S(v, n), 0, 10), detached.
    Returns (loss, next theta). Introduced in notebook 04_vismin_minimal_change.
    """
    positives = scale * image @ text.T
    labels = torch.arange(len(image), device=image.device)
    image_to_text = torch.cat([positives, scale * image @ negative.T], dim=1)
    contrastive = 0.5 * (F.cross_entropy(image_to_text, labels) + F.cross_entropy(positives.T, labels))
    positive = positives.diag()
    hard = scale * (image * negative).sum(dim=1)
    rank = F.relu(threshold + hard - positive).mean()
    intra_logits = torch.cat([positive[:, None], scale * text @ negative.T], dim=1)
    intra = F.cross_entropy(intra_logits, torch.zeros_like(labels))
    next_threshold = (positive.mean() - hard.mean()).detach().clamp(0.0, 10.0)
    return contrastive + rank_weight * rank + intra_weight * intra, next_threshold


def minimal_change_batch(items: Sequence[dict]) -> tuple[torch.Tensor, list[str]]:
    """Images and captions of a batch of pairs, laid out [i0 of every pair, then i1 of every pair], so row k and
    row B + k are a pair and its edit. Introduced in notebook 04_vismin_minimal_change."""
    images = torch.stack([item["image0"] for item in items] + [item["image1"] for item in items])
    captions = [item["caption0"] for item in items] + [item["caption1"] for item in items]
    return images, captions


def finetune_clip(clip: Clip, pairs: Sequence[dict], config: FinetuneConfig, device: torch.device) -> History:
    """Fine-tune `clip` in place with open_clip's contrastive loss on batches of minimal-change pairs.

    Introduced in notebook 04_vismin_minimal_change.
    """
    if config.loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {config.loss!r}")
    if len(pairs) < config.pairs_per_batch:
        raise ValueError(f"{len(pairs)} training pairs, fewer than one batch of {config.pairs_per_batch}")
    model = clip.model.to(device).train()
    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(config.seed))
    per_epoch = len(pairs) // config.pairs_per_batch

    def batch_at(step: int) -> list[dict]:
        start = (step % per_epoch) * config.pairs_per_batch
        return [pairs[int(i)] for i in order[start : start + config.pairs_per_batch]]

    threshold = torch.zeros((), device=device)

    def step_fn(items, step):
        nonlocal threshold
        images, captions = minimal_change_batch(items)
        if config.loss == "vismin":
            out = model(clip.preprocess(images), clip.tokenizer(captions).to(device))
            loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        else:  # source images only; their captions, then the edited captions as negatives
            b = len(items)
            out = model(clip.preprocess(images[:b]), clip.tokenizer(captions).to(device))
            text = out["text_features"]
            loss, threshold = ce_clip_loss(out["image_features"], text[:b], text[b:], out["logit_scale"], threshold,
                                           config.rank_weight, config.intra_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    history = train_loop(step_fn, batch_at, config.steps, device=device, desc="fine-tune", log_every=10)
    model.eval()
    return history
