"""The inpainter's shipped checkpoint: how it is trained, saved and loaded.

A diffusion model needs thousands of steps, more than the `standard` budget on a CPU allows, so the repository
ships one produced by this entry point (half precision, with its config and training log beside it):

    python -m tutorlib.vismin.checkpoints            # trains with the standard config; resumes if interrupted

`standard` loads it (the notebook says so); `smoke` and `full` train their own.
Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from tutorlib.cache import cached_model, config_hash
from tutorlib.clip import WORLD_MEAN, WORLD_STD, Clip, ClipConfig, WorldTokenizer, build_clip, load
from tutorlib.device import pick_device
from tutorlib.paths import data_dir, repo_root
from tutorlib.shipped import read_shipped, save_shipped, ships, write_loss_curve
from tutorlib.training import History

from .inpainting import InpaintConfig, Inpainter, train_inpainter

NAME = "vismin-inpainter"
COMMAND = "python -m tutorlib.vismin.checkpoints"


def shipped_dir() -> Path:
    """data/checkpoints/vismin-inpainter in the repository. Introduced in notebook 04_vismin_minimal_change."""
    return repo_root() / "data" / "checkpoints" / NAME


def _clip_for(clip_config: ClipConfig, device: torch.device) -> Clip:
    return load("world", config=clip_config, device=device)


def save_inpainter(model: Inpainter, config: InpaintConfig, clip_config: ClipConfig, log: dict, folder: Path) -> None:
    """The inpainter as a shipped checkpoint; config.json holds the inpainter and CLIP configs.

    Introduced in notebook 04_vismin_minimal_change.
    """
    save_shipped(model, {"inpaint": asdict(config), "clip": asdict(clip_config)}, log, folder)


def load_inpainter(folder: Path, device: torch.device) -> tuple[Inpainter, dict]:
    """An Inpainter from a saved folder (its text tower is in the weights). Introduced in notebook 04."""
    meta, weights, log = read_shipped(folder, COMMAND)
    config = InpaintConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["inpaint"].items()})
    clip_config = ClipConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["clip"].items()})
    skeleton = Clip(build_clip(clip_config), WorldTokenizer(clip_config.context_length), clip_config.image_size,
                    WORLD_MEAN, WORLD_STD)
    model = Inpainter(config, skeleton)
    model.load_state_dict(weights)
    return model.to(device).eval(), log


def inpainter_for(config: InpaintConfig, clip_config: ClipConfig, device: torch.device,
                  use_shipped: bool) -> tuple[Inpainter, dict]:
    """The shipped inpainter when `use_shipped` and its configs equal the requested ones; otherwise one from the
    cache, trained when absent. Introduced in notebook 04_vismin_minimal_change."""
    if use_shipped and ships(shipped_dir(), {"inpaint": asdict(config), "clip": asdict(clip_config)}):
        return load_inpainter(shipped_dir(), device)
    clip = _clip_for(clip_config, device)
    return cached_model(NAME, {"inpaint": asdict(config), "clip": asdict(clip_config)}, lambda: Inpainter(config, clip),
                        lambda m: {"history": train_inpainter(m, config, device).to_dict()})


def main(argv: list[str] | None = None) -> Path:
    """Train the standard inpainter (resumable) and write the shipped checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=InpaintConfig().steps, help="optimizer steps")
    parser.add_argument("--out", type=Path, default=shipped_dir(), help="output folder")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    config, clip_config = replace(InpaintConfig(), steps=args.steps), ClipConfig()
    clip = _clip_for(clip_config, device)
    model = Inpainter(config, clip)
    resume = data_dir() / "cache" / f"{NAME}-training-{config_hash(asdict(config))}.pt"
    resume.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    history: History = train_inpainter(model, config, device, checkpoint=resume)
    log = {"command": f"{COMMAND} --steps {args.steps}", "device": str(device), "seconds": time.time() - start,
           "history": history.to_dict(), "unet_parameters": sum(p.numel() for p in model.unet.parameters())}
    save_inpainter(model, config, clip_config, log, args.out)
    write_loss_curve(args.out)
    print(f"wrote {args.out} ({log['seconds']:.0f} s)")
    return args.out


if __name__ == "__main__":
    main()
