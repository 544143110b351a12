"""Text-conditioned diffusion inpainting with diffusers, trained on the shapes world; VisMin's image editor.

The model sees a square crop around the region to edit (resized to `crop_size`), the way high-resolution
inpainting pipelines work on a window: its UNet2DConditionModel takes 7 channels (the noisy crop, the mask, the
crop with the region blanked) and cross-attends to the token features of the world CLIP's text tower (a frozen
copy, so a checkpoint carries its own text encoder). Training minimises the noise-prediction error
    L = || eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, mask, masked x0, t, text) ||^2,
on crops around objects with their phrases, and on crops where the object was removed with the empty text (so
the same model erases, as the counting and relation edits need). Sampling uses diffusers' DDIM scheduler with a
CPU generator; the result is pasted back inside the mask only.
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel

from tutorlib.clip import Clip, WorldTokenizer
from tutorlib.profiles import by_profile
from tutorlib.training import train_loop
from tutorlib.world.render import render
from tutorlib.world.text import object_phrase
from tutorlib.world.views.minimal_change import field_sets, look_filter

from .instructions import Box, visible_boxes
from .sources import rendered_scenes, to_unit
from .vqa import crop_window


@dataclass(frozen=True)
class InpaintConfig:
    """The inpainting model, its training and its sampler."""

    image_size: int = 64  # pixels of the world images
    crop_size: int = 32  # pixels of the window the UNet paints
    channels: tuple[int, ...] = (32, 64, 64)  # UNet block widths (the last two blocks cross-attend to the text)
    steps: int = 4000  # optimizer steps
    batch: int = 32  # crops per step
    lr: float = 5e-4  # AdamW learning rate, cosine-decayed after a short warm-up
    pool: int = 4096  # training scenes, rendered once (each also with one object removed)
    removal_share: float = 0.25  # share of training crops that erase an object (empty text)
    train_timesteps: int = 1000  # diffusion steps of the noise schedule
    sample_steps: int = 25  # DDIM steps when sampling
    margin: float = 0.5  # crop window: the region's side grown by this share each way, plus 4 pixels
    seed: int = 0

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "InpaintConfig":
        """smoke: a few steps (noise out); standard: the shipped checkpoint's config; full: wider and longer."""
        return by_profile(profile, smoke=cls(steps=4, batch=4, pool=16, sample_steps=4, seed=seed),
                          standard=cls(seed=seed), full=cls(channels=(64, 128, 128), steps=20000, batch=128,
                                                            pool=32768, seed=seed))


class ClipTextTower(nn.Module):
    """The text tower of an open_clip CLIP up to its last layer norm: token ids -> (B, L, width) features.

    Introduced in notebook 04_vismin_minimal_change.
    """

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.token_embedding = copy.deepcopy(clip_model.token_embedding)
        self.positional_embedding = nn.Parameter(clip_model.positional_embedding.detach().clone())
        self.transformer = copy.deepcopy(clip_model.transformer)
        self.ln_final = copy.deepcopy(clip_model.ln_final)
        self.register_buffer("attn_mask", clip_model.attn_mask.clone(), persistent=False)
        self.requires_grad_(False)

    @property
    def width(self) -> int:
        return self.token_embedding.embedding_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(tokens) + self.positional_embedding
        return self.ln_final(self.transformer(x, attn_mask=self.attn_mask))


class Inpainter(nn.Module):
    """eps_theta(noisy crop, mask, masked crop, t, text tokens). Introduced in notebook 04_vismin_minimal_change."""

    def __init__(self, config: InpaintConfig, clip: Clip):
        super().__init__()
        self.config = config
        self.tokenizer: WorldTokenizer = clip.tokenizer
        self.text = ClipTextTower(clip.model)
        n = len(config.channels)
        self.unet = UNet2DConditionModel(
            sample_size=config.crop_size, in_channels=7, out_channels=3, block_out_channels=config.channels,
            layers_per_block=1, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",), cross_attention_dim=self.text.width,
            attention_head_dim=8, norm_num_groups=8)

    def forward(self, noisy, mask, masked, timesteps, tokens) -> torch.Tensor:
        context = self.text(tokens)
        return self.unet(torch.cat([noisy, mask, masked], dim=1), timesteps, encoder_hidden_states=context).sample


def window_mask(box: Box, window: tuple[int, int, int], size: int, pad: int = 1) -> torch.Tensor:
    """(1, size, size) float mask of `box` grown by `pad` pixels, in the coordinates of a crop window (x0, y0,
    side) resized to size. Introduced in notebook 04_vismin_minimal_change."""
    x0, y0, side = window
    scale = size / side
    x, y, w, h = box
    left, top = int(np.floor((x - pad - x0) * scale)), int(np.floor((y - pad - y0) * scale))
    right, bottom = int(np.ceil((x + w + pad - x0) * scale)), int(np.ceil((y + h + pad - y0) * scale))
    mask = torch.zeros(1, size, size)
    mask[:, max(0, top) : max(0, bottom), max(0, left) : max(0, right)] = 1.0
    return mask


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x[None].float(), size=(size, size), mode="bilinear", antialias=True)[0]


def crop_inputs(image: torch.Tensor, region: Box, config: InpaintConfig) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """The crop around `region` in [-1, 1] (3, c, c), its mask (1, c, c) and the window (x0, y0, side).

    Introduced in notebook 04_vismin_minimal_change.
    """
    window = crop_window(region, image.shape[-1], config.margin)
    x0, y0, side = window
    patch = to_unit(_resize(image[:, y0 : y0 + side, x0 : x0 + side], config.crop_size))
    return patch.clamp(-1, 1), window_mask(region, window, config.crop_size), window


