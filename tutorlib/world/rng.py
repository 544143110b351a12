"""Counter-based random numbers: the same seed gives the same draws on any machine and in any batch.

Each scene draws from its own stream, `uniform(seed, stream, n)`, computed by integer hashing
(splitmix64), so a scene never depends on which other scenes share its batch.
Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import numbers

import numpy as np

# Seeds are non-negative int64 values: 0 to 2**63 - 1.
SEED_LIMIT = 2**63

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of uint64 values, a bijection that scatters bits (used as a hash)."""
    # z ^= z >> 30; z *= M1; z ^= z >> 27; z *= M2; z ^= z >> 31  (all modulo 2^64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def check_seed(seed, name: str = "seed") -> int:
    """`seed` as an int; ValueError naming `name` unless it is an integer from 0 to 2**63 - 1."""
    if not _is_seed(seed):
        raise ValueError(f"{name} must be an integer from 0 to 2**63 - 1, got {seed!r}")
    return int(seed)


def _is_seed(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral) and 0 <= value < SEED_LIMIT


def seed_array(seeds, name: str = "seeds") -> np.ndarray:
    """`seeds` (an integer or a sequence or array of them) as a 1-d int64 array; ValueError naming `name` unless
    every seed is an integer from 0 to 2**63 - 1.
    """
    array = np.atleast_1d(np.asarray(seeds))
    if array.dtype.kind == "O":  # Python ints beyond 64 bits, or mixed types
        bad = [s for s in array.ravel() if not _is_seed(s)]
    elif array.size and array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers from 0 to 2**63 - 1, got an array of {array.dtype}")
    else:
        bad = [int(s) for s in (array.min(), array.max()) if not 0 <= s < SEED_LIMIT] if array.size else []
    if bad:
        raise ValueError(f"{name} must be integers from 0 to 2**63 - 1, got {bad[0]!r}")
    return array.astype(np.int64)


def uniform(seeds, stream: int, n: int) -> np.ndarray:
    """Uniform floats in [0, 1), shape (len(seeds), n): draw j of `stream` for each seed.

    Seeds are integers from 0 to 2**63 - 1 (ValueError otherwise), streams integers from 0 to 2**64 - 1.
    """
    seeds = seed_array(seeds).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = splitmix64(seeds * _GOLDEN + np.uint64(stream) * _MIX2)
        counters = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        bits = splitmix64(key[:, None] + counters[None, :])
    # The top 53 bits make an exactly representable double in [0, 1).
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
