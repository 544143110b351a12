"""Training on several processes with PyTorch's own engine: ``torchrun --nproc_per_node=N -m <entry point>``.

torchrun starts N copies of the entry point and sets ``RANK``, ``WORLD_SIZE`` and the rendezvous variables;
``setup`` joins them into one process group (nccl on GPUs, gloo on CPUs). Each rank draws its own shard of the
procedural data from (seed, step, rank) (``shard``), ``DistributedDataParallel`` averages the gradients, so the
ranks together take the step one process would take on the whole batch; rank 0 alone writes checkpoints and logs.
A single process (no torchrun) is the world of size 1, and every helper here is then a no-op.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group that torchrun describes (once); returns (rank, world size), (0, 1) without it.

    On cuda each rank takes the GPU of its ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank(), world_size()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Whether this process writes files and prints progress (rank 0)."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """This rank's device: its own GPU under torchrun on cuda, else ``device``."""
    if device.type == "cuda" and dist.is_initialized():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def shard(total: int) -> range:
    """The rows of a global batch of ``total`` rows that this rank draws: a contiguous block of total / world.

    The global batch must split evenly, so that every rank's mean loss weighs its rows as one process would.
    """
    world = world_size()
    if total % world:
        raise ValueError(f"a global batch of {total} does not split evenly over {world} processes")
    size = total // world
    return range(rank() * size, (rank() + 1) * size)


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when there are several processes (batch norms synchronised), else
    ``model`` itself. Keep a reference to the plain model for saving."""
    if world_size() == 1:
        return model
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device = next(model.parameters()).device
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean of each logged value over the ranks (the loss of the whole batch when shards are equal)."""
    if world_size() == 1 or not values:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[name] for name in names], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.to(local_device(torch.device("cuda")))
    dist.all_reduce(tensor)
    return {name: float(v) / world_size() for name, v in zip(names, tensor.cpu().tolist())}


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def teardown() -> None:
    """Leave the process group together: a rank that destroys it while another is still writing (rank 0 saves the
    last checkpoint) can abort gloo's connections ("terminate called without an active exception")."""
    if dist.is_initialized():
        barrier()
        dist.destroy_process_group()
