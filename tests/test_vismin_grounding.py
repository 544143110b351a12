"""Phrase grounding: boxes and IoUs on hand cases, the connected-part rule, the 85% rule, data and caching."""
import pytest
import torch

from tutorlib.vismin.grounding import (GroundingConfig, GroundingData, PhraseGrounder, box_iou, confident_component,
                                       encode_phrases, ground, load_grounder, mask_iou)
from tutorlib.world.views.minimal_change import mask_box
from tutorlib.world.views.simat import phrase_filter


def test_box_and_mask_iou_hand_cases():
    assert box_iou((0, 0, 4, 4), (2, 2, 4, 4)) == pytest.approx(4 / 28)
    assert box_iou((0, 0, 2, 2), (5, 5, 2, 2)) == 0.0
    a = torch.zeros(4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2] = True
    b[0, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(torch.zeros_like(a), torch.zeros_like(a)) == 1.0
    assert mask_box(a) == (0, 0, 2, 1) and mask_box(torch.zeros_like(a)) is None


def test_confident_component_keeps_the_part_with_the_best_pixel():
    p = torch.zeros(1, 6, 6)
    p[0, 0:2, 0:2] = 0.7  # a blob
    p[0, 4:6, 3:6] = 0.8
    p[0, 5, 5] = 0.99  # the best pixel is in the second blob
    region = confident_component(p, 0.5)[0]
    assert mask_box(region) == (3, 4, 3, 2) and region.sum() == 6
    assert not confident_component(torch.full((1, 3, 3), 0.2), 0.5).any()


class ConstantGrounder(torch.nn.Module):
    """Logits fixed by the test: +10 inside `on`, -10 elsewhere."""

    def __init__(self, on):
        super().__init__()
        self.on = on
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images, tokens):
        return torch.where(self.on, 10.0, -10.0).expand(len(images), *self.on.shape)


def test_ground_drops_boxes_over_85_percent_and_checks_lengths():
    images = torch.zeros(2, 3, 10, 10, dtype=torch.uint8)
    small = torch.zeros(10, 10, dtype=torch.bool)
    small[2:4, 3:6] = True
    _, boxes, unknown = ground(ConstantGrounder(small), images, ["red cube", "red dog"])
    assert boxes == [(3, 2, 3, 2)] * 2 and unknown == ["dog"]
    _, boxes, _ = ground(ConstantGrounder(torch.ones(10, 10, dtype=torch.bool)), images, ["red cube", "cube"])
    assert boxes == [None, None]
    with pytest.raises(ValueError, match="2 images for 1 phrases"):
        ground(ConstantGrounder(small), images, ["cube"])


def test_encode_phrases_pads_and_reports_unknown_words():
    tokens, unknown = encode_phrases(["red cube", "large blue metal sphere", "pink cube"])
    assert tokens.shape == (3, 4) and (tokens[0, 2:] == 0).all() and unknown == ["pink"]


def test_training_batches_are_deterministic_and_targets_match_phrases():
    data = GroundingData(GroundingConfig(batch=6, pool=16))
    images, phrases, targets = data.batch(3)
    again = data.batch(3)
    assert phrases == again[1] and torch.equal(targets, again[2]) and images.shape == (6, 3, 64, 64)
    assert all(t.any() for t in targets)  # every phrase names a visible object
    for phrase in phrases:
        assert "shape" in phrase_filter(phrase)


def test_model_shape_and_cache_round_trip(isolated_dirs):
    config = GroundingConfig(steps=2, batch=2, pool=4)
    model = PhraseGrounder(config)
    assert model(torch.zeros(2, 3, 64, 64), encode_phrases(["cube", "red sphere"])[0]).shape == (2, 64, 64)
    trained, info = load_grounder(config, torch.device("cpu"))
    loaded, again = load_grounder(config, torch.device("cpu"))
    assert not info["from_cache"] and again["from_cache"]
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
