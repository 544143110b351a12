"""Shipped checkpoints: base models trained by the project's own entry points, saved small, loaded by ``standard``.

The papers apply their methods to pretrained models; a CPU cannot pretrain those within a notebook's budget, so
the repository ships them. A shipped folder ``data/checkpoints/<name>/`` holds:

- ``model.safetensors``: the weights, floating-point tensors in half precision;
- ``config.json``: the config that rebuilds and retrains the model;
- ``training_log.json``: the command, device, training seconds and loss history;
- ``loss_curve.png`` (and any figure the model adds);
- ``checksums.json``: the sha256 of every other file, checked on every load.

One entry point serves every shipped model (``ShippedModel.main``): ``python -m <module> [--steps N]`` trains
the standard config (resumable: an interrupted run continues where it stopped), under torchrun too, and writes
the whole folder at once (a temporary folder moved into place). Loading verifies the checksums and the config:
a missing, damaged or different checkpoint is an error naming the file and the command that rebuilds it, never a
silent retrain.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from tutorlib import distributed
from tutorlib.cache import canonical_json, config_hash, file_checksums, verify_checksums
from tutorlib.device import pick_device, set_threads
from tutorlib.paths import data_dir, repo_root
from tutorlib.training import History

MODEL_FILE, CONFIG_FILE, LOG_FILE, CHECKSUMS_FILE = (
    "model.safetensors", "config.json", "training_log.json", "checksums.json")


class ShippedError(RuntimeError):
    """A shipped checkpoint that is missing, damaged or made with another config."""


def half_precision(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with floating-point tensors in float16 (integer buffers unchanged), on the CPU."""
    return {k: (v.to(torch.float16) if v.is_floating_point() else v).detach().contiguous().cpu()
            for k, v in model.state_dict().items()}


