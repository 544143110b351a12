"""A linear regression trained through train_loop, alone or under torchrun; rank 0 writes the loss history.

    python tests/scripts/distributed_regression.py OUT.json STEPS [CHECKPOINT]
    python -m torch.distributed.run --nproc_per_node=2 tests/scripts/distributed_regression.py OUT.json STEPS
"""
import json
import sys
from pathlib import Path

import torch

from tutorlib import distributed
from tutorlib.training import train_loop

GLOBAL_BATCH = 16
TRUE_WEIGHT = torch.tensor([[2.0, -1.0, 0.5]])


def batch_at(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's rows of the global batch of `step`: every row is drawn from (step, row), so the ranks' shards
    together are the batch a single process draws."""
    rows = distributed.shard(GLOBAL_BATCH)
    inputs = torch.stack([torch.randn(3, generator=torch.Generator().manual_seed(step * 1000 + r)) for r in rows])
    return inputs, inputs @ TRUE_WEIGHT.T + 0.1 * inputs[:, :1] ** 2


def main(out: str, steps: int, checkpoint: str | None = None) -> None:
    torch.set_num_threads(1)
    distributed.setup(torch.device("cpu"))
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    trained = distributed.wrap(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step_fn(batch, step):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(trained(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    history = train_loop(step_fn, batch_at, steps, device="cpu", log_every=1, amp=False,
                         checkpoint=Path(checkpoint) if checkpoint else None,
                         state={"model": model, "optimizer": optimizer} if checkpoint else None)
    if distributed.is_main():
        Path(out).write_text(json.dumps({"loss": history.series("loss")[1],
                                         "weight": model.weight.detach().flatten().tolist()}))
    distributed.teardown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
