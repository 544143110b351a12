"""A small MLP trained through train_loop with a checkpoint, slowed down so that a test can interrupt it.

    python tests/scripts/interruptible_training.py CHECKPOINT OUT.safetensors STEPS
"""
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from tutorlib.training import train_loop


def main(checkpoint: str, out: str, steps: int) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step_fn(batch, step):
        inputs = batch
        loss = (model(inputs) - inputs.sum(dim=1, keepdim=True).sin()).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        time.sleep(0.01)  # a window between the backward pass and the update, where signals land
        optimizer.step()
        noise = torch.randn(())  # the global generator: its state must be checkpointed too
        return {"loss": loss.item() + 0 * noise.item()}

    train_loop(step_fn, lambda step: torch.randn(32, 8, generator=torch.Generator().manual_seed(step)), steps,
               device="cpu", checkpoint=Path(checkpoint), state={"model": model, "optimizer": optimizer},
               checkpoint_every=7, amp=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
