"""One training loop for every system: progress bar, loss history, mixed precision, checkpoints."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from tutorlib.device import autocast
from tutorlib.paths import atomic_write
from tutorlib.progress import progress

# How much of the previous running value the progress bar keeps at each step.
RUNNING_DECAY = 0.9


class HasState(Protocol):
    """Anything checkpointable: modules, optimizers, schedulers, GradScalers."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state_dict: dict) -> Any: ...


@dataclass
class History:
    """Logged values per name, each a list of ``(step, value)``.

    Introduced in notebook 00_shapes_world.
    """

    values: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def log(self, step: int, **values: float) -> None:
        """Record ``values`` (e.g. ``loss=0.3``) at ``step``."""
        for name, value in values.items():
            self.values.setdefault(name, []).append((step, float(value)))

    def last(self, name: str) -> float:
        """The most recent value logged under ``name``."""
        return self.series(name)[1][-1]

    def series(self, name: str) -> tuple[list[int], list[float]]:
        """The steps and the values logged under ``name``, as two lists (ready to plot)."""
        if name not in self.values:
            raise KeyError(f"nothing logged under {name!r}; logged names: {sorted(self.values)}")
        steps, values = zip(*self.values[name])
        return list(steps), list(values)

    def to_dict(self) -> dict[str, list[list[float]]]:
        """Plain lists, for JSON and checkpoints."""
        return {name: [[step, value] for step, value in pairs] for name, pairs in self.values.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Iterable[Iterable[float]]]) -> History:
        """The inverse of ``to_dict``."""
        return cls(
            {name: [(int(step), float(value)) for step, value in pairs] for name, pairs in data.items()}
        )


def _batch_source(batches: Iterable | Callable[[int], Any]) -> Callable[[int], Any]:
    """A function step -> batch; an iterable is re-iterated each time it runs out."""
    if callable(batches):
        return batches

    def cycle() -> Iterator:
        while True:
            empty = True
            for batch in batches:
                empty = False
                yield batch
            if empty:
                raise ValueError(
                    "batches yielded nothing on a fresh pass; pass a re-iterable (list, DataLoader) "
                    "or a callable step -> batch"
                )

    iterator = cycle()
    return lambda step: next(iterator)


def _save_checkpoint(path: Path, state: Mapping[str, HasState], history: History, step: int) -> None:
    contents = {
        "step": step,
        "history": history.to_dict(),
        "state": {name: item.state_dict() for name, item in state.items()},
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_write(path) as temporary:
        torch.save(contents, temporary)


def _load_checkpoint(path: Path, state: Mapping[str, HasState]) -> tuple[History, int]:
    contents = torch.load(path, map_location="cpu", weights_only=True)
    missing = sorted(set(state) - set(contents["state"]))
    if missing:
        raise ValueError(
            f"checkpoint {path} has no state for {missing}; it holds {sorted(contents['state'])}"
        )
    for name, item in state.items():
        item.load_state_dict(contents["state"][name])
    torch.set_rng_state(contents["torch_rng"])
    return History.from_dict(contents["history"]), contents["step"]


def _check_positive(**counts: int) -> None:
    for name, count in counts.items():
        if count < 1:
            raise ValueError(f"{name} must be a positive integer, got {count!r}")


def train_loop(
    step_fn: Callable[[Any, int], Mapping[str, float]],
    batches: Iterable | Callable[[int], Any],
    n_steps: int,
    *,
    device: torch.device | str,
    desc: str = "train",
    checkpoint: Path | None = None,
    state: Mapping[str, HasState] | None = None,
    checkpoint_every: int = 200,
    log_every: int = 10,
    amp: bool = True,
) -> History:
    """Run ``step_fn(batch, step)`` for ``n_steps`` steps and return the logged losses.

    ``step_fn`` does forward, backward and the optimizer step and returns a dict of losses.
    ``batches`` is an iterable (re-iterated when it runs out) or a function step -> batch.
    With ``amp`` the step runs under bfloat16 autocast on cuda. With ``checkpoint``, the objects in
    ``state`` (modules, optimizers, schedulers) are saved every ``checkpoint_every`` steps, at the end
    and on Ctrl-C; a later call with the same checkpoint resumes from the saved step. The resumed run
    matches an uninterrupted one when the batches are a function of the step (an iterable starts
    again from its beginning).

    Introduced in notebook 00_shapes_world.
    """
    _check_positive(n_steps=n_steps, checkpoint_every=checkpoint_every, log_every=log_every)
    if checkpoint is not None and not state:
        raise ValueError("checkpoint needs state: a dict name -> module/optimizer/scheduler to save")
    checkpoint = None if checkpoint is None else Path(checkpoint)
    history, done = History(), 0
    if checkpoint is not None and checkpoint.exists():
        history, done = _load_checkpoint(checkpoint, state)
    batch_at = _batch_source(batches)
    running: dict[str, float] = {}
    bar = progress(range(done, n_steps), total=n_steps, initial=done, desc=desc)
    try:
        for step in bar:
            with autocast(device) if amp else contextlib.nullcontext():
                losses = {name: float(value) for name, value in step_fn(batch_at(step), step).items()}
            done = step + 1
            for name, value in losses.items():
                # running = decay * running + (1 - decay) * loss
                running[name] = RUNNING_DECAY * running.get(name, value) + (1 - RUNNING_DECAY) * value
            if step % log_every == 0 or done == n_steps:
                history.log(step, **losses)
                bar.set_postfix({name: f"{value:.4g}" for name, value in running.items()}, refresh=False)
            if checkpoint is not None and done % checkpoint_every == 0:
                _save_checkpoint(checkpoint, state, history, done)
    except KeyboardInterrupt:
        if checkpoint is not None:
            _save_checkpoint(checkpoint, state, history, done)
        raise
    finally:
        bar.close()
    if checkpoint is not None:
        _save_checkpoint(checkpoint, state, history, done)
    return history
