import copy
import math
from dataclasses import replace

import matplotlib
import pytest
import torch

from tutorlib.drawing.dissection import (CANDIDATE_QUANTILES, Dissection, dissect, information_quality_ratio,
                                         iou_from_counts, plot_interpretable_counts, plot_unit_gallery,
                                         unit_quantiles)
from tutorlib.drawing.editing import (concept_means, concept_regions, dilate, edit, edit_curve, edit_effect,
                                      edit_features, edited_negatives, insertion_box, negative_plan, region_at,
                                      units_for)
from tutorlib.drawing.explore import explore_units, unit_explorer
from tutorlib.drawing.gan import GanConfig, Generator, bank_codes, generate
from tutorlib.drawing.segmenter import Segmenter, SegmenterConfig
from tutorlib.world.views.captioned import CONCEPTS

matplotlib.use("Agg")

TINY = replace(GanConfig(), image_size=32, z_dim=8, widths=(16, 8, 8, 4), d_width=4)



pytestmark = pytest.mark.usefixtures("one_thread")

@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    generator = Generator(TINY).eval()
    segmenter = Segmenter(replace(SegmenterConfig(), image_size=32, width=4)).eval()
    return generator, segmenter


def made_up_dissection(units: int = 4) -> Dissection:
    iou = torch.zeros(units, len(CONCEPTS))
    iou[0, CONCEPTS.index("color=red")] = 0.30
    iou[2, CONCEPTS.index("color=red")] = 0.10
    iou[1, CONCEPTS.index("shape=cube")] = 0.04
    iqr = iou.clone()
    thresholds = torch.arange(units * len(CANDIDATE_QUANTILES), dtype=torch.float).view(units, -1)
    chosen = torch.zeros(units, len(CONCEPTS), dtype=torch.long)
    return Dissection("layer3", thresholds, {"quantile": iou, "iqr": iou * 2}, iqr, chosen, 10)


def test_iou_from_counts_by_hand():
    # |on| = 4, |present| = 6, |both| = 2: IoU = 2 / (4 + 6 - 2) = 0.25
    assert iou_from_counts(torch.tensor(2.0), torch.tensor(4.0), torch.tensor(6.0)).item() == pytest.approx(0.25)
    assert iou_from_counts(torch.tensor(0.0), torch.tensor(0.0), torch.tensor(0.0)).item() == 0.0


def test_information_quality_ratio_by_hand():
    # the unit is on exactly where the concept is present: I = H(X) = H(X, Y), IQR = 1
    assert information_quality_ratio(torch.tensor(25.0), torch.tensor(25.0), torch.tensor(25.0), 100).item() == \
        pytest.approx(1.0)
    # independent: p(on) = 0.5, p(present) = 0.5, p(both) = 0.25: I = 0
    assert information_quality_ratio(torch.tensor(25.0), torch.tensor(50.0), torch.tensor(50.0), 100).item() == \
        pytest.approx(0.0, abs=1e-9)
    # p11 = 0.2, p10 = 0.1, p01 = 0.1, p00 = 0.6, written out
    p = [0.2, 0.1, 0.1, 0.6]
    joint = -sum(v * math.log(v) for v in p)
    marginal = -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))
    expected = (2 * marginal - joint) / joint
    got = information_quality_ratio(torch.tensor(20.0), torch.tensor(30.0), torch.tensor(30.0), 100).item()
    assert got == pytest.approx(expected)


def test_dissection_queries_and_errors():
    d = made_up_dissection()
    assert d.ranked_units("color=red", n=2) == [(0, pytest.approx(0.30)), (2, pytest.approx(0.10))]
    assert d.interpretable() == 2 and d.interpretable(min_iou=0.01) == 3
    assert d.concept_counts()["color=red"] == 2 and d.unit_concepts()[1] == ("shape=cube", pytest.approx(0.04))
    assert d.ranked_units("color=red", "iqr", 1)[0][1] == pytest.approx(0.60)
    assert d.threshold(1) == float(d.thresholds[1, -1]) and d.threshold(1, "color=red", "iqr") == float(d.thresholds[1, 0])
    with pytest.raises(ValueError, match="valid concepts"):
        d.ranked_units("color=pink")
    with pytest.raises(ValueError, match="valid units are 0 to 3"):
        d.threshold(4)
    with pytest.raises(ValueError, match="valid rules"):
        d.interpretable("median")
    with pytest.raises(ValueError, match="1 to 4"):
        units_for(d, "color=red", 5)


