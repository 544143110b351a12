"""GAN dissection: which units of a generator layer match which concepts.

For unit u of a layer and concept c, over GAN samples n (their concept masks M_c^n from the segmenter):
the unit's activation A_u^n is upsampled (bilinear) to the segmentation size and thresholded at t_u, and

    IoU(u, c) = sum_n |{A_u^n > t_u} & M_c^n| / sum_n |{A_u^n > t_u} | M_c^n|.

Two rules choose t_u:
  * "quantile" (GAN Dissection): t_u is the top 0.005 quantile of the unit's raw activations, every position of
    the feature map (before upsampling) of every dissected sample, as netdissect's quantile pass computes it;
  * "iqr": for each (u, c) the threshold among candidate quantiles (of the same raw activations) that maximises
    IQR = I(on; present) / H(on, present) of the 2 x 2 table (unit on, concept present) over pixels. netdissect
    computes the same IQR but only at the top-quantile threshold, as a second score beside IoU (and over the
    pixels of images where the concept's category occurs); choosing the threshold by it is this library's variant.
A unit is interpretable when its best IoU exceeds 0.05; units are ranked per concept by IoU.
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from tutorlib.plots import to_display
from tutorlib.progress import progress
from tutorlib.world.attributes import ATTRIBUTES
from tutorlib.world.views.captioned import CONCEPTS

from .gan import Generator, bank_codes, check_layer, to_uint8
from .segmenter import Segmenter, check_concept, segment

RULES = ("quantile", "iqr")
TOP_QUANTILE = 0.995  # the paper's top 0.5 % rule
CANDIDATE_QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, TOP_QUANTILE)  # the "iqr" rule chooses among these
INTERPRETABLE_IOU = 0.05


def check_rule(rule: str) -> str:
    """`rule` if it is a threshold rule, else a ValueError listing them. Introduced in notebook 03_drawing_gan_units."""
    if rule not in RULES:
        raise ValueError(f"unknown threshold rule {rule!r}; valid rules: {list(RULES)}")
    return rule


def iou_from_counts(intersection: torch.Tensor, on: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """IoU = |on & present| / (|on| + |present| - |on & present|), 0 where both are empty.

    Introduced in notebook 03_drawing_gan_units.
    """
    union = on + present - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1e-12), torch.zeros_like(union))


def information_quality_ratio(intersection: torch.Tensor, on: torch.Tensor, present: torch.Tensor,
                              total: float) -> torch.Tensor:
    """IQR = I(X; Y) / H(X, Y) of binary X (unit on) and Y (concept present), from pixel counts:
    p11 = |on & present| / T, p10 = (|on| - |on & present|) / T, p01 = (|present| - |on & present|) / T,
    p00 = 1 - p11 - p10 - p01; H(X, Y) = -sum p log p, I(X; Y) = H(X) + H(Y) - H(X, Y).

    Introduced in notebook 03_drawing_gan_units.
    """
    def entropy(*ps: torch.Tensor) -> torch.Tensor:
        return -sum(torch.where(p > 0, p * torch.log(p.clamp(min=1e-30)), torch.zeros_like(p)) for p in ps)

    p11 = intersection / total
    p10, p01 = on / total - p11, present / total - p11
    p00 = 1 - p11 - p10 - p01
    joint = entropy(p11, p10, p01, p00)
    mutual = entropy(p11 + p10, p01 + p00) + entropy(p11 + p01, p10 + p00) - joint
    return torch.where(joint > 0, mutual / joint.clamp(min=1e-12), torch.zeros_like(joint))


@dataclass
class Dissection:
    """Dissection of one layer. Introduced in notebook 03_drawing_gan_units."""

    layer: str
    thresholds: torch.Tensor  # (U, Q) activation value of each unit at each candidate quantile
    iou: dict[str, torch.Tensor]  # rule -> (U, C) IoU of unit u with concept c
    iqr: torch.Tensor  # (U, C) the best information quality ratio (the iqr rule's choice)
    chosen: torch.Tensor  # (U, C) index into CANDIDATE_QUANTILES chosen by the iqr rule
    n_samples: int

    @property
    def n_units(self) -> int:
        return self.thresholds.shape[0]

    def check_unit(self, unit: int) -> int:
        """`unit` if it is a unit of the layer, else a ValueError naming the valid range."""
        if not 0 <= unit < self.n_units:
            raise ValueError(f"unit {unit} does not exist in {self.layer}: valid units are 0 to {self.n_units - 1}")
        return unit

    def threshold(self, unit: int, concept: str | None = None, rule: str = "quantile") -> float:
        """The unit's activation threshold (per concept under the iqr rule)."""
        self.check_unit(unit)
        if check_rule(rule) == "quantile":
            return float(self.thresholds[unit, -1])
        return float(self.thresholds[unit, self.chosen[unit, check_concept(concept)]])

    def ranked_units(self, concept: str, rule: str = "quantile", n: int | None = None) -> list[tuple[int, float]]:
        """(unit, IoU) pairs of the layer for `concept`, best first."""
        values = self.iou[check_rule(rule)][:, check_concept(concept)]
        order = torch.argsort(values, descending=True, stable=True)[:n]
        return [(int(u), float(values[u])) for u in order]

    def unit_concepts(self, rule: str = "quantile") -> list[tuple[str, float]]:
        """Per unit, its best-matching concept and IoU."""
        best, index = self.iou[check_rule(rule)].max(dim=1)
        return [(CONCEPTS[int(c)], float(v)) for c, v in zip(index, best)]

    def interpretable(self, rule: str = "quantile", min_iou: float = INTERPRETABLE_IOU) -> int:
        """The number of units whose best IoU exceeds `min_iou`."""
        return int((self.iou[check_rule(rule)].max(dim=1).values > min_iou).sum())

    def concept_counts(self, rule: str = "quantile", min_iou: float = INTERPRETABLE_IOU) -> dict[str, int]:
        """Interpretable units per concept (each unit counted for its best concept)."""
        counts = {c: 0 for c in CONCEPTS}
        for concept, value in self.unit_concepts(rule):
            counts[concept] += value > min_iou
        return counts


