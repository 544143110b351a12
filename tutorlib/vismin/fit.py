"""One training recipe for the pipeline's small models (grounder, VQA): AdamW with a cosine-decayed rate.

Introduced in notebook 04_vismin_minimal_change.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from tutorlib.training import History, train_loop


def fit(model: nn.Module, loss_and_logs: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
        batches: Callable[[int], Any], steps: int, lr: float, device: torch.device, desc: str) -> History:
    """Train `model` for `steps` steps on batches(step), minimising loss_and_logs(batch)[0]; returns the logged
    values (the loss and the extra logs). Introduced in notebook 04_vismin_minimal_change."""
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)

    def step_fn(batch, step):
        loss, logs = loss_and_logs(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        return {"loss": loss.item(), **logs}

    history = train_loop(step_fn, batches, steps, device=device, desc=desc, log_every=10)
    model.eval()
    return history