def write_loss_curve(folder: Path, log: dict) -> Path:
    """``loss_curve.png`` in ``folder``, drawn from a training log (its history and command)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import plot_losses

    figure = plot_losses(log["history"], smooth=10)
    figure.suptitle(log["command"], fontsize=8)
    figure.savefig(folder / "loss_curve.png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return folder / "loss_curve.png"


def save_shipped(model: torch.nn.Module, config: Any, log: dict, folder: Path,
                 figures: Callable[[Path], None] | None = None) -> Path:
    """Write a whole shipped folder at once: weights (half precision), config, log, loss curve, ``figures(tmp)``
    and checksums go to a temporary sibling, which then replaces ``folder``."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temporary.mkdir()
    try:
        save_file(half_precision(model), str(temporary / MODEL_FILE))
        (temporary / CONFIG_FILE).write_text(canonical_json(config, indent=1) + "\n")
        (temporary / LOG_FILE).write_text(json.dumps(log, indent=1) + "\n")
        write_loss_curve(temporary, log)
        if figures is not None:
            figures(temporary)
        checksums = file_checksums(temporary, skip=(CHECKSUMS_FILE,))
        (temporary / CHECKSUMS_FILE).write_text(json.dumps(checksums, indent=1) + "\n")
        _swap_in(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def _swap_in(temporary: Path, folder: Path) -> None:
    """Move ``temporary`` to ``folder``: the old folder is moved aside first and deleted after."""
    old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    if folder.exists():
        os.replace(folder, old)
    os.replace(temporary, folder)
    shutil.rmtree(old, ignore_errors=True)


def read_shipped(folder: Path, command: str) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(config as JSON, float32 weights, training log) of a shipped folder, after checking every file against
    ``checksums.json``; any problem is a ShippedError naming the file and ``command``, which rebuilds it."""
    folder = Path(folder)
    rebuild = f"rebuild it with `{command}`, or restore it with `git checkout -- {folder}`"
    checksums = folder / CHECKSUMS_FILE
    if not checksums.is_file():
        raise ShippedError(f"{checksums}: missing; a shipped checkpoint lists its files' checksums there; {rebuild}")
    try:
        expected = json.loads(checksums.read_text())
    except ValueError as error:
        raise ShippedError(f"{checksums}: not valid JSON ({error}); {rebuild}") from None
    for needed in (MODEL_FILE, CONFIG_FILE, LOG_FILE):
        if needed not in expected:
            raise ShippedError(f"{checksums}: lists no checksum for {needed}; {rebuild}")
    problem = verify_checksums(folder, expected)
    if problem:
        raise ShippedError(f"{problem}; {rebuild}")
    weights = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(folder / MODEL_FILE)).items()}
    log = json.loads((folder / LOG_FILE).read_text())
    return json.loads((folder / CONFIG_FILE).read_text()), weights, {**log, "from_checkpoint": str(folder)}


def _differences(shipped: dict, asked: dict, where: str = "") -> list[str]:
    keys = sorted(set(shipped) | set(asked))
    found = []
    for key in keys:
        a, b = shipped.get(key, "<absent>"), asked.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            found += _differences(a, b, f"{where}{key}.")
        elif a != b:
            found.append(f"{where}{key}: shipped {a!r}, asked {b!r}")
    return found


def _get_path(config: Any, path: str) -> Any:
    for name in path.split("."):
        config = getattr(config, name)
    return config


def _replace_path(config: Any, path: str, value: Any) -> Any:
    """``config`` with the field at the dotted ``path`` set to ``value`` (nested dataclasses are replaced)."""
    head, _, rest = path.partition(".")
    if rest:
        value = _replace_path(getattr(config, head), rest, value)
    return dataclasses.replace(config, **{head: value})


@dataclass(frozen=True)
class ShippedModel:
    """A base model the repository ships: its folder, its entry point, and how it is built and trained.

    ``train(model, config, device, checkpoint)`` trains in place through ``train_loop`` (resumable with the
    ``checkpoint`` path, None for none) and returns the History; ``figures(folder, model)`` may draw more figures.
    """

    name: str
    module: str
    config: Any
    build: Callable[[Any], torch.nn.Module]
    train: Callable[[torch.nn.Module, Any, torch.device, Path | None], History]
    figures: Callable[[Path, torch.nn.Module], None] | None = None
    steps_field: str = "steps"  # the config field of the step count; a dotted path for a nested config

    @property
    def folder(self) -> Path:
        return repo_root() / "data" / "checkpoints" / self.name

    @property
    def command(self) -> str:
        return f"python -m {self.module}"

    def load(self, config: Any, device: torch.device | str) -> tuple[torch.nn.Module, dict]:
        """The shipped model, made with exactly ``config``, in eval mode on ``device``, and its training log."""
        stored, weights, log = read_shipped(self.folder, self.command)
        asked = json.loads(canonical_json(config))
        if config_hash(stored) != config_hash(asked):
            differences = "; ".join(_differences(stored, asked)[:5])
            raise ShippedError(
                f"{self.folder / CONFIG_FILE} was made with another config than the one asked for ({differences}); "
                f"rebuild it with `{self.command}` or run the `full` profile, which trains its own")
        model = self.build(config)
        model.load_state_dict(weights)
        return model.to(device).eval(), log

    def main(self, argv: list[str] | None = None) -> Path:
        """The entry point: train the standard config (resumable) and write the shipped folder."""
        parser = argparse.ArgumentParser(prog=self.command,
                                         description=f"Train and write the shipped checkpoint {self.name}.")
        steps = _get_path(self.config, self.steps_field)
        parser.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
        parser.add_argument("--out", type=Path, default=self.folder, help="output folder (default: the shipped one)")
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
        parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: every core)")
        args = parser.parse_args(argv)
        if args.steps < 1:
            parser.error(f"--steps must be positive, got {args.steps}")
        device = pick_device(args.device)
        distributed.setup(device)
        device = distributed.local_device(device)
        if device.type == "cpu":
            set_threads(args.threads)
        config = _replace_path(self.config, self.steps_field, args.steps)
        # The resume file leaves the step count out of its name, so a finished run can be extended with more steps.
        resume_key = config_hash(_replace_path(self.config, self.steps_field, 0))
        resume = data_dir() / "cache" / f"{self.name}-training-{resume_key}.pt"
        model = self.build(config)
        history = self.train(model, config, device, resume)
        if distributed.is_main():
            log = {"command": f"{self.command} --steps {args.steps}", "device": str(device),
                   "processes": distributed.world_size(), "seconds": history.seconds, "history": history.to_dict(),
                   "parameters": sum(p.numel() for p in model.parameters())}
            figures = None if self.figures is None else (lambda folder: self.figures(folder, model))
            save_shipped(model, config, log, args.out, figures)
            print(f"wrote {args.out} ({history.seconds:.0f} s of training)")
        distributed.barrier()
        distributed.teardown()
        return args.out
