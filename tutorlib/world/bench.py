"""Renderer throughput: `python -m tutorlib.world.bench` prints scenes per second (sampling + rendering).

Introduced in notebook 00_shapes_world.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .render import render
from .sampling import sample_scenes

TARGET_SCENES_PER_SECOND = 2000  # at 64 px, one process, on the 2-core CPU machine


def measure(size: int = 64, n_scenes: int = 4000, batch: int = 1000, device: str = "cpu",
            n_objects: tuple[int, int] = (3, 6), repeats: int = 3) -> dict:
    """Best of `repeats` timings of sampling and rendering `n_scenes` new scenes in batches of `batch`.

    Returns {"size", "device", "scenes", "seconds", "scenes_per_second"}.
    """
    render(sample_scenes(np.arange(batch), n_objects), size, device)  # warm-up
    best = float("inf")
    for repeat in range(repeats):
        start = time.perf_counter()
        for first in range(0, n_scenes, batch):
            seeds = np.arange(first, min(first + batch, n_scenes)) + (repeat + 1) * n_scenes
            images = render(sample_scenes(seeds, n_objects), size, device).images
        if images.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return {"size": size, "device": str(device), "scenes": n_scenes, "seconds": best,
            "scenes_per_second": n_scenes / best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--scenes", type=int, default=4000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"{'size':>6} {'scenes':>8} {'seconds':>9} {'scenes/s':>10}")
    results = {}
    for size in args.sizes:
        n = max(args.scenes * 64 * 64 // (size * size), 200)
        result = measure(size, n, device=args.device)
        results[size] = result
        print(f"{size:>6} {n:>8} {result['seconds']:>9.3f} {result['scenes_per_second']:>10.0f}")
    if 64 in results and args.device == "cpu":
        rate = results[64]["scenes_per_second"]
        verdict = "meets" if rate >= TARGET_SCENES_PER_SECOND else "MISSES"
        print(f"64 px: {rate:.0f} scenes/s {verdict} the target of {TARGET_SCENES_PER_SECOND} scenes/s")
        return 0 if rate >= TARGET_SCENES_PER_SECOND else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
