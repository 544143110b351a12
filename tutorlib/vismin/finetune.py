"""Fine-tuning a CLIP on minimal-change pairs: each pair and its edited pair sit in the same batch, so the
edited pair is a hard negative in both directions (VisMin-CLIP). Introduced in notebook 04_vismin_minimal_change."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import open_clip
import torch

from tutorlib.clip import Clip
from tutorlib.training import History, train_loop


@dataclass(frozen=True)
class FinetuneConfig:
    """How the CLIP is fine-tuned on minimal-change pairs."""

    steps: int = 200  # optimizer steps
    pairs_per_batch: int = 64  # minimal-change pairs per step (2 images and 2 captions each)
    lr: float = 1e-4  # AdamW learning rate (constant)
    weight_decay: float = 0.1  # AdamW weight decay
    seed: int = 0  # order of the training pairs


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

    def step_fn(items, step):
        images, captions = minimal_change_batch(items)
        out = model(clip.preprocess(images), clip.tokenizer(captions).to(device))
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    history = train_loop(step_fn, batch_at, config.steps, device=device, desc="fine-tune", log_every=10)
    model.eval()
    return history
