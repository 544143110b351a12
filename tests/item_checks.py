"""Assertions shared by the task-view tests."""
import torch


def assert_items_equal(a: dict, b: dict) -> None:
    """Two dataset items hold the same keys and equal values (tensors compared exactly)."""
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
