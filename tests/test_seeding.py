import random

import numpy as np
import torch

from tutorlib.seeding import seed_everything


def draws(generator: torch.Generator) -> tuple:
    return (
        random.random(),
        np.random.rand(3).tolist(),
        torch.rand(3).tolist(),
        torch.randn(2, generator=generator).tolist(),
    )


def test_same_seed_gives_same_draws():
    first = draws(seed_everything(7))
    second = draws(seed_everything(7))
    assert first == second


def test_other_seed_gives_other_draws():
    assert draws(seed_everything(7)) != draws(seed_everything(8))


def test_returns_a_cpu_generator():
    generator = seed_everything(3)
    assert generator.device == torch.device("cpu")
    assert generator.initial_seed() == 3
