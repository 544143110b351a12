"""IDC fine-tuning: caption generation with the UniLM-style mask, plus the changed-or-not pair classifier.

Introduced in notebook 05_idc_difference_captioning.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tutorlib.training import History, train_loop
from tutorlib.world.text import Vocabulary

from .config import IdcConfig
from .data import MASK, Examples
from .model import DifferenceTransformer
from .pretraining import mask_tokens, sample_batch, schedule


def finetune_loss(model: DifferenceTransformer, batch: dict, vocab: Vocabulary, config: IdcConfig,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(caption loss, classifier loss) on [CLS1, image 1, CLS2, image 2, text] with the UniLM mask.

    With config.finetune_mask_prob > 0 (the paper's scheme): caption = -mean log p(w_i | pair, w_<i with some
    words masked) over the masked words, all replaced by <mask> as at decoding time. With 0: every word is
    predicted through its own pseudo <mask> from the clean words before it (DifferenceTransformer.
    pseudo_mask_outputs). classifier = binary cross-entropy of "changed" from the CLS1 and CLS2 outputs.
    Introduced in notebook 05_idc_difference_captioning.
    """
    ids = batch["ids"]
    pair = model.encode_pair(batch["before"], batch["after"])
    if config.finetune_mask_prob > 0:
        inputs, targets = mask_tokens(ids.cpu(), vocab, config.finetune_mask_prob, generator, replace=False)
        hidden = model.cross_modal(pair, inputs.to(ids.device), "unilm", with_cls3=False)
        outputs, targets = hidden[:, model.n_image_tokens :], targets.to(ids.device)
    else:
        hidden = model.cross_modal(pair, ids[:, :1], "unilm", with_cls3=False)  # the images ignore the text
        outputs = model.pseudo_mask_outputs(pair, ids, vocab.index[MASK])
        targets = ids.masked_fill(ids == vocab.pad, -100)
    logits = model.word_head(outputs)
    caption = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    classifier = F.binary_cross_entropy_with_logits(model.change_logit(hidden), batch["changed"])
    return caption, classifier


def finetune(model: DifferenceTransformer, examples: Examples, vocab: Vocabulary, config: IdcConfig,
             device: torch.device) -> History:
    """Fine-tune for config.finetune_steps on the sum of the caption and classifier losses.

    Introduced in notebook 05_idc_difference_captioning.
    """
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config, config.finetune_steps))
    generator = torch.Generator().manual_seed(config.seed + 1)
    # a different batch stream from pretraining: the step counter is offset
    offset = 10**6

    def step_fn(batch, step):
        caption, classifier = finetune_loss(model, batch, vocab, config, generator)
        optimizer.zero_grad(set_to_none=True)
        (caption + classifier).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        return {"caption": caption.item(), "classifier": classifier.item()}

    return train_loop(step_fn, lambda step: sample_batch(examples, vocab, config, offset + step, device),
                      config.finetune_steps, device=device, desc="fine-tune", log_every=5)


@torch.no_grad()
def change_predictions(model: DifferenceTransformer, examples: Examples, device: torch.device) -> np.ndarray:
    """(N,) bool: whether the pair classifier calls each example's pair changed (logit > 0).

    Introduced in notebook 05_idc_difference_captioning.
    """
    model.to(device).eval()
    before, after = examples.pair_features(range(len(examples)))
    # under the UniLM mask the image outputs ignore the text, so one pad token stands in for the caption
    pad = torch.full((len(before), 1), model.pad_id, dtype=torch.long, device=device)
    logits = model.change_logit(model(before.to(device), after.to(device), pad, "unilm", with_cls3=False))
    return logits.cpu().numpy() > 0


def change_accuracy(model: DifferenceTransformer, examples: Examples, device: torch.device) -> float:
    """Share of examples whose changed-or-not prediction is right. Introduced in notebook 05."""
    truth = np.array([examples.changed(k) for k in range(len(examples))])
    return float((change_predictions(model, examples, device) == truth).mean())
