"""What every task view shares: per-item seeds, train/val/test splits, checks of options, and batching of item dicts.

Item seeds. Item i of a view's dataset draws from `uniform(i, stream)` where the stream is a key of
(dataset seed, attempt, view), so that two keys never share a stream:

- seed, attempt and view are integers: seed from 0 to 2**63 - 1, attempt and view from 0 to 2**32 - 1
  (ValueError otherwise);
- with seed < 2**53, attempt < 64 and view < 8 the key is packed exactly, below 2**63:
  stream = 1_000_003 + (seed * 64 + attempt) * 8 + view;
- any other key is hashed into the upper half, 2**63 + (h >> 1) with
  h = splitmix64(splitmix64(seed XOR 0x5EED) + attempt * 2**32 + view),
  which the packed keys never reach; two hashed keys share a stream with probability about 2**-63.

The packing keeps every item drawn so far unchanged; the hash takes over where the packed fields would
overflow into each other (a view key of 8 or more, a restart beyond attempt 63, a seed of 2**53 or more).
Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ..rng import check_seed, splitmix64, uniform

# Each view has its own key, so two views with the same seed draw different scenes.
VIEW_EDITING, VIEW_SIMAT, VIEW_CAPTIONED, VIEW_MINIMAL_CHANGE, VIEW_CHANGE_PAIRS = 1, 2, 3, 4, 5
# Source scenes of the VisMin pipeline and its models' training scenes (one attempt number per use).
VIEW_VISMIN_PIPELINE = 6
SPLITS = ("train", "val", "test")


# Field limits of the packed keys (see the module doc).
PACKED_SEEDS, PACKED_ATTEMPTS, PACKED_VIEWS = 2**53, 64, 8
FIELD_LIMIT = 2**32


def item_stream(seed: int, view: int, attempt: int = 0) -> int:
    """The stream of one (dataset seed, view, attempt): packed or hashed, as the module doc says."""
    seed = check_seed(seed)
    for name, value in (("view", view), ("attempt", attempt)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < FIELD_LIMIT:
            raise ValueError(f"{name} must be an integer from 0 to 2**32 - 1, got {value!r}")
    view, attempt = int(view), int(attempt)
    if seed < PACKED_SEEDS and attempt < PACKED_ATTEMPTS and view < PACKED_VIEWS:
        return 1_000_003 + (seed * PACKED_ATTEMPTS + attempt) * PACKED_VIEWS + view
    inner = splitmix64(np.uint64(seed ^ 0x5EED))
    with np.errstate(over="ignore"):
        h = splitmix64(inner + np.uint64(attempt * FIELD_LIMIT + view))
    return 2**63 + (int(h) >> 1)


def item_seeds(seed: int, indices, view: int, attempt: int = 0) -> np.ndarray:
    """(len(indices),) int64 seeds, one per item: a hash of (view, dataset seed, attempt, item index).

    Every item draws from its own streams, so an item never depends on the other items of its dataset, and
    a restart (attempt + 1) uses a different stream. The same (seed, index) always gives the same item, on
    any machine.
    """
    draws = uniform(np.asarray(indices, dtype=np.int64), item_stream(seed, view, attempt), 1)[:, 0]
    return (draws * float(1 << 53)).astype(np.int64)


def check_choices(name: str, values, choices: Sequence[str]) -> tuple[str, ...]:
    """`values` as a tuple; ValueError naming `name`, the unknown values and the valid ones unless `values` is a
    non-empty list drawn from `choices`.
    """
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a list of names from {list(choices)}, got {values!r}")
    values = tuple(values)
    unknown = [v for v in values if v not in choices]
    if unknown:
        raise ValueError(f"{name}: unknown {unknown}; choose from {list(choices)}")
    if not values:
        raise ValueError(f"{name} must name at least one of {list(choices)}")
    return values


def check_count(name: str, n, minimum: int = 0) -> int:
    """`n` as an int; ValueError naming `name` unless it is an integer >= `minimum`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)


def split_counts(n: int, shares: Sequence[float]) -> tuple[int, int, int]:
    """Sizes of the train, val and test splits of n samples (rounded; test takes the rest)."""
    if len(shares) != 3 or any(s < 0 for s in shares) or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
        raise ValueError(f"split_shares must be three non-negative shares summing to 1, got {tuple(shares)}")
    n_train = int(round(shares[0] * n))
    n_val = min(int(round(shares[1] * n)), n - n_train)
    return n_train, n_val, n - n_train - n_val


def split_names(n: int, shares: Sequence[float]) -> list[str]:
    """The split of each of n samples: contiguous ranges, train first (the samples are independent draws)."""
    return [name for name, count in zip(SPLITS, split_counts(n, shares)) for _ in range(count)]


class SplitDataset(Dataset):
    """A dataset whose items belong to the train, val or test split (`splits[i]` names item i's split)."""

    splits: list[str]

    def indices(self, name: str) -> list[int]:
        """Positions of the items of one split, in index order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose from {list(SPLITS)}")
        return [i for i, s in enumerate(self.splits) if s == name]

    def split(self, name: str) -> Subset:
        """The items of one split, in index order."""
        return Subset(self, self.indices(name))


def collate(items: Sequence[dict]) -> dict[str, Any]:
    """Batch a list of item dicts: tensors of equal shape are stacked, numbers become tensors, everything
    else (strings, scene graphs, None, tensors of different shapes) is kept as a list.

    Use it as `DataLoader(dataset, collate_fn=collate)`.
    """
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if all(isinstance(v, torch.Tensor) for v in values) and len({tuple(v.shape) for v in values}) == 1:
            batch[key] = torch.stack(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = values
    return batch
