import math

import pytest
import torch

from tutorlib.masks import iou_from_counts, mask_iou


def test_mask_iou_by_hand_and_empty_masks_are_nan():
    a = torch.zeros(2, 3, 3, dtype=torch.bool)
    b = torch.zeros(2, 3, 3, dtype=torch.bool)
    a[0, 0, :2] = True  # 2 pixels
    b[0, 0, 1:] = True  # 2 pixels, 1 shared: IoU 1 / 3
    per_mask = mask_iou(a, b, dims=(-2, -1))
    assert per_mask[0].item() == pytest.approx(1 / 3) and math.isnan(per_mask[1].item())
    assert mask_iou(a, b).item() == pytest.approx(1 / 3)  # the empty second pair adds nothing to the counts
    assert mask_iou(a, a, dims=(-2, -1))[0].item() == 1.0
    assert iou_from_counts(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 4.0])).tolist()[1] == 0.5
    with pytest.raises(ValueError, match=r"masks of different shapes: \(2, 3, 3\) and \(3, 3\)"):
        mask_iou(a, b[0])
