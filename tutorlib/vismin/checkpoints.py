"""The inpainter's shipped checkpoint: how it is trained, saved and loaded.

A diffusion model needs thousands of steps, more than the `standard` budget on a CPU allows, so the repository
ships one produced by this entry point (half precision, with its config and training log beside it):

    python -m tutorlib.vismin.checkpoints --threads 1    # trains the standard config; resumes if interrupted

`standard` loads it (the notebook says so); `smoke` and `full` train their own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from tutorlib.cache import train_or_load
from tutorlib.clip import WORLD_MEAN, WORLD_STD, Clip, ClipConfig, WorldTokenizer, build_clip, load
from tutorlib.shipped import ShippedModel

from .inpainting import ClipTextTower, InpaintConfig, Inpainter, train_inpainter


@dataclass(frozen=True)
class InpainterSetup:
    """The inpainter's config and the config of the world CLIP whose text tower conditions it."""

    inpaint: InpaintConfig = field(default_factory=InpaintConfig)
    clip: ClipConfig = field(default_factory=ClipConfig)


def build_inpainter(setup: InpainterSetup) -> Inpainter:
    """The untrained inpainter; its text tower is an untrained CLIP's until `train_with_clip` copies the trained
    one in (a loaded checkpoint holds it in its weights)."""
    skeleton = Clip(build_clip(setup.clip), WorldTokenizer(setup.clip.context_length), setup.clip.image_size,
                    WORLD_MEAN, WORLD_STD)
    return Inpainter(setup.inpaint, skeleton)


def train_with_clip(model: Inpainter, setup: InpainterSetup, device: torch.device, checkpoint: Path | None):
    """Copy the trained world CLIP's text tower into `model`, then train the UNet (resumable)."""
    trained = load("world", config=setup.clip, device=device)
    model.text.load_state_dict(ClipTextTower(trained.model).state_dict())
    return train_inpainter(model, setup.inpaint, device, checkpoint=checkpoint)


SHIPPED = ShippedModel("vismin-inpainter", "tutorlib.vismin.checkpoints", InpainterSetup(), build_inpainter,
                       train_with_clip, steps_field="inpaint.steps")


def shipped_dir() -> Path:
    """data/checkpoints/vismin-inpainter in the repository."""
    return SHIPPED.folder


def inpainter_for(config: InpaintConfig, clip_config: ClipConfig, device: torch.device,
                  use_shipped: bool) -> tuple[Inpainter, dict]:
    """The shipped inpainter when `use_shipped` (it must have been made with these configs); otherwise one from
    the cache, trained when absent."""
    setup = InpainterSetup(config, clip_config)
    if use_shipped:
        return SHIPPED.load(setup, device)

    def train(model: Inpainter) -> dict:
        return {"history": train_with_clip(model, setup, device, None).to_dict()}

    return train_or_load("vismin-inpainter", setup, lambda: build_inpainter(setup), train, device)


if __name__ == "__main__":
    SHIPPED.main()
