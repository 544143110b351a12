"""Counter-based random numbers: the same seed gives the same draws on any machine and in any batch.

Each scene draws from its own stream, `uniform(seed, stream, n)`, computed by integer hashing
(splitmix64), so a scene never depends on which other scenes share its batch.
Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(z: np.ndarray) -> np.ndarray:
    # z ^= z >> 30; z *= M1; z ^= z >> 27; z *= M2; z ^= z >> 31  (all modulo 2^64)
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def uniform(seeds, stream: int, n: int) -> np.ndarray:
    """Uniform floats in [0, 1), shape (len(seeds), n): draw j of `stream` for each seed.

    Introduced in notebook 00_shapes_world.
    """
    seeds = np.atleast_1d(np.asarray(seeds, dtype=np.int64)).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(seeds * _GOLDEN + np.uint64(stream) * _MIX2)
        counters = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        bits = _splitmix64(key[:, None] + counters[None, :])
    # The top 53 bits make an exactly representable double in [0, 1).
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
