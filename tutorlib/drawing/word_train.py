"""Training the word-learning model on image-caption pairs, with or without GAN-edited hard negatives.

Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Sequence

import torch

from tutorlib.cache import cache_path, train_or_load
from tutorlib.device import pick_device
from tutorlib.training import History, train_loop

from .words import WordConfig, WordModel, margin_rank_loss, sample_impostors

CACHE_NAME = "drawing-words"


def batch_rows(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The pair indices of training step `step`: consecutive slices of a fresh permutation per epoch (a function
    of the step, so a resumed run sees the same batches). Introduced in notebook 03_drawing_gan_units."""
    per_epoch = max(1, n // batch_size)
    epoch, slot = divmod(step, per_epoch)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[slot * batch_size: (slot + 1) * batch_size]


def _check_inputs(images: torch.Tensor, captions: Sequence, edited: torch.Tensor | None, batch_size: int) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W), got shape {tuple(images.shape)}")
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if edited is not None and tuple(edited.shape) != tuple(images.shape):
        raise ValueError(f"edited images must match the images' shape {tuple(images.shape)}, got {tuple(edited.shape)}")
    if min(len(images), batch_size) < 2:
        raise ValueError(f"training needs at least 2 pairs and batch_size >= 2, got {len(images)} and {batch_size}")


def fit_word_model(model: WordModel, images: torch.Tensor, captions: Sequence, edited: torch.Tensor | None,
                   device: torch.device, checkpoint=None) -> History:
    """Train `model` in place for config.steps steps of the sampled margin-rank loss (plus the edited-negative
    term when `edited` is given); resumable through `checkpoint`. Introduced in notebook 03_drawing_gan_units."""
    config = model.config
    _check_inputs(images, captions, edited, config.batch_size)
    model.to(device).train()
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    batch_size = min(config.batch_size, len(images))

    def step_fn(rows: torch.Tensor, step: int) -> dict[str, float]:
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        image_features = model.encode_images(images[rows])
        caption_features, mask = model.encode_captions([captions[int(r)] for r in rows])
        edited_features = None if edited is None else model.encode_images(edited[rows])
        terms = margin_rank_loss(image_features, caption_features, mask, sample_impostors(len(rows), generator),
                                 sample_impostors(len(rows), generator), edited_features, config.margin)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        return {name: value.item() for name, value in terms.items()}

    history = train_loop(step_fn, lambda step: batch_rows(len(images), batch_size, config.seed, step), config.steps,
                         device=device, desc=f"word model ({config.caption})", checkpoint=checkpoint,
                         state={"model": model, "optimizer": optimizer}, amp=False)
    model.eval()
    return history


def train_word_model(config: WordConfig, images: torch.Tensor, captions: Sequence, edited: torch.Tensor | None = None,
                     device: torch.device | str = "auto", data_key: Any = None) -> tuple[WordModel, History]:
    """Train-or-load the word model of `config` on pairs (images[i], captions[i]).

    images (N, 3, H, W) uint8; captions: N strings (config.caption "text") or N (N_MELS, frames) log-mel
    spectrograms ("speech", see speech.spoken_captions); edited (N, 3, H, W) uint8: image i with its caption's
    concept removed, the hard negatives, or None for the plain loss. With `data_key` (anything JSON-able that
    identifies the data, e.g. dataset sizes, seeds and the edit settings) the trained model is cached by config and
    data_key, and an interrupted training resumes; without it the model is trained afresh every call.
    Returns the model (in eval mode, on `device`) and the loss history.

    Introduced in notebook 03_drawing_gan_units.
    """
    device = pick_device(device) if isinstance(device, str) else device
    torch.manual_seed(config.seed)
    if data_key is None:
        model = WordModel(config)
        return model, fit_word_model(model, images, captions, edited, device)
    key = {"config": asdict(config), "data": data_key, "edited_negatives": edited is not None}
    resume = cache_path(CACHE_NAME, key).with_name(f".{cache_path(CACHE_NAME, key).name}.training.pt")

    def train(model: WordModel) -> dict:
        resume.parent.mkdir(parents=True, exist_ok=True)
        history = fit_word_model(model, images, captions, edited, device, checkpoint=resume)
        return {"history": history.to_dict()}

    model, info = train_or_load(CACHE_NAME, key, lambda: WordModel(config), train, device)
    resume.unlink(missing_ok=True)
    return model.to(device).eval(), History.from_dict(info["history"])