class InpaintData:
    """Training crops drawn per step from a pool of scenes rendered with all objects and with one removed."""

    def __init__(self, config: InpaintConfig):
        self.config = config
        self.scenes, self.rendering = rendered_scenes(config.seed, "inpaint-train", range(config.pool), config.image_size)
        self.boxes = [visible_boxes(self.rendering, b) for b in range(config.pool)]
        self.removed = [min(boxes) if boxes else None for boxes in self.boxes]  # object erased in the second render
        erased = [s.remove(i) if i is not None else s for s, i in zip(self.scenes, self.removed)]
        self.erased = render(erased, config.image_size)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        config, fields = self.config, field_sets({"shape"})
        rng = np.random.default_rng([config.seed, step, 11])
        crops, masks, texts = [], [], []
        while len(crops) < config.batch:
            b = int(rng.integers(config.pool))
            if not self.boxes[b]:
                continue
            if rng.random() < config.removal_share:
                i, image, text = self.removed[b], self.erased.images[b], ""
            else:
                i = list(self.boxes[b])[int(rng.integers(len(self.boxes[b])))]
                image = self.rendering.images[b]
                text = object_phrase(look_filter(self.scenes[b].objects[i], fields[int(rng.integers(len(fields)))]))
            patch, mask, _ = crop_inputs(image, self.boxes[b][i], config)
            crops.append(patch)
            masks.append(mask)
            texts.append(text)
        return torch.stack(crops), torch.stack(masks), texts


def noise_scheduler(config: InpaintConfig) -> DDPMScheduler:
    """The training noise schedule (scaled-linear betas, as in Stable Diffusion). Introduced in notebook 04."""
    return DDPMScheduler(num_train_timesteps=config.train_timesteps, beta_schedule="scaled_linear",
                         beta_start=0.00085, beta_end=0.012)


def train_inpainter(model: Inpainter, config: InpaintConfig, device: torch.device, checkpoint=None):
    """Noise-prediction training (see the module docstring); resumable through `checkpoint`.

    Introduced in notebook 04_vismin_minimal_change.
    """
    model.to(device).train()
    scheduler = noise_scheduler(config)
    optimizer = torch.optim.AdamW(model.unet.parameters(), lr=config.lr, weight_decay=1e-4)
    warmup = max(1, config.steps // 50)
    # lr(s) = lr * min(1, (s + 1) / warmup) * (1 + cos(pi * min(1, s / steps))) / 2, a plain float (math.cos): a
    # numpy scalar in the scheduler's state would make the checkpoint unreadable by torch.load(weights_only=True)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / config.steps))))
    data = InpaintData(config)

    def step_fn(batch, step):
        x0, mask, texts = batch
        x0, mask = x0.to(device), mask.to(device)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(0, config.train_timesteps, (len(x0),), generator=generator).to(device)
        noisy = scheduler.add_noise(x0, noise, t)
        predicted = model(noisy, mask, x0 * (1 - mask), t, model.tokenizer(texts).to(device))
        loss = F.mse_loss(predicted, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        return {"loss": loss.item()}

    state = {"unet": model.unet, "optimizer": optimizer, "scheduler": lr_schedule}
    history = train_loop(step_fn, data.batch, config.steps, device=device, desc="inpainter", checkpoint=checkpoint,
                         state=state, log_every=10)
    model.eval()
    return history


@torch.no_grad()
def inpaint(model: Inpainter, images: torch.Tensor, regions: Sequence[Box], phrases: Sequence[str], seed: int = 0,
            steps: int | None = None) -> torch.Tensor:
    """Repaint each image's region (x, y, w, h) to show its phrase ("" erases), by DDIM sampling in a crop window;
    uint8 (B, 3, S, S) in and out, pixels outside the regions unchanged. Introduced in notebook 04."""
    if not len(images) == len(regions) == len(phrases):
        raise ValueError(f"{len(images)} images, {len(regions)} regions and {len(phrases)} phrases")
    config, device = model.config, next(model.parameters()).device
    inputs = [crop_inputs(image, region, config) for image, region in zip(images, regions)]
    x0 = torch.stack([i[0] for i in inputs]).to(device)
    mask = torch.stack([i[1] for i in inputs]).to(device)
    tokens = model.tokenizer(list(phrases)).to(device)
    sampler = DDIMScheduler.from_config(noise_scheduler(config).config)
    sampler.set_timesteps(steps or config.sample_steps)
    x = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    for t in sampler.timesteps:
        eps = model(x, mask, x0 * (1 - mask), t.expand(len(x)).to(device), tokens)
        x = sampler.step(eps, t, x).prev_sample
    painted = (mask * x + (1 - mask) * x0).clamp(-1, 1).cpu()
    out = images.clone()
    for k, ((_, _, (x_0, y_0, side)), region) in enumerate(zip(inputs, regions)):
        window = ((_resize(painted[k], side) + 1) * 127.5).round().clamp(0, 255).byte()
        inside = window_mask(region, (x_0, y_0, side), side)[0].bool()
        view = out[k, :, y_0 : y_0 + side, x_0 : x_0 + side]
        view[:, inside] = window[:, inside]
    return out


def param_count(model: Inpainter) -> int:
    """Trainable parameters (the UNet; the text tower is frozen). Introduced in notebook 04."""
    return sum(p.numel() for p in model.unet.parameters())


__all__ = ["InpaintConfig", "ClipTextTower", "Inpainter", "window_mask", "crop_inputs", "InpaintData",
           "noise_scheduler", "train_inpainter", "inpaint", "param_count"]
