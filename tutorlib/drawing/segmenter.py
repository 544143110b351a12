"""A per-pixel concept segmenter of the shapes world, and the objects (and a caption) it finds in an image.

The seed paper dissects its GAN with a segmentation network and has people describe the GAN's images. Here a
small U-Net learns, from world renders and their exact masks, one sigmoid per concept of CONCEPTS at every
pixel; it then plays both parts: it segments GAN samples for dissection, and `describe` turns its output into
objects (connected components, majority value per attribute) and a caption for the word-learning model.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tutorlib.cache import train_or_load
from tutorlib.seeding import seed_everything
from tutorlib.training import History, train_loop
from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.text import object_phrase
from tutorlib.world.views.captioned import CONCEPTS, CaptionedScenes, concept_table

from .gan import to_signed

# The index range of each attribute's values in CONCEPTS (sizes, colours, materials, shapes).
ATTRIBUTE_SLICES: dict[str, slice] = {}
for _name, _values in ATTRIBUTES.items():
    _first = CONCEPTS.index(f"{_name}={_values[0]}")
    ATTRIBUTE_SLICES[_name] = slice(_first, _first + len(_values))


def check_concept(concept: str) -> int:
    """The index of `concept` ("color=red") in CONCEPTS, else a ValueError listing them. Introduced in notebook 03."""
    if concept not in CONCEPTS:
        raise ValueError(f"unknown concept {concept!r}; valid concepts: {list(CONCEPTS)}")
    return CONCEPTS.index(concept)


@dataclass(frozen=True)
class SegmenterConfig:
    """The segmenter's size and training. Introduced in notebook 03_drawing_gan_units."""

    image_size: int = 64  # side of the renders (the GAN's)
    width: int = 16  # channels at full resolution (x2, x4 deeper)
    steps: int = 500  # optimizer steps
    batch: int = 32  # renders per step
    lr: float = 3e-3  # Adam learning rate (one-cycle schedule)
    positive_weight: float = 5.0  # weight of the concept-present pixels in the loss (objects are a few % of pixels)
    pool: int = 4000  # training renders
    n_objects: tuple[int, int] = (1, 3)  # objects per scene (the GAN's world)
    world_seed: int = 2000  # seed of the training renders (held-out renders use world_seed + 1)
    seed: int = 0  # initialisation and batch order


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