def _upsampled(generator: Generator, z: torch.Tensor, layer: str, size: int) -> torch.Tensor:
    device = next(generator.parameters()).device
    with torch.no_grad():
        features = generator.features(z.to(device), layer)
    return F.interpolate(features, size=(size, size), mode="bilinear", align_corners=False).cpu()


def unit_quantiles(values: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """(U, M) values -> (U, Q): each row's quantiles with linear interpolation (as torch.quantile, which refuses
    inputs of more than 2^24 elements): x_(k) + f (x_(k+1) - x_(k)) at position k + f = q (M - 1) of the sorted row.

    Introduced in notebook 03_drawing_gan_units.
    """
    ordered = values.sort(dim=1).values
    position = torch.tensor(quantiles, dtype=torch.float64) * (values.shape[1] - 1)
    low = position.floor().long()
    high = position.ceil().long()
    fraction = (position - low).to(values.dtype)
    return torch.lerp(ordered[:, low], ordered[:, high], fraction)


@torch.no_grad()
def raw_thresholds(generator: Generator, z: torch.Tensor, layer: str, batch: int = 32) -> torch.Tensor:
    """(U, Q) threshold of each unit at each of CANDIDATE_QUANTILES, over every position of the raw (not upsampled)
    feature maps of all codes `z`. Introduced in notebook 03_drawing_gan_units."""
    device = next(generator.parameters()).device
    maps = torch.cat([generator.features(z[start : start + batch].to(device), layer).cpu()
                      for start in range(0, len(z), batch)])
    return unit_quantiles(maps.transpose(0, 1).flatten(1), CANDIDATE_QUANTILES)  # (U, N h w) -> (U, Q)


@torch.no_grad()
def dissect(generator: Generator, segmenter: Segmenter, layer: str, ids: Sequence[int], bank_seed: int = 0,
            batch: int = 32, concept_threshold: float = 0.5) -> Dissection:
    """Dissect `layer` over the GAN samples `ids`: thresholds from the raw feature maps of all samples
    (`raw_thresholds`), then IoU and IQR counts of the upsampled maps accumulated over all samples.

    Introduced in notebook 03_drawing_gan_units.
    """
    check_layer(layer)
    ids = list(ids)
    if not ids:
        raise ValueError("dissection needs at least one sample id")
    generator.eval()
    z = bank_codes(ids, bank_seed, generator.config.z_dim)
    size = generator.config.image_size
    thresholds = raw_thresholds(generator, z, layer, batch)  # (U, Q)
    units, q, c = thresholds.shape[0], len(CANDIDATE_QUANTILES), len(CONCEPTS)
    intersection = torch.zeros(units, q, c, dtype=torch.float64)
    on = torch.zeros(units, q, dtype=torch.float64)
    present = torch.zeros(c, dtype=torch.float64)
    total = 0.0
    for start in progress(range(0, len(ids), batch), desc=f"dissect {layer}"):
        zb = z[start : start + batch]
        device = next(generator.parameters()).device
        images = to_uint8(generator(zb.to(device))).cpu()
        masks = (segment(segmenter, images) > concept_threshold).float()  # (B, C, S, S)
        acts = _upsampled(generator, zb, layer, size)  # (B, U, S, S)
        flat_masks = masks.transpose(0, 1).flatten(1)  # (C, B S S)
        present += flat_masks.sum(1).double()
        total += float(flat_masks.shape[1])
        for k in range(q):
            unit_on = (acts > thresholds[:, k, None, None]).transpose(0, 1).flatten(1).float()  # (U, B S S)
            on[:, k] += unit_on.sum(1).double()
            intersection[:, k] += (unit_on @ flat_masks.T).double()
    iou_all = iou_from_counts(intersection, on[:, :, None], present[None, None])  # (U, Q, C)
    iqr_all = information_quality_ratio(intersection, on[:, :, None], present[None, None], total)
    best_iqr, chosen = iqr_all.max(dim=1)  # (U, C)
    iou = {"quantile": iou_all[:, -1].float(), "iqr": torch.gather(iou_all, 1, chosen[:, None])[:, 0].float()}
    return Dissection(layer, thresholds, iou, best_iqr.float(), chosen, len(ids))


def plot_unit_gallery(generator: Generator, dissection: Dissection, concepts: Sequence[str], ids: Sequence[int],
                      bank_seed: int = 0, per_unit: int = 3, rule: str = "quantile") -> Figure:
    """One row per concept: its best unit's top-activated samples among `ids`, the thresholded unit region
    outlined. Introduced in notebook 03_drawing_gan_units."""
    ids = list(ids)
    z = bank_codes(ids, bank_seed, generator.config.z_dim)
    size = generator.config.image_size
    with torch.no_grad():
        images = to_uint8(generator(z.to(next(generator.parameters()).device))).cpu()
    acts = _upsampled(generator, z, dissection.layer, size)
    figure, axes = plt.subplots(len(concepts), per_unit, figsize=(1.4 * per_unit, 1.5 * len(concepts)), squeeze=False)
    for row, concept in enumerate(concepts):
        unit, value = dissection.ranked_units(concept, rule, 1)[0]
        t = dissection.threshold(unit, concept, rule)
        top = torch.argsort(acts[:, unit].amax(dim=(1, 2)), descending=True)[:per_unit]
        for col, n in enumerate(top.tolist()):
            ax = axes[row, col]
            ax.imshow(to_display(images[n]))
            ax.contour((acts[n, unit] > t).float().numpy(), levels=[0.5], colors="white", linewidths=0.8)
            ax.set_xticks([]), ax.set_yticks([])
            if col == 0:
                ax.set_ylabel(f"{concept}\nunit {unit}\nIoU {value:.2f}", fontsize=7)
    figure.suptitle(f"{dissection.layer}: best unit per concept ({rule} threshold)", fontsize=9)
    figure.tight_layout()
    return figure


def plot_interpretable_counts(dissections: Sequence[Dissection], rule: str = "quantile") -> Figure:
    """Bars: interpretable units per layer, split by the attribute of their best concept. Introduced in notebook 03."""
    figure, ax = plt.subplots(figsize=(4.8, 2.8))
    bottom = [0] * len(dissections)
    for attribute in ATTRIBUTES:
        counts = [sum(v for c, v in d.concept_counts(rule).items() if c.startswith(attribute + "=")) for d in dissections]
        ax.bar([d.layer for d in dissections], counts, bottom=bottom, label=attribute)
        bottom = [b + n for b, n in zip(bottom, counts)]
    for k, d in enumerate(dissections):
        ax.text(k, bottom[k], f"{bottom[k]}/{d.n_units}", ha="center", va="bottom", fontsize=7)
    ax.set_ylabel(f"units with IoU > {INTERPRETABLE_IOU}")
    ax.set_title(f"interpretable units per layer ({rule} threshold)", fontsize=9)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure
