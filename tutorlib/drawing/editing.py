"""Drawing by editing units: ablate or insert a concept's units inside a region, and measure what changed.

An edit of the feature map x (N, U, h, w) after a layer is

    x <- x * (1 - a) + v * a,

with a (U, h, w) equal to 1 on the chosen units at the locations of the region and 0 elsewhere; v = 0 ablates,
v = the unit's mean activation where the concept is present inserts. The generator then continues from x.
The segmenter measures the effect: the share of the concept removed (or added) inside the region, and the share of
pixels outside it whose concepts changed.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from tutorlib.world.views.captioned import CONCEPTS

from .dissection import Dissection
from .gan import Generator, bank_codes, check_layer, to_uint8
from .segmenter import ATTRIBUTE_SLICES, Segmenter, check_concept, segment

MODES = ("ablate", "insert")


def check_mode(mode: str) -> str:
    """`mode` if it is an edit mode, else a ValueError listing them. Introduced in notebook 03_drawing_gan_units."""
    if mode not in MODES:
        raise ValueError(f"unknown edit mode {mode!r}; valid modes: {list(MODES)}")
    return mode


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """A boolean mask (N, H, W) grown by `pixels` in every direction (a square structuring element).

    Introduced in notebook 03_drawing_gan_units.
    """
    if pixels <= 0:
        return mask.bool()
    return F.max_pool2d(mask.float()[:, None], 2 * pixels + 1, 1, pixels)[:, 0] > 0


def region_at(region: torch.Tensor, side: int) -> torch.Tensor:
    """A pixel region (N, S, S) as the (N, 1, side, side) locations of a feature map: a location is in the region
    when any of its pixels is. Introduced in notebook 03_drawing_gan_units."""
    return F.adaptive_max_pool2d(region.float()[:, None], side)


def edit_features(x: torch.Tensor, units: Sequence[int], region: torch.Tensor,
                  values: torch.Tensor | float = 0.0) -> torch.Tensor:
    """x * (1 - a) + v * a for feature maps x (N, U, h, w), a = 1 on `units` inside `region` (N, 1, h, w), and
    v a number or one value per unit (U,). Introduced in notebook 03_drawing_gan_units."""
    chosen = torch.zeros(x.shape[1], dtype=x.dtype, device=x.device)
    chosen[list(units)] = 1
    a = chosen[None, :, None, None] * region.to(x)
    v = torch.as_tensor(values, dtype=x.dtype, device=x.device)
    v = v[None, :, None, None] if v.dim() == 1 else v
    return x * (1 - a) + v * a


@torch.no_grad()
def edit(generator: Generator, z: torch.Tensor, layer: str, units: Sequence[int], region: torch.Tensor,
         values: torch.Tensor | float = 0.0, batch: int = 128) -> torch.Tensor:
    """uint8 images of codes z (N, z_dim) with `units` of `layer` edited inside the pixel `region` (N, S, S).

    Introduced in notebook 03_drawing_gan_units.
    """
    check_layer(layer)
    device = next(generator.parameters()).device
    generator.eval()
    out = []
    for k in range(0, len(z), batch):
        x = generator.features(z[k : k + batch].to(device), layer)
        a = region_at(region[k : k + batch], x.shape[-1]).to(device)
        out.append(to_uint8(generator.from_layer(edit_features(x, units, a, values), layer)).cpu())
    return torch.cat(out)


@torch.no_grad()
def concept_means(generator: Generator, segmenter: Segmenter, layer: str, ids: Sequence[int], bank_seed: int = 0,
                  batch: int = 64) -> torch.Tensor:
    """(U, C) mean activation of each unit where the segmenter finds each concept, each location of `layer` weighted
    by the share w of its pixels showing the concept: v_uc = sum x_u w_c / sum w_c. These are the insertion values.

    Introduced in notebook 03_drawing_gan_units.
    """
    check_layer(layer)
    device = next(generator.parameters()).device
    z = bank_codes(ids, bank_seed, generator.config.z_dim)
    sums, counts = None, torch.zeros(len(CONCEPTS), dtype=torch.float64)
    for k in range(0, len(z), batch):
        x = generator.features(z[k : k + batch].to(device), layer)
        images = to_uint8(generator.from_layer(x, layer)).cpu()
        masks = (segment(segmenter, images) > 0.5).float()
        share = F.interpolate(masks, size=x.shape[-2:], mode="area")  # (B, C, h, w): w, the concept's pixel share
        # sum over samples and locations of x[n, u, p] * w[n, c, p]
        part = torch.einsum("nuhw,nchw->uc", x.cpu().double(), share.double())
        sums = part if sums is None else sums + part
        counts += share.sum(dim=(0, 2, 3)).double()
    return (sums / counts.clamp(min=1)).float()


def concept_regions(probabilities: torch.Tensor, concepts: Sequence[str], dilation: int = 2,
                    threshold: float = 0.5) -> torch.Tensor:
    """(N, S, S) regions: the segmenter's mask of concept n in image n (probabilities (N, C, S, S)), dilated.

    Introduced in notebook 03_drawing_gan_units.
    """
    if len(concepts) != len(probabilities):
        raise ValueError(f"got {len(concepts)} concepts for {len(probabilities)} images; give one per image")
    index = torch.tensor([check_concept(c) for c in concepts], dtype=torch.long)
    masks = probabilities[torch.arange(len(probabilities)), index] > threshold
    return dilate(masks, dilation)


@dataclass(frozen=True)
class EditEffect:
    """What an edit did to one concept, measured by the segmenter (shares of pixels, over all samples)."""

    inside_before: float  # share of the region's pixels showing the concept before the edit
    inside_after: float  # ... after the edit
    removed: float  # 1 - |concept & region| after / before (ablation)
    changed_outside: float  # share of pixels outside the region whose set of concepts changed


def edit_effect(before: torch.Tensor, after: torch.Tensor, concept: str, region: torch.Tensor,
                threshold: float = 0.5) -> EditEffect:
    """Effect of an edit from the segmenter's probabilities before and after (N, C, S, S), inside `region` (N, S, S):
    removed = 1 - sum |M'_c & R| / sum |M_c & R|, changed outside = sum |(M != M') & ~R| / sum |~R|, where a pixel
    changed when any concept flips. Introduced in notebook 03_drawing_gan_units."""
    c = check_concept(concept)
    m, m2 = before > threshold, after > threshold
    region = region.bool()
    inside = float(region.sum())
    have, have_after = float((m[:, c] & region).sum()), float((m2[:, c] & region).sum())
    outside = ~region
    changed = float(((m != m2).any(dim=1) & outside).sum()) / max(float(outside.sum()), 1.0)
    return EditEffect(have / max(inside, 1.0), have_after / max(inside, 1.0),
                      1 - have_after / have if have else 0.0, changed)


def units_for(dissection: Dissection, concept: str, n_units: int, rule: str = "quantile") -> list[int]:
    """The top `n_units` units of `concept` in the dissected layer. Introduced in notebook 03_drawing_gan_units."""
    if not 1 <= n_units <= dissection.n_units:
        raise ValueError(f"n_units must be 1 to {dissection.n_units} (the units of {dissection.layer}), got {n_units}")
    return [u for u, _ in dissection.ranked_units(concept, rule, n_units)]


def insertion_box(side: int, share: float = 0.25) -> torch.Tensor:
    """(S, S) bool: a square of `share` of the side, centred horizontally in the lower middle of the floor.

    Introduced in notebook 03_drawing_gan_units.
    """
    box = torch.zeros(side, side, dtype=torch.bool)
    half, top = max(1, int(side * share / 2)), int(side * 0.62)
    box[top - half : top + half, side // 2 - half : side // 2 + half] = True
    return box


def edit_curve(generator: Generator, segmenter: Segmenter, dissection: Dissection, concept: str, mode: str,
               ids: Sequence[int], n_values: Sequence[int], bank_seed: int = 0, dilation: int = 2,
               means: torch.Tensor | None = None, control_seed: int = 0, rule: str = "quantile") -> dict[str, list]:
    """The effect of editing the top-N units of `concept` for each N of `n_values`, and of N random units (control).

    Ablation: the samples of `ids` where the segmenter finds the concept; region = its mask, dilated by `dilation`;
    reports the share removed. Insertion: the samples whose `insertion_box` holds no object; region = the box;
    v = `means` (U, C) from concept_means; reports the share of the box showing the concept after the edit.
    When no sample suits the edit, every share is NaN.
    Introduced in notebook 03_drawing_gan_units.
    """
    c = check_concept(concept)
    check_mode(mode)
    if mode == "insert" and means is None:
        raise ValueError("insertion needs `means`, the (U, C) values from concept_means")
    ids = list(ids)
    z = bank_codes(ids, bank_seed, generator.config.z_dim)
    with torch.no_grad():
        before = segment(segmenter, to_uint8(generator(z.to(next(generator.parameters()).device))).cpu())
    side = generator.config.image_size
    if mode == "ablate":
        keep = (before[:, c] > 0.5).flatten(1).any(dim=1)
        region = dilate(before[keep, c] > 0.5, dilation)
        values: torch.Tensor | float = 0.0
    else:
        objects = (before[:, ATTRIBUTE_SLICES["shape"]] > 0.5).any(dim=1)  # any shape: an object
        box = insertion_box(side)
        keep = ~(objects & box).flatten(1).any(dim=1)
        region = box.expand(int(keep.sum()), side, side)
        values = means[:, c]
    z, before = z[keep], before[keep]
    rows: dict[str, list] = {"n_units": [], "share": [], "changed_outside": [], "control_share": [],
                             "control_changed_outside": [], "samples": int(keep.sum())}
    if not bool(keep.any()):  # no sample suits the edit: the curve is empty (NaN)
        nan = [float("nan")] * len(n_values)
        return {**rows, "n_units": [int(n) for n in n_values], "share": nan, "changed_outside": nan,
                "control_share": nan, "control_changed_outside": nan}
    g = torch.Generator().manual_seed(control_seed)
    for n in n_values:
        for prefix, units in (("", units_for(dissection, concept, n, rule)),
                              ("control_", torch.randperm(dissection.n_units, generator=g)[:n].tolist())):
            after = segment(segmenter, edit(generator, z, dissection.layer, units, region, values))
            effect = edit_effect(before, after, concept, region)
            rows[prefix + "share"].append(effect.removed if mode == "ablate" else effect.inside_after)
            rows[prefix + "changed_outside"].append(effect.changed_outside)
        rows["n_units"].append(int(n))
    return rows


def negative_plan(probabilities: torch.Tensor, k: int = 9, seed: int = 0) -> list[list[tuple[str, int]]]:
    """For each image (probabilities (N, C, S, S)), `k` (concept, multiplier) edits that make its edited negatives:
    the concepts the segmenter finds in it, in a seeded random order, each once; when fewer than k, the list is
    cycled with the multiplier of the number of units growing (1, 2, 3, ...: the paper grows N until the edit
    changes enough). Images with no concept get ("shape=...", m) edits of their whole-image region.
    Introduced in notebook 03_drawing_gan_units."""
    g = torch.Generator().manual_seed(seed)
    plans = []
    for p in probabilities:
        found = [CONCEPTS[c] for c in range(len(CONCEPTS)) if bool((p[c] > 0.5).any())] or ["shape=cube"]
        found = [found[i] for i in torch.randperm(len(found), generator=g).tolist()]
        plans.append([(found[j % len(found)], 1 + j // len(found)) for j in range(k)])
    return plans


@torch.no_grad()
def edited_negatives(generator: Generator, segmenter: Segmenter, dissection: Dissection, ids: Sequence[int],
                     concepts: Sequence[str] | None = None, n_units: int = 16, dilation: int = 2, bank_seed: int = 0,
                     k: int = 1, seed: int = 0, rule: str = "quantile") -> torch.Tensor:
    """Edited versions of GAN samples `ids`: each image with a concept ablated (its top units, times a multiplier)
    inside the segmenter's dilated mask of that concept.

    With `concepts` (one per sample) and k = 1: (N, 3, S, S), the hard negatives of word training. Without:
    (N, k, 3, S, S) following `negative_plan` (the 1-vs-k test). Introduced in notebook 03_drawing_gan_units.
    """
    ids = list(ids)
    z = bank_codes(ids, bank_seed, generator.config.z_dim)
    device = next(generator.parameters()).device
    probabilities = segment(segmenter, to_uint8(generator(z.to(device))).cpu())
    if concepts is not None:
        if k != 1:
            raise ValueError("with one concept per sample, k must be 1")
        plans = [[(concept, 1)] for concept in concepts]
        if len(plans) != len(ids):
            raise ValueError(f"got {len(plans)} concepts for {len(ids)} samples; give one per sample")
    else:
        plans = negative_plan(probabilities, k, seed)
    out = torch.zeros(len(ids), k, 3, *probabilities.shape[2:], dtype=torch.uint8)
    for j in range(k):
        edits = [plan[j] for plan in plans]
        region = concept_regions(probabilities, [c for c, _ in edits], dilation)
        region[~region.flatten(1).any(dim=1)] = True  # a concept the segmenter cannot place: the whole image
        # samples that share (concept, multiplier) share their units: edit them together
        for key in sorted(set(edits)):
            rows = [n for n, e in enumerate(edits) if e == key]
            units = units_for(dissection, key[0], min(n_units * key[1], dissection.n_units), rule)
            out[rows, j] = edit(generator, z[rows], dissection.layer, units, region[rows])
    return out[:, 0] if concepts is not None else out
