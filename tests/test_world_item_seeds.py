"""Item seeds: every (dataset seed, view, attempt) has its own stream, and the packed keys keep their items."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from tutorlib.world.rng import uniform
from tutorlib.world.views import common
from tutorlib.world.views.common import item_seeds

INDICES = np.arange(20)


def test_packed_keys_follow_the_documented_formula():
    # stream = 1_000_003 + (seed * 64 + attempt) * 8 + view, for seed < 2**53, attempt < 64, view < 8
    for seed, view, attempt in [(0, 0, 0), (0, 1, 0), (3, 5, 2), (2**53 - 1, 7, 63)]:
        stream = 1_000_003 + (seed * 64 + attempt) * 8 + view
        assert common.item_stream(seed, view, attempt) == stream
        expected = (uniform(INDICES, stream, 1)[:, 0] * float(2**53)).astype(np.int64)
        assert np.array_equal(item_seeds(seed, INDICES, view, attempt), expected)
    assert common.item_stream(0, 1) == 1_000_004 and common.item_stream(0, 0, 1) == 1_000_011 and common.item_stream(1, 0) == 1_000_515


@pytest.mark.parametrize("wide, neighbour", [
    ((0, 8, 0), (1, 0, 0)),  # a view key of 8: the packing would give seed 1's view 0
    ((0, 1, 64), (1, 1, 0)),  # attempt 64: the packing would give seed 1's attempt 0
    ((2**53, 1, 0), (0, 1, 0)),  # a seed beyond the packed field
])
def test_wide_fields_do_not_reuse_other_keys_streams(wide, neighbour):
    assert not np.array_equal(item_seeds(wide[0], INDICES, wide[1], wide[2]),
                              item_seeds(neighbour[0], INDICES, neighbour[1], neighbour[2]))
    assert common.item_stream(*wide) >= 2**63 > common.item_stream(*neighbour)


def test_all_keys_of_a_grid_have_distinct_streams():
    seeds = [0, 1, 2, 2**53 - 1, 2**53, 2**63 - 1]
    views = [0, 1, 7, 8, 9, 2**32 - 1]
    attempts = [0, 1, 63, 64, 65, 199, 2**32 - 1]
    streams = [common.item_stream(s, v, a) for s, v, a in itertools.product(seeds, views, attempts)]
    assert len(set(streams)) == len(streams)
    assert all(0 <= s < 2**64 for s in streams)


def test_same_key_same_seeds():
    assert np.array_equal(item_seeds(5, INDICES, 9, 70), item_seeds(5, INDICES, 9, 70))
    assert np.array_equal(item_seeds(5, [3], 9, 70), item_seeds(5, INDICES, 9, 70)[3:4])


@pytest.mark.parametrize("seed, view, attempt, message", [
    (-1, 1, 0, r"seed must be an integer from 0 to 2\*\*63 - 1, got -1"),
    (2**63, 1, 0, r"seed must be an integer from 0 to 2\*\*63 - 1"),
    (0, -1, 0, r"view must be an integer from 0 to 2\*\*32 - 1, got -1"),
    (0, 2**32, 0, r"view must be an integer from 0 to 2\*\*32 - 1"),
    (0, 1, -1, r"attempt must be an integer from 0 to 2\*\*32 - 1, got -1"),
    (0, 1, 2**32, r"attempt must be an integer from 0 to 2\*\*32 - 1"),
    (0, 1.0, 0, r"view must be an integer"),
])
def test_keys_out_of_range_are_refused(seed, view, attempt, message):
    with pytest.raises(ValueError, match=message):
        item_seeds(seed, INDICES, view, attempt)
