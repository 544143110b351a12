"""What one training step costs: parameters, FLOPs, activation memory, samples, seconds.

``train_loop`` measures the first step of every training it runs when ``$TUTORLIB_STAGES`` names a file, and
appends one JSON line per training to it (``record``). The runner sets it: under the ``dry`` profile the records
hold ``full``'s models and batches, so ``python -m tutorlib.runner --estimate`` can multiply them by ``full``'s
step counts; the efficiency benchmark (``python -m tutorlib.bench``) runs ``standard`` with a step cap
(``$TUTORLIB_STEP_CAP``) and times the steps after the first.

- parameters: the distinct parameters of every module the step calls (trainable ones counted apart);
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over forward and backward (optimizer updates left out);
- activation memory: the bytes of the distinct tensors autograd saves for the backward pass;
- samples: the first dimension of the first tensor in the batch;
- operations: the tensor operations the step dispatches (each is at least one kernel launch on a GPU, which is
  what bounds the speed of a small model there).
"""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from tutorlib.profiles import DRY_STEPS, active_profile

STAGES_VARIABLE = "TUTORLIB_STAGES"
STEP_CAP_VARIABLE = "TUTORLIB_STEP_CAP"


@dataclass
class StepCost:
    """The cost of one training step, as measured."""

    parameters: int = 0
    trainable_parameters: int = 0
    flops: int = 0
    activation_bytes: int = 0
    samples: int = 0
    operations: int = 0


def step_cap() -> int | None:
    """How many steps every training may run: ``DRY_STEPS`` under ``dry``, ``$TUTORLIB_STEP_CAP`` when set."""
    if active_profile() == "dry":
        return DRY_STEPS
    cap = os.environ.get(STEP_CAP_VARIABLE)
    if not cap:
        return None
    if not cap.isdigit() or int(cap) < 1:
        raise ValueError(f"{STEP_CAP_VARIABLE} must be a positive whole number, got {cap!r}")
    return int(cap)


def recording() -> Path | None:
    """The file that stage records go to, or None when nothing is recorded."""
    path = os.environ.get(STAGES_VARIABLE)
    return Path(path) if path else None


def samples_in(batch: Any) -> int:
    """The first dimension of the first tensor found in ``batch`` (tensors, tuples, lists, dicts); 0 if none."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (list, tuple)) else ()
    for item in items:
        found = samples_in(item)
        if found:
            return found
    return 0


class _OperationCounter(TorchDispatchMode):
    """Counts the tensor operations dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


class _TotalOnly:
    """Stands in for FlopCounterMode's per-module tracker: only the total is recorded, and the tracker's autograd
    hooks fail inside a step that calls ``torch.autograd.grad`` (the R1 penalty of notebook 01)."""

    parents = ("Global",)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def measuring(batch: Any) -> Iterator[StepCost]:
    """Measure the step run inside the ``with`` block; the StepCost is filled in when the block ends."""
    cost = StepCost(samples=samples_in(batch))
    parameters: dict[int, torch.nn.Parameter] = {}
    saved: dict[int, int] = {}

    def see_module(module: torch.nn.Module, _inputs: Any) -> None:
        for parameter in module.parameters(recurse=False):
            parameters[id(parameter)] = parameter

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.nn.Parameter):
            storage = tensor.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    counter, operations = FlopCounterMode(display=False), _OperationCounter()
    counter.mod_tracker = _TotalOnly()
    hook = torch.nn.modules.module.register_module_forward_pre_hook(see_module)
    try:
        with counter, operations, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            yield cost
    finally:
        hook.remove()
    cost.parameters = sum(p.numel() for p in parameters.values())
    cost.trainable_parameters = sum(p.numel() for p in parameters.values() if p.requires_grad)
    cost.flops = int(counter.get_total_flops())
    cost.activation_bytes = sum(saved.values())
    cost.operations = operations.count


def record(desc: str, planned_steps: int, cost: StepCost, seconds_per_step: float | None, device: Any) -> None:
    """Append one training's record to the ``$TUTORLIB_STAGES`` file (nothing when it is not set)."""
    path = recording()
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"stage": desc, "profile": active_profile(), "planned_steps": planned_steps, **asdict(cost),
            "seconds_per_step": seconds_per_step, "device": str(device)}
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n")


def read_records(path: Path) -> list[dict]:
    """The records of a ``$TUTORLIB_STAGES`` file (an empty list when it does not exist)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]

