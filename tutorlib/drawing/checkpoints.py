"""The GAN's shipped checkpoint: how it is trained, saved and loaded.

A GAN needs thousands of steps, more than the `standard` budget on a CPU allows, so the repository ships one
produced by this entry point (the generator in half precision, with its config and training log beside it):

    python -m tutorlib.drawing.checkpoints --threads 1    # trains the standard config; resumes if interrupted

`standard` loads it (the notebook says so); `smoke` and `full` train their own (cached by config).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from tutorlib.cache import train_or_load
from tutorlib.seeding import seed_everything
from tutorlib.shipped import ShippedModel

from .gan import Discriminator, GanConfig, Generator, generate, train_gan


def build_generator(config: GanConfig) -> Generator:
    """The untrained generator, initialised from the config's seed (its discriminator is made next)."""
    seed_everything(config.seed)
    return Generator(config)


def train_generator(generator: Generator, config: GanConfig, device: torch.device, checkpoint: Path | None):
    """Train `generator` against a fresh discriminator (resumable through `checkpoint`)."""
    return train_gan(generator, Discriminator(config), config, device, checkpoint=checkpoint)


def draw_samples(folder: Path, generator: Generator) -> None:
    """samples.png beside a saved GAN: bank 0, ids 0..31."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tutorlib.plots import image_grid

    figure = image_grid(generate(generator.cpu(), ids=range(32)), scale=1.0)
    figure.savefig(folder / "samples.png", dpi=60, bbox_inches="tight")
    plt.close(figure)


SHIPPED = ShippedModel("drawing-gan", "tutorlib.drawing.checkpoints", GanConfig(), build_generator, train_generator,
                       figures=draw_samples)
COMMAND = SHIPPED.command


def generator_for(config: GanConfig, device: torch.device, use_shipped: bool) -> tuple[Generator, dict]:
    """The shipped generator when `use_shipped` (it must have been made with `config`); otherwise one from the
    cache, trained when absent."""
    if use_shipped:
        return SHIPPED.load(config, device)

    def train(generator: Generator) -> dict:
        history = train_generator(generator, config, device, None)
        return {"history": history.to_dict(), "seconds": history.seconds}

    return train_or_load("drawing-gan", asdict(config), lambda: build_generator(config), train, device)


if __name__ == "__main__":
    SHIPPED.main()
