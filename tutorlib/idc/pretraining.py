"""IDC pretraining: masked language modelling (MLM), masked visual contrastive learning (MVCL) and fine-grained
difference aligning (FDA), one task sampled per step. Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from tutorlib.training import History, train_loop
from tutorlib.world.text import Vocabulary

from .config import IdcConfig
from .data import MASK, Examples, encode_captions
from .model import DifferenceTransformer
from .negatives import HardNegatives


def mask_tokens(ids: torch.Tensor, vocab: Vocabulary, prob: float, generator: torch.Generator,
                replace: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets): a share `prob` of the non-pad tokens (at least one per caption) is chosen; targets hold
    their ids and -100 elsewhere. With `replace`, BERT's rule: 80% become <mask>, 10% a random word, 10% stay;
    without, all become <mask>. Introduced in notebook 05_idc_difference_captioning.
    """
    real = ids != vocab.pad
    chosen = (torch.rand(ids.shape, generator=generator) < prob) & real
    # a caption with nothing chosen gets one random real token
    pick = torch.multinomial(real.float(), 1, generator=generator).squeeze(1)
    chosen[torch.arange(len(ids)), pick] |= ~chosen.any(1)
    targets = torch.where(chosen, ids, torch.full_like(ids, -100))
    draw = torch.rand(ids.shape, generator=generator)
    to_mask = chosen & (draw < 0.8) if replace else chosen
    to_random = chosen & (draw >= 0.8) & (draw < 0.9) if replace else torch.zeros_like(chosen)
    random_words = torch.randint(len(vocab.SPECIALS), len(vocab), ids.shape, generator=generator)
    inputs = torch.where(to_mask, torch.full_like(ids, vocab.index[MASK]), ids)
    return torch.where(to_random, random_words, inputs), targets


def mlm_loss(model: DifferenceTransformer, batch: dict, vocab: Vocabulary, config: IdcConfig,
             generator: torch.Generator) -> torch.Tensor:
    """MLM: -mean log p(w_i | pair, caption with the masked words hidden) over masked words, full attention.

    Introduced in notebook 05_idc_difference_captioning.
    """
    inputs, targets = mask_tokens(batch["ids"], vocab, config.mask_prob, generator)
    hidden = model(batch["before"], batch["after"], inputs.to(batch["ids"].device), "full", with_cls3=True)
    logits = model.word_head(hidden[:, model.n_image_tokens + 1 :])
    return F.cross_entropy(logits.flatten(0, 1), targets.to(logits.device).flatten(), ignore_index=-100)


def region_mask(batch: int, n_regions: int, prob: float, generator: torch.Generator) -> torch.Tensor:
    """(batch, R) bool: a share `prob` of the regions, at least one per image. Introduced in notebook 05."""
    mask = torch.rand(batch, n_regions, generator=generator) < prob
    pick = torch.randint(n_regions, (batch,), generator=generator)
    mask[torch.arange(batch), pick] |= ~mask.any(1)
    return mask


def mvcl_logits(predicted: torch.Tensor, true: torch.Tensor, unmasked: torch.Tensor, tau: float) -> torch.Tensor:
    """(M, M + U) logits of masked visual contrastive learning; row m's positive is column m.

    logits = [p_m . t_n (masked x masked), p_m . u_j (masked x unmasked predictions)] / tau, all L2-normalised.
    Introduced in notebook 05_idc_difference_captioning.
    """
    p, t, u = (F.normalize(x, dim=-1) for x in (predicted, true, unmasked))
    return torch.cat([p @ t.T, p @ u.T], 1) / tau


def mvcl_loss(model: DifferenceTransformer, batch: dict, vocab: Vocabulary, config: IdcConfig,
              generator: torch.Generator) -> torch.Tensor:
    """MVCL: zero some regions of one image (the first or the second, drawn per step), predict their features
    from the rest and the caption, and pick each true feature out of the true masked ones and the predictions at
    unmasked positions. Introduced in notebook 05_idc_difference_captioning.
    """
    which = int(torch.randint(2, (1,), generator=generator))
    features = batch["before"] if which == 0 else batch["after"]
    mask = region_mask(len(features), model.n_regions, config.region_mask_prob, generator).to(features.device)
    zeroed = features.masked_fill(mask[..., None], 0.0)
    pair = (zeroed, batch["after"]) if which == 0 else (batch["before"], zeroed)
    hidden = model(*pair, batch["ids"], "full", with_cls3=True)
    start = 1 + which * (model.n_regions + 1)
    predicted = model.region_head(hidden[:, start : start + model.n_regions])
    logits = mvcl_logits(predicted[mask], features[mask], predicted[~mask], config.mvcl_tau)
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def fda_logits(pair: torch.Tensor, captions: torch.Tensor, tau: float) -> torch.Tensor:
    """(B, K + 1) logits of fine-grained difference aligning: cos(pair_b, caption_bk) / tau, caption 0 the gold.

    Introduced in notebook 05_idc_difference_captioning.
    """
    return torch.einsum("bd,bkd->bk", F.normalize(pair, dim=-1), F.normalize(captions, dim=-1)) / tau


