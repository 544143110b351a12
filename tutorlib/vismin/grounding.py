"""Phrase grounding: a small text-conditioned segmenter (phrase -> mask and box) standing in for Grounding-DINO.

A U-Net over the image whose every stage is modulated by the phrase (FiLM: h <- h * (1 + gamma) + beta, with
gamma, beta linear in the mean word embedding). It is trained on world renders to mark every visible pixel of
every object the phrase names. The box is drawn around the connected part of the mask that holds its most
confident pixel.
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tutorlib.cache import train_or_load
from tutorlib.profiles import by_profile
from tutorlib.world.render import Rendering
from tutorlib.world.scene import Scene
from tutorlib.world.text import object_phrase
from tutorlib.world.views.minimal_change import field_sets, look_filter, mask_box

from .fit import fit
from .instructions import VOCABULARY, Box, visible_objects
from .sources import rendered_scenes, to_unit

# Grounding-DINO's rule in VisMin: a box covering more than this share of the image is dropped.
MAX_BOX_SHARE = 0.85


@dataclass(frozen=True)
class GroundingConfig:
    """The grounding model and its training."""

    image_size: int = 64  # pixels
    width: int = 16  # channels of the first U-Net stage (x2, x4 deeper); it works at half the image size
    embed: int = 64  # phrase embedding size
    steps: int = 600  # optimizer steps
    batch: int = 32  # (image, phrase) pairs per step
    pool: int = 2048  # training scenes, rendered once
    lr: float = 2e-3  # AdamW learning rate, cosine-decayed
    seed: int = 0  # training scenes and phrases

    @classmethod
    def for_profile(cls, profile: str, seed: int = 0) -> "GroundingConfig":
        """smoke: a few steps; standard: a usable grounder in about a minute on 2 cores; full: larger, longer."""
        return by_profile(profile, smoke=cls(steps=20, batch=8, pool=64, seed=seed), standard=cls(seed=seed),
                          full=cls(width=32, steps=3000, batch=64, pool=16384, seed=seed))


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.SiLU())


class PhraseGrounder(nn.Module):
    """(images in [-1, 1], phrase token ids) -> mask logits (B, S, S), computed at S/2 and upsampled.

    Introduced in notebook 04_vismin_minimal_change.
    """

    def __init__(self, config: GroundingConfig, vocab_size: int = len(VOCABULARY)):
        super().__init__()
        c = config.width
        self.channels = (c, 2 * c, 4 * c)
        self.words = nn.EmbeddingBag(vocab_size, config.embed, mode="mean", padding_idx=VOCABULARY.pad)
        self.film = nn.Linear(config.embed, 2 * sum(self.channels))
        self.stem = nn.Conv2d(3, c, 4, stride=2, padding=1)  # S -> S/2
        self.down = nn.ModuleList([_block(c, c), _block(c, 2 * c), _block(2 * c, 4 * c)])
        self.up = nn.ModuleList([_block(4 * c + 2 * c, 2 * c), _block(2 * c + c, c)])
        self.head = nn.Conv2d(c, 1, 1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        gamma_beta = self.film(self.words(tokens)).split([k for c in self.channels for k in (c, c)], dim=1)
        skips, h = [], self.stem(images)
        for k, block in enumerate(self.down):
            h = block(h if k == 0 else F.max_pool2d(h, 2))
            gamma, beta = gamma_beta[2 * k][..., None, None], gamma_beta[2 * k + 1][..., None, None]
            h = h * (1 + gamma) + beta
            skips.append(h)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = block(torch.cat([F.interpolate(h, scale_factor=2.0), skip], dim=1))
        return F.interpolate(self.head(h), scale_factor=2.0, mode="bilinear")[:, 0]


def encode_phrases(phrases: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
    """(B, L) padded token ids and the unknown words (mapped to <unk>). Introduced in notebook 04."""
    encoded = [VOCABULARY.encode(p) for p in phrases]
    length = max(1, max(len(ids) for ids, _ in encoded))
    tokens = torch.full((len(phrases), length), VOCABULARY.pad, dtype=torch.long)
    for row, (ids, _) in enumerate(encoded):
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return tokens, sorted({w for _, unknown in encoded for w in unknown})


def phrase_target(scene: Scene, rendering: Rendering, b: int, look: dict[str, str]) -> torch.Tensor:
    """(S, S) bool: visible pixels of every object of image b matching `look`. Introduced in notebook 04."""
    named = [i for i, o in enumerate(scene.objects) if o.matches(**look)]
    return torch.isin(rendering.ids[b], torch.tensor(named, dtype=rendering.ids.dtype))


class GroundingData:
    """A pool of rendered training scenes; batch(step) draws (image, phrase, target mask) triples from it, as a
    function of the step so that training resumes exactly. Introduced in notebook 04_vismin_minimal_change."""

    def __init__(self, config: GroundingConfig):
        self.config = config
        self.scenes, self.rendering = rendered_scenes(config.seed, "grounding-train", range(config.pool),
                                                      config.image_size)
        self.visible = [visible_objects(self.rendering, b) for b in range(config.pool)]

    def batch(self, step: int) -> tuple[torch.Tensor, list[str], torch.Tensor]:
        config = self.config
        rng = np.random.default_rng([config.seed, step])
        rows = rng.integers(len(self.scenes), size=config.batch)
        fields = field_sets({"shape"})
        phrases, targets = [], []
        for b in rows:
            scene, visible = self.scenes[b], self.visible[b]
            obj = scene.objects[visible[int(rng.integers(len(visible)))]]
            look = look_filter(obj, fields[int(rng.integers(len(fields)))])
            phrases.append(object_phrase(look))
            targets.append(phrase_target(scene, self.rendering, int(b), look))
        return self.rendering.images[torch.as_tensor(rows)], phrases, torch.stack(targets)


def train_grounder(model: PhraseGrounder, config: GroundingConfig, device: torch.device):
    """BCE + soft Dice on the target masks: loss = BCE(logits, y) + 1 - 2 sum(p y) / (sum p + sum y).

    Introduced in notebook 04_vismin_minimal_change.
    """
    def loss_and_logs(batch):
        images, phrases, targets = batch
        logits = model(to_unit(images).to(device), encode_phrases(phrases)[0].to(device))
        y = targets.to(device).float()
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * y).sum((1, 2)) + 1) / (p.sum((1, 2)) + y.sum((1, 2)) + 1)
        return F.binary_cross_entropy_with_logits(logits, y) + dice.mean(), {}

    return fit(model, loss_and_logs, GroundingData(config).batch, config.steps, config.lr, device, "grounding")


def load_grounder(config: GroundingConfig, device: torch.device) -> tuple[PhraseGrounder, dict]:
    """The grounding model of `config`, from the cache or trained. Introduced in notebook 04."""
    model, info = train_or_load("vismin-grounding", asdict(config), lambda: PhraseGrounder(config),
                               lambda m: {"history": train_grounder(m, config, device).to_dict()}, device)
    return model.to(device).eval(), info


def confident_component(probability: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """(B, S, S) bool: the 8-connected region of `probability > threshold` that holds each image's most probable
    pixel (empty when that pixel is below the threshold). Introduced in notebook 04_vismin_minimal_change."""
    mask = probability > threshold
    region = torch.zeros_like(mask).flatten(1)
    region[torch.arange(len(mask)), probability.flatten(1).argmax(1)] = True
    region = region.view_as(mask) & mask
    while True:  # grow by one pixel in every direction, inside the mask, until nothing changes
        grown = F.max_pool2d(region[:, None].float(), 3, 1, 1)[:, 0].bool() & mask
        if torch.equal(grown, region):
            return region
        region = grown


@torch.no_grad()
def ground(model: PhraseGrounder, images: torch.Tensor, phrases: Sequence[str], threshold: float = 0.5
           ) -> tuple[torch.Tensor, list[Box | None], list[str]]:
    """Masks (B, S, S) bool of every pixel the phrase names, boxes around their most confident connected part
    (None where nothing passes the threshold or the box covers more than 85% of the image), and the phrases'
    unknown words. Introduced in notebook 04_vismin_minimal_change."""
    if len(images) != len(phrases):
        raise ValueError(f"{len(images)} images for {len(phrases)} phrases")
    device = next(model.parameters()).device
    tokens, unknown = encode_phrases(phrases)
    probability = torch.sigmoid(model(to_unit(images).to(device), tokens.to(device))).cpu()
    area = images.shape[-1] * images.shape[-2]
    boxes = [mask_box(m) for m in confident_component(probability, threshold)]
    boxes = [b if b is not None and b[2] * b[3] <= MAX_BOX_SHARE * area else None for b in boxes]
    return probability > threshold, boxes, unknown


def box_iou(a: Box, b: Box) -> float:
    """|A n B| / |A u B| of two (x, y, w, h) boxes. Introduced in notebook 04_vismin_minimal_change."""
    w = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    h = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """|A n B| / |A u B| of two bool masks (1.0 when both are empty). Introduced in notebook 04."""
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def evaluate_grounder(model: PhraseGrounder, config: GroundingConfig, n: int = 200) -> dict[str, float]:
    """On n held-out scenes, each visible object's shortest unique phrase: mean mask IoU, mean box IoU, share
    of boxes with IoU >= 0.5, share of phrases found. Introduced in notebook 04_vismin_minimal_change."""
    from .instructions import unique_phrases

    scenes, rendering = rendered_scenes(config.seed, "grounding-test", range(n), config.image_size)
    images, phrases, truth = [], [], []
    for b, scene in enumerate(scenes):
        for i in visible_objects(rendering, b):
            unique = unique_phrases(scene, i, {"shape"}, range(len(scene)))
            if unique:
                look = min(unique, key=len)
                images.append(rendering.images[b])
                phrases.append(object_phrase(look))
                truth.append(phrase_target(scene, rendering, b, look))
    masks, boxes, _ = ground(model, torch.stack(images), phrases)
    ious = [box_iou(box, mask_box(t)) if box is not None else 0.0 for box, t in zip(boxes, truth)]
    return {
        "mask_iou": float(np.mean([mask_iou(m, t) for m, t in zip(masks, truth)])),
        "box_iou": float(np.mean(ious)),
        "box_acc50": float(np.mean([iou >= 0.5 for iou in ious])),
        "found": float(np.mean([box is not None for box in boxes])),
        "phrases": len(phrases),
    }