def test_unit_quantiles_match_torch_quantile():
    values = torch.randn(3, 1001, generator=torch.Generator().manual_seed(0))
    expected = torch.quantile(values, torch.tensor(CANDIDATE_QUANTILES), dim=1).T
    torch.testing.assert_close(unit_quantiles(values, CANDIDATE_QUANTILES), expected)
    # hand-computed: 0.25 of [0, 10, 20, 30, 40] sits at position 1.0, 0.9 at 3.6 -> 30 + 0.6 * 10
    torch.testing.assert_close(unit_quantiles(torch.tensor([[40.0, 0, 30, 10, 20]]), (0.25, 0.9)),
                               torch.tensor([[10.0, 36.0]]))


def test_dissect_thresholds_are_quantiles_of_the_raw_activations(models):
    generator, segmenter = models
    d = dissect(generator, segmenter, "layer3", range(6), batch=4)
    assert d.thresholds.shape == (8, len(CANDIDATE_QUANTILES)) and d.n_samples == 6
    assert d.iou["quantile"].shape == (8, len(CONCEPTS)) and d.iou["iqr"].shape == (8, len(CONCEPTS))
    assert bool((d.thresholds.diff(dim=1) >= 0).all())  # candidate quantiles grow
    assert bool(((d.iou["iqr"] >= 0) & (d.iou["iqr"] <= 1)).all()) and bool((d.iqr <= 1 + 1e-6).all())
    with torch.no_grad():
        raw = generator.features(bank_codes(range(6), 0, 8), "layer3")  # every position of every sample, not upsampled
    expected = torch.quantile(raw[:, 2].flatten(), CANDIDATE_QUANTILES[-1])
    assert d.threshold(2) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="valid layers"):
        dissect(generator, segmenter, "layer7", range(2))
    figure = plot_interpretable_counts([d, d])
    gallery = plot_unit_gallery(generator, d, ["color=red", "shape=cube"], range(6), per_unit=2)
    assert len(figure.axes) == 1 and len(gallery.axes) == 4


def test_edit_formula_by_hand():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float).view(2, 3, 2, 2)
    region = torch.zeros(2, 1, 2, 2)
    region[:, :, 0, 0] = 1
    out = edit_features(x, [1], region, torch.tensor([0.0, -5.0, 0.0]))
    expected = x.clone()
    expected[:, 1, 0, 0] = -5.0
    assert torch.equal(out, expected)
    assert torch.equal(edit_features(x, [0, 2], region, 0.0)[:, 1], x[:, 1])


def test_regions():
    mask = torch.zeros(1, 5, 5, dtype=torch.bool)
    mask[0, 2, 2] = True
    assert int(dilate(mask, 1).sum()) == 9 and torch.equal(dilate(mask, 0), mask)
    pixels = torch.zeros(1, 4, 4, dtype=torch.bool)
    pixels[0, 3, 0] = True
    assert region_at(pixels, 2)[0, 0].tolist() == [[0.0, 0.0], [1.0, 0.0]]
    p = torch.zeros(2, len(CONCEPTS), 5, 5)
    p[1, CONCEPTS.index("color=red"), 2, 2] = 0.9
    regions = concept_regions(p, ["color=red", "color=red"], dilation=1)
    assert int(regions[0].sum()) == 0 and int(regions[1].sum()) == 9
    with pytest.raises(ValueError, match="one per image"):
        concept_regions(p, ["color=red"])
    assert int(insertion_box(16).sum()) == 16