def fda_loss(model: DifferenceTransformer, batch: dict, vocab: Vocabulary, config: IdcConfig,
             generator: torch.Generator) -> torch.Tensor:
    """FDA: -log softmax of the gold caption against its hard negatives. Pair = mean of the CLS1 and CLS2
    outputs, caption = the CLS3 output; image tokens do not attend to the text, so the pair is the same for
    every candidate. Introduced in notebook 05_idc_difference_captioning.
    """
    candidates = batch["candidates"]  # (B, K + 1, T), gold first
    b, k1, t = candidates.shape
    pair = model.encode_pair(batch["before"], batch["after"])
    hidden = model.cross_modal(pair.repeat_interleave(k1, 0), candidates.flatten(0, 1), "image_only", True)
    pair_vector = (hidden[::k1, 0] + hidden[::k1, model.n_regions + 1]) / 2
    caption_vectors = hidden[:, model.n_image_tokens].view(b, k1, -1)
    logits = fda_logits(pair_vector, caption_vectors, config.fda_tau)
    return F.cross_entropy(logits, torch.zeros(b, dtype=torch.long, device=logits.device))


LOSSES = {"mlm": mlm_loss, "mvcl": mvcl_loss, "fda": fda_loss}


def sample_batch(examples: Examples, vocab: Vocabulary, config: IdcConfig, step: int, device: torch.device,
                 negatives: HardNegatives | None = None) -> dict:
    """The batch of one step, a function of (config.seed, step): random examples, one random reference caption
    each, and with `negatives` the gold caption followed by its hard negatives. Introduced in notebook 05.
    """
    rng = np.random.default_rng([config.seed, step])
    rows = rng.integers(len(examples), size=min(config.batch_size, len(examples)))
    captions = [examples.references(k)[int(rng.integers(len(examples.references(k))))] for k in rows]
    before, after = examples.pair_features(rows)
    batch = {"before": before.to(device), "after": after.to(device),
             "ids": encode_captions(vocab, captions, config.max_text).to(device),
             "changed": torch.tensor([float(examples.changed(k)) for k in rows], device=device)}
    if negatives is not None:
        texts = [t for k, c in zip(rows, captions)
                 for t in [c] + negatives.sample(c, examples.references(k), config.n_negatives, rng)]
        batch["candidates"] = encode_captions(vocab, texts, config.max_text).view(len(rows), -1, config.max_text).to(device)
    return batch


def schedule(config: IdcConfig, steps: int):
    """lr factor: (step + 1) / warmup during the warm-up, then (1 + cos(pi * progress)) / 2."""
    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        return 0.5 * (1.0 + math.cos(math.pi * (step - config.warmup) / max(1, steps - config.warmup)))
    return factor


def pretrain(model: DifferenceTransformer, examples: Examples, vocab: Vocabulary, config: IdcConfig,
             device: torch.device) -> History:
    """Pretrain on `config.tasks`, one task per step drawn with `config.task_weights`; logs each task's loss.

    Introduced in notebook 05_idc_difference_captioning.
    """
    unknown = [t for t in config.tasks if t not in LOSSES]
    if unknown or not config.tasks:
        raise ValueError(f"pretraining tasks must be a non-empty choice from {list(LOSSES)}, got {list(config.tasks)}")
    weights = np.array([config.task_weights[list(LOSSES).index(t)] for t in config.tasks])
    negatives = HardNegatives([c for k in range(len(examples)) for c in examples.references(k)]) \
        if "fda" in config.tasks else None
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config, config.pretrain_steps))
    generator = torch.Generator().manual_seed(config.seed)

    def batch_at(step: int) -> tuple[str, dict]:
        task = config.tasks[int(np.random.default_rng([config.seed, step, 1]).choice(len(weights), p=weights / weights.sum()))]
        return task, sample_batch(examples, vocab, config, step, device, negatives if task == "fda" else None)

    def step_fn(task_batch, step):
        task, batch = task_batch
        loss = LOSSES[task](model, batch, vocab, config, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        return {task: loss.item()}

    return train_loop(step_fn, batch_at, config.pretrain_steps, device=device, desc="pretrain", log_every=1)
