"""Shipped checkpoints: a model trained by the project's own entry point, saved small beside its record.

A shipped folder holds model.safetensors (floating-point tensors in half precision), config.json (what
rebuilds the model) and training_log.json (the command, device, seconds and loss history), plus a loss curve
drawn from the log. Notebooks whose models a CPU cannot train well within the `standard` budget load one.
Introduced in notebook 03_drawing_gan_units and notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .cache import config_hash
from .paths import atomic_write

FILES = ("model.safetensors", "config.json", "training_log.json")


def save_shipped(model: torch.nn.Module, config: dict, log: dict, folder: Path) -> None:
    """Write model.safetensors (half precision), config.json and training_log.json into `folder`.

    Introduced in notebook 03_drawing_gan_units.
    """
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: (v.to(torch.float16) if v.is_floating_point() else v).detach().contiguous().cpu()
               for k, v in model.state_dict().items()}
    save_file(weights, str(folder / "model.safetensors"))
    for name, contents in (("config.json", config), ("training_log.json", log)):
        with atomic_write(folder / name) as temporary:
            temporary.write_text(json.dumps(contents, indent=1) + "\n")


def read_shipped(folder: Path, command: str) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config, float32 weights, training log) of a shipped folder; a missing file is named, with the command
    that writes it. Introduced in notebook 03_drawing_gan_units."""
    for needed in FILES:
        if not (folder / needed).is_file():
            raise FileNotFoundError(f"{folder / needed}: missing; a shipped checkpoint holds {', '.join(FILES)} "
                                    f"({command} writes them)")
    weights = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / FILES[0])).items()}
    log = json.loads((folder / "training_log.json").read_text())
    return json.loads((folder / "config.json").read_text()), weights, {**log, "from_checkpoint": str(folder)}


def ships(folder: Path, config: dict) -> bool:
    """Whether `folder` holds a shipped checkpoint made with exactly `config`. Introduced in notebook 03."""
    path = folder / "config.json"
    return path.is_file() and config_hash(json.loads(path.read_text())) == config_hash(config)


def write_loss_curve(folder: Path) -> Path:
    """loss_curve.png beside a shipped checkpoint, drawn from its training_log.json. Introduced in notebook 03."""
    import matplotlib

    matplotlib.use("Agg")
    from .plots import plot_losses

    log = json.loads((folder / "training_log.json").read_text())
    figure = plot_losses(log["history"], smooth=10)
    figure.suptitle(log["command"], fontsize=8)
    figure.savefig(folder / "loss_curve.png", dpi=80, bbox_inches="tight")
    return folder / "loss_curve.png"