def test_edits_outside_nothing_change_nothing_and_full_ablation_flattens(models):
    generator, _ = models
    z = bank_codes([0, 1], 0, 8)
    nothing = torch.zeros(2, 32, 32, dtype=torch.bool)
    assert torch.equal(edit(generator, z, "layer2", [0, 1], nothing), generate(generator, z=z))
    flat = edit(generator, z, "layer4", range(4), ~nothing)  # no unit left: the image is the output bias
    assert torch.equal(flat[0], flat[1]) and bool((flat[0] == flat[0][:, :1, :1]).all())
    with pytest.raises(ValueError, match="valid layers"):
        edit(generator, z, "to_rgb", [0], nothing)


def test_edit_effect_by_hand():
    c = CONCEPTS.index("color=red")
    before = torch.zeros(1, len(CONCEPTS), 2, 2)
    before[0, c, 0, :] = 1  # the concept on the top row
    after = before.clone()
    after[0, c, 0, 0] = 0  # half of it removed
    after[0, 0, 1, 1] = 1  # and one outside pixel changed
    region = torch.zeros(1, 2, 2, dtype=torch.bool)
    region[0, 0, :] = True
    effect = edit_effect(before, after, "color=red", region)
    assert effect.removed == 0.5 and effect.inside_before == 1.0 and effect.inside_after == 0.5
    assert effect.changed_outside == 0.5


def test_negative_plan_cycles_concepts_with_growing_multipliers():
    p = torch.zeros(2, len(CONCEPTS), 4, 4)
    p[0, CONCEPTS.index("color=red"), 0, 0] = 1
    p[0, CONCEPTS.index("shape=cube"), 0, 0] = 1
    plans = negative_plan(p, k=5, seed=1)
    assert sorted(c for c, m in plans[0][:2]) == ["color=red", "shape=cube"]
    assert [m for _, m in plans[0]] == [1, 1, 2, 2, 3] and plans[0][2][0] == plans[0][0][0]
    assert [c for c, _ in plans[1]] == ["shape=cube"] * 5


def test_edited_negatives_and_curves(models):
    generator, segmenter = models
    d = made_up_dissection(units=8)
    d.layer = "layer3"
    ids = [0, 1, 2]
    single = edited_negatives(generator, segmenter, d, ids, ["color=red"] * 3, n_units=2)
    assert single.shape == (3, 3, 32, 32) and single.dtype == torch.uint8
    many = edited_negatives(generator, segmenter, d, ids, n_units=2, k=4)
    assert many.shape == (3, 4, 3, 32, 32)
    with pytest.raises(ValueError, match="one per sample"):
        edited_negatives(generator, segmenter, d, ids, ["color=red"], n_units=2)
    with pytest.raises(ValueError, match="valid concepts"):
        edited_negatives(generator, segmenter, d, ids, ["color=pink"] * 3, n_units=2)
    means = concept_means(generator, segmenter, "layer3", ids)
    assert means.shape == (8, len(CONCEPTS))
    blind = copy.deepcopy(segmenter)
    with torch.no_grad():
        blind.head.bias.fill_(-20.0)  # sees no object, so every insertion box is free
    curve = edit_curve(generator, blind, d, "color=red", "insert", range(8), [1, 2], means=means)
    assert curve["samples"] == 8 and curve["share"] == [0.0, 0.0]
    assert curve["n_units"] == [1, 2] and len(curve["share"]) == 2 and len(curve["control_share"]) == 2
    with pytest.raises(ValueError, match="valid modes"):
        edit_curve(generator, segmenter, d, "color=red", "erase", ids, [1])
    figure = explore_units(generator, segmenter, d, means, 1, "color=red", 2, "insert")
    assert len(figure.axes) == 3
    figure = explore_units(generator, segmenter, d, None, 1, "color=red", 2, "ablate")
    assert "ablate color=red" in figure._suptitle.get_text()
    with pytest.raises(ValueError, match="means"):
        explore_units(generator, segmenter, d, None, 1, "color=red", 2, "insert")


def test_unit_explorer_builds(models):
    import ipywidgets

    generator, segmenter = models
    d = made_up_dissection(units=8)
    d.layer = "layer3"
    panel = unit_explorer(generator, segmenter, d, torch.zeros(8, len(CONCEPTS)))
    assert isinstance(panel, ipywidgets.VBox)
