"""The GAN's shipped checkpoint: how it is trained, saved and loaded.

A GAN needs thousands of steps, more than the `standard` budget on a CPU allows, so the repository ships one
produced by this entry point (the generator in half precision, with its config and training log beside it):

    python -m tutorlib.drawing.checkpoints          # trains with the standard config; resumes if interrupted

`standard` loads it (the notebook says so); `smoke` and `full` train their own (cached by config).
Introduced in notebook 03_drawing_gan_units.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tutorlib.cache import cached_model, config_hash
from tutorlib.device import pick_device
from tutorlib.paths import data_dir, repo_root
from tutorlib.seeding import seed_everything
from tutorlib.shipped import read_shipped, save_shipped, ships, write_loss_curve

from .gan import Discriminator, GanConfig, Generator, generate, train_gan

NAME = "drawing-gan"
COMMAND = "python -m tutorlib.drawing.checkpoints"


def shipped_dir() -> Path:
    """data/checkpoints/drawing-gan in the repository. Introduced in notebook 03_drawing_gan_units."""
    return repo_root() / "data" / "checkpoints" / NAME


def _config_from(meta: dict) -> GanConfig:
    return GanConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()})


def save_generator(generator: Generator, log: dict, folder: Path) -> None:
    """The generator as a shipped checkpoint (its GanConfig in config.json). Introduced in notebook 03."""
    save_shipped(generator, asdict(generator.config), log, folder)


def load_generator(folder: Path, device: torch.device) -> tuple[Generator, dict]:
    """A Generator from a saved folder, and its training log. Introduced in notebook 03_drawing_gan_units."""
    meta, weights, log = read_shipped(folder, COMMAND)
    generator = Generator(_config_from(meta))
    generator.load_state_dict(weights)
    return generator.to(device).eval(), log


def _fresh_pair(config: GanConfig) -> tuple[Generator, Discriminator]:
    seed_everything(config.seed)
    return Generator(config), Discriminator(config)


def generator_for(config: GanConfig, device: torch.device, use_shipped: bool) -> tuple[Generator, dict]:
    """The shipped generator when `use_shipped` and its config equals `config`; otherwise one from the cache,
    trained when absent. Introduced in notebook 03_drawing_gan_units."""
    if use_shipped and ships(shipped_dir(), asdict(config)):
        return load_generator(shipped_dir(), device)
    pair: dict = {}

    def make() -> Generator:
        pair["g"], pair["d"] = _fresh_pair(config)
        return pair["g"]

    def train(generator: Generator) -> dict:
        start = time.time()
        history = train_gan(generator, pair["d"], config, device)
        return {"history": history.to_dict(), "seconds": time.time() - start}

    generator, info = cached_model(NAME, asdict(config), make, train)
    return generator.to(device).eval(), info


def write_figures(folder: Path, generator: Generator) -> None:
    """loss_curve.png (from training_log.json) and samples.png (bank 0, ids 0..31) beside a saved GAN.

    Introduced in notebook 03_drawing_gan_units.
    """
    import matplotlib

    matplotlib.use("Agg")
    from tutorlib.plots import image_grid

    write_loss_curve(folder)
    image_grid(generate(generator.cpu(), ids=range(32)), scale=1.0).savefig(folder / "samples.png", dpi=60,
                                                                            bbox_inches="tight")


def main(argv: list[str] | None = None) -> Path:
    """Train the standard GAN (resumable) and write the shipped checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=GanConfig().steps, help="optimizer steps")
    parser.add_argument("--out", type=Path, default=shipped_dir(), help="output folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on the CPU (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    config = replace(GanConfig(), steps=args.steps)
    generator, discriminator = _fresh_pair(config)
    # the resume file ignores the step count, so a finished run can be extended with more --steps
    resume = data_dir() / "cache" / f"{NAME}-training-{config_hash(asdict(replace(config, steps=0)))}.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    # an extended run (more --steps over a finished one) adds the time of the run it extends
    earlier = 0.0
    if resume.exists() and (args.out / "config.json").is_file() and (args.out / "training_log.json").is_file():
        saved = json.loads((args.out / "config.json").read_text())
        if config_hash({**saved, "steps": 0}) == config_hash(asdict(replace(config, steps=0))):
            earlier = json.loads((args.out / "training_log.json").read_text())["seconds"]
    start = time.time()
    history = train_gan(generator, discriminator, config, device, checkpoint=resume)
    log = {"command": f"{COMMAND} --steps {args.steps}", "device": str(device), "seconds": earlier + time.time() - start,
           "history": history.to_dict(), "generator_parameters": sum(p.numel() for p in generator.parameters())}
    save_generator(generator, log, args.out)
    write_figures(args.out, generator)
    print(f"wrote {args.out} ({log['seconds']:.0f} s)")
    return args.out


if __name__ == "__main__":
    main()