class Segmenter(nn.Module):
    """A three-level U-Net: images in [-1, 1] (N, 3, S, S) -> concept logits (N, C, S, S). Introduced in notebook 03."""

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        w = config.width
        self.config = config
        self.enc1, self.enc2, self.enc3 = _block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.mid = _block(4 * w, 4 * w)
        self.dec2, self.dec1 = _block(6 * w, 2 * w), _block(3 * w, w)
        self.head = nn.Conv2d(w, len(CONCEPTS), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(images)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.mid(self.enc3(F.max_pool2d(e2, 2)))
        d2 = self.dec2(torch.cat([F.interpolate(e3, scale_factor=2.0), e2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], dim=1))
        return self.head(d1)


def render_masks(data: CaptionedScenes) -> torch.Tensor:
    """(N, C, S, S) bool concept masks of every scene of `data`. Introduced in notebook 03_drawing_gan_units."""
    tables = torch.zeros(len(data), 1 + max(data.n_objects[1], 1), len(CONCEPTS), dtype=torch.bool)
    for n, scene in enumerate(data.scenes):
        tables[n, 1 : 1 + len(scene)] = concept_table(scene)
    ids = data.ids.long() + 1  # 0 floor, k + 1 object k
    # masks[n, c, y, x] = tables[n, ids[n, y, x], c]
    picked = torch.gather(tables, 1, ids.flatten(1)[..., None].expand(-1, -1, len(CONCEPTS)))
    return picked.view(len(data), *ids.shape[1:], len(CONCEPTS)).permute(0, 3, 1, 2).contiguous()


def train_segmenter(model: Segmenter, config: SegmenterConfig, device: torch.device) -> History:
    """Per-pixel weighted binary cross-entropy of every concept: -[w m log p + (1 - m) log(1 - p)], mean over pixels,
    with w = config.positive_weight.

    Introduced in notebook 03_drawing_gan_units.
    """
    data = CaptionedScenes(config.pool, config.image_size, config.world_seed, config.n_objects, progress=False)
    masks = render_masks(data)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps)
    positive_weight = torch.tensor(config.positive_weight, device=device)

    def batch_at(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
        index = torch.randint(len(data), (config.batch,), generator=g)
        return to_signed(data.images[index]).to(device), masks[index].float().to(device)

    def step_fn(batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict[str, float]:
        images, target = batch
        loss = F.binary_cross_entropy_with_logits(model(images), target, pos_weight=positive_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        return {"loss": loss.item()}

    history = train_loop(step_fn, batch_at, config.steps, device=device, desc="train segmenter", log_every=10)
    model.eval()
    return history


def segmenter_for(config: SegmenterConfig, device: torch.device) -> tuple[Segmenter, dict]:
    """The segmenter for `config`, from the cache or trained. Introduced in notebook 03_drawing_gan_units."""

    def make() -> Segmenter:
        seed_everything(config.seed)
        return Segmenter(config)

    model, info = train_or_load("drawing-segmenter", config, make,
                               lambda m: {"history": train_segmenter(m, config, device).to_dict()}, device)
    return model.to(device).eval(), info


@torch.no_grad()
def segment(model: Segmenter, images: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """Concept probabilities (N, C, S, S) of uint8 images (N, 3, S, S). Introduced in notebook 03_drawing_gan_units."""
    device = next(model.parameters()).device
    model.eval()
    out = [torch.sigmoid(model(to_signed(images[k : k + batch]).to(device))).cpu() for k in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.zeros(0, len(CONCEPTS), *images.shape[2:])


def concept_iou(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-concept IoU (C,) of boolean masks (N, C, H, W), summed over all images:
    IoU_c = sum |P_c & T_c| / sum |P_c | T_c| (NaN where a concept appears in neither).

    Introduced in notebook 03_drawing_gan_units.
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and truth {tuple(truth.shape)} differ in shape")
    dims = [d for d in range(predicted.dim()) if d != 1]
    intersection = (predicted & truth).sum(dims).double()
    union = (predicted | truth).sum(dims).double()
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.full_like(union, float("nan")))


def evaluate_segmenter(model: Segmenter, n: int = 400, threshold: float = 0.5) -> dict[str, float]:
    """Per-concept and mean IoU of the thresholded segmenter on `n` held-out renders. Introduced in notebook 03."""
    c = model.config
    data = CaptionedScenes(n, c.image_size, c.world_seed + 1, c.n_objects, progress=False)
    iou = concept_iou(segment(model, data.images) > threshold, render_masks(data))
    return {**{concept: float(v) for concept, v in zip(CONCEPTS, iou)}, "mean": float(iou.nanmean())}


def connected_components(mask: torch.Tensor) -> torch.Tensor:
    """Labels (H, W) int64 of the 8-connected components of a boolean mask (H, W): 0 off, 1..K on.

    Each on-pixel starts with its own label and takes the largest label among its neighbours until nothing
    changes; components are then renumbered 1..K in the order of their labels.
    Introduced in notebook 03_drawing_gan_units.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be (H, W), got shape {tuple(mask.shape)}")
    on = mask.bool()
    labels = torch.where(on, torch.arange(1, on.numel() + 1).view(on.shape), 0).float()[None, None]
    while True:
        grown = F.max_pool2d(labels, 3, 1, 1) * on
        if torch.equal(grown, labels):
            break
        labels = grown
    labels = labels[0, 0].long()
    _, first = torch.unique(labels.flatten(), return_inverse=True)
    return first.view(on.shape) if bool((labels == 0).any()) else first.view(on.shape) + 1


@dataclass(frozen=True)
class FoundObject:
    """One object the segmenter found: its pixels, its majority value per attribute and how pure they are."""

    mask: torch.Tensor  # (H, W) bool
    attributes: dict[str, str]  # attribute -> majority value
    purity: dict[str, float]  # attribute -> share of the object's pixels whose most likely value is the majority

    @property
    def phrase(self) -> str:
        return object_phrase(self.attributes)


def find_objects(probabilities: torch.Tensor, threshold: float = 0.5, min_pixels: int = 6) -> list[FoundObject]:
    """The objects of one image's concept probabilities (C, H, W): connected components of the pixels where some
    shape is likelier than `threshold`, at least `min_pixels` large, left to right; per attribute the majority of
    the per-pixel most likely value. Introduced in notebook 03_drawing_gan_units."""
    if probabilities.dim() != 3 or probabilities.shape[0] != len(CONCEPTS):
        raise ValueError(f"probabilities must be (C={len(CONCEPTS)}, H, W), got {tuple(probabilities.shape)}")
    foreground = probabilities[ATTRIBUTE_SLICES["shape"]].max(0).values > threshold
    labels = connected_components(foreground)
    objects = []
    for k in range(1, int(labels.max()) + 1):
        mask = labels == k
        if int(mask.sum()) < min_pixels:
            continue
        attributes, purity = {}, {}
        for name, part in ATTRIBUTE_SLICES.items():
            votes = torch.bincount(probabilities[part][:, mask].argmax(0), minlength=part.stop - part.start)
            attributes[name] = ATTRIBUTES[name][int(votes.argmax())]
            purity[name] = float(votes.max()) / float(votes.sum())
        objects.append(FoundObject(mask, attributes, purity))
    return sorted(objects, key=lambda o: float(o.mask.nonzero()[:, 1].float().mean()))


def describe(probabilities: torch.Tensor, threshold: float = 0.5, min_pixels: int = 6) -> tuple[list[FoundObject], str]:
    """The objects of an image (`find_objects`) and a caption naming them, e.g.
    "a large red metal cube and a small blue rubber sphere" ("an empty floor" when none).

    Introduced in notebook 03_drawing_gan_units.
    """
    objects = find_objects(probabilities, threshold, min_pixels)
    phrases = [f"a {o.phrase}" for o in objects]
    caption = " and ".join(phrases) if phrases else "an empty floor"
    return objects, caption


def well_formed_share(probabilities: torch.Tensor, purity: float = 0.8, threshold: float = 0.5,
                      min_pixels: int = 6) -> float:
    """Share of images (N, C, H, W probabilities) in which the segmenter finds at least one object and every found
    object is well formed: for every attribute, at least `purity` of its pixels agree on one value (one colour,
    one shape, ...). Introduced in notebook 03_drawing_gan_units."""
    good = 0
    for p in probabilities:
        objects = find_objects(p, threshold, min_pixels)
        good += bool(objects) and all(min(o.purity.values()) >= purity for o in objects)
    return good / max(len(probabilities), 1)
