"""One training loop for every system: progress bar, loss history, mixed precision, checkpoints, measurement,
and ``fit`` for the common case of one optimizer."""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from tutorlib import distributed, stages
from tutorlib.device import autocast
from tutorlib.paths import atomic_write
from tutorlib.progress import progress, progress_enabled

# How much of the previous running value the progress bar keeps at each step.
RUNNING_DECAY = 0.9


class HasState(Protocol):
    """Anything checkpointable: modules, optimizers, schedulers, GradScalers."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state_dict: dict) -> Any: ...


@dataclass
class History:
    """Logged values per name, each a list of ``(step, value)``.
    """

    values: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    seconds: float = 0.0  # training time of every run that contributed (resumed runs add up)

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


def _save_checkpoint(path: Path, state: Mapping[str, HasState], history: History, step: int,
                     seconds: float) -> None:
    if not distributed.is_main():
        return
    contents = {
        "step": step,
        "seconds": seconds,
        "history": history.to_dict(),
        "state": {name: item.state_dict() for name, item in state.items()},
        "torch_rng": torch.get_rng_state(),
    }
    with atomic_write(path) as temporary:
        torch.save(contents, temporary)


def _load_checkpoint(path: Path, state: Mapping[str, HasState]) -> tuple[History, int, float]:
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a damaged file
        raise ValueError(f"checkpoint {path} cannot be read ({type(error).__name__}: {str(error)[:200]}); "
                         f"delete it to start the training again") from None
    missing = sorted(set(state) - set(contents["state"]))
    if missing:
        raise ValueError(
            f"checkpoint {path} has no state for {missing}; it holds {sorted(contents['state'])}"
        )
    for name, item in state.items():
        item.load_state_dict(contents["state"][name])
    torch.set_rng_state(contents["torch_rng"])
    return History.from_dict(contents["history"]), contents["step"], contents.get("seconds", 0.0)


def _check_positive(**counts: int) -> None:
    for name, count in counts.items():
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"{name} must be a positive integer, got {count!r}")


@contextlib.contextmanager
def _interrupts_at_step_boundaries() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) during a step lets the step finish; the loop then saves and stops at the boundary.

    Yields a function telling whether an interrupt is pending. A second Ctrl-C stops at once, without a save.
    Outside the main thread signals cannot be caught, and an interrupt stops the step where it is (unsaved).
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    pending = []

    def handler(signum, frame):
        if pending:
            raise KeyboardInterrupt
        pending.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(pending)
    finally:
        signal.signal(signal.SIGINT, previous)


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
    With ``amp`` the step runs under bfloat16 autocast on cuda (and on the CPU under ``dry``).

    Checkpoints: with ``checkpoint``, the objects in ``state`` (modules, optimizers, schedulers) are saved every
    ``checkpoint_every`` steps, at the end, and on Ctrl-C once the running step has finished, always at a step
    boundary; a later call with the same checkpoint resumes from the saved step. The resumed run matches an
    uninterrupted one when the batches are a function of the step. ``History.seconds`` adds up the training
    time of every run that contributed. Under torchrun, rank 0 alone saves, and the logged values are means
    over the ranks.

    Measurement: under ``dry`` (or with ``$TUTORLIB_STEP_CAP``) the loop stops after the capped number of steps;
    with ``$TUTORLIB_STAGES`` set it records what a step costs (``tutorlib.stages``).
    """
    _check_positive(n_steps=n_steps, checkpoint_every=checkpoint_every, log_every=log_every)
    if checkpoint is not None and not state:
        raise ValueError("checkpoint needs state: a dict name -> module/optimizer/scheduler to save")
    checkpoint = None if checkpoint is None else Path(checkpoint)
    history, done, seconds = History(), 0, 0.0
    if checkpoint is not None and checkpoint.exists():
        history, done, seconds = _load_checkpoint(checkpoint, state)
        if done > n_steps:
            raise ValueError(f"checkpoint {checkpoint} is at step {done}, past the {n_steps} steps asked for; "
                             f"ask for at least {done} steps or delete it to train again")
    cap = stages.step_cap()
    last = n_steps if cap is None else min(n_steps, done + cap)
    batch_at = _batch_source(batches)
    running: dict[str, float] = {}
    cost, timed = None, []
    bar = progress(range(done, last), total=n_steps, initial=done, desc=desc, disable=not distributed.is_main()
                   or not progress_enabled())
    with _interrupts_at_step_boundaries() as interrupted:
        try:
            for step in bar:
                batch = batch_at(step)
                started = time.perf_counter()
                measure = stages.recording() is not None and cost is None
                with stages.measuring(batch) if measure else contextlib.nullcontext() as measured, \
                        autocast(device) if amp else contextlib.nullcontext():
                    losses = {name: float(value) for name, value in step_fn(batch, step).items()}
                step_seconds = time.perf_counter() - started
                seconds += step_seconds
                cost = measured if measure else cost
                if not measure:
                    timed.append(step_seconds)
                losses = distributed.mean_over_ranks(losses)
                done = step + 1
                for name, value in losses.items():
                    # running = decay * running + (1 - decay) * loss
                    running[name] = RUNNING_DECAY * running.get(name, value) + (1 - RUNNING_DECAY) * value
                if step % log_every == 0 or done == n_steps:
                    history.log(step, **losses)
                    bar.set_postfix({name: f"{value:.4g}" for name, value in running.items()}, refresh=False)
                if checkpoint is not None and (done % checkpoint_every == 0 or interrupted()):
                    _save_checkpoint(checkpoint, state, history, done, seconds)
                if interrupted():
                    raise KeyboardInterrupt
        finally:
            bar.close()
    if checkpoint is not None:
        _save_checkpoint(checkpoint, state, history, done, seconds)
    if cost is not None:
        stages.record(desc, n_steps, cost, sum(timed) / len(timed) if timed else None, device)
    history.seconds = seconds
    return history


def fit(
    model: torch.nn.Module,
    loss_and_logs: Callable[[Any, int], tuple[torch.Tensor, Mapping[str, float]]],
    batches: Iterable | Callable[[int], Any],
    n_steps: int,
    optimizer: torch.optim.Optimizer,
    *,
    device: torch.device | str,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    desc: str = "train",
    checkpoint: Path | None = None,
    log_every: int = 10,
    amp: bool = True,
) -> History:
    """Single-optimizer training: each step runs

        loss, logs = loss_and_logs(batch, step)
        optimizer.zero_grad(); loss.backward(); optimizer.step(); scheduler.step()

    through ``train_loop`` (progress, history, checkpoints with the model, optimizer and scheduler). The model is
    left in eval mode. ``loss_and_logs`` returns the loss tensor and a dict of extra values to log.
    """
    model.to(device).train()

    def step_fn(batch, step):
        loss, logs = loss_and_logs(batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        return {"loss": loss.item(), **logs}

    state = {"model": model, "optimizer": optimizer, **({"scheduler": scheduler} if scheduler else {})}
    history = train_loop(step_fn, batches, n_steps, device=device, desc=desc, checkpoint=checkpoint,
                         state=state if checkpoint is not None else None, log_every=log_every, amp=amp)
    model.eval()
    return history
