"""The cost of the ``full`` profile on one H100-class GPU, worked out from a ``dry`` run on any machine.

Under ``dry`` every training runs ``full``'s models and batches for two steps and records, per stage, the FLOPs,
the tensor operations, the parameters and the activation memory of one step (``tutorlib.stages``). The estimate
multiplies them by ``full``'s step counts:

    seconds = steps · (FLOPs / (PEAK · UTILISATION) + operations · SECONDS_PER_OPERATION)
    memory  = parameters · 4 B + trainable parameters · (4 B gradient + 8 B Adam state) + activations

The second term is what bounds small models on a GPU: each tensor operation costs a kernel launch and Python's
dispatch however little it computes. Training stages only: rendering, evaluation and decoding are not in the
records (``make gpu-check`` measures the whole notebooks when a GPU is at hand).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

# Dense bfloat16 peak of an NVIDIA H100 SXM, FLOP/s.
PEAK_FLOPS = 989e12
# Share of that peak assumed for the matrix products of these small models (widths 64-512).
UTILISATION = 0.3
# Eager PyTorch on a GPU: kernel launch plus Python dispatch per tensor operation, seconds.
SECONDS_PER_OPERATION = 15e-6
# Kernel start, imports and CUDA context per notebook, seconds.
NOTEBOOK_OVERHEAD = 20.0
# The goal: every notebook under `full` within one lent GPU window.
GOAL_SECONDS = 12 * 60


def stage_seconds(record: Mapping) -> float:
    """Estimated seconds of one training stage under ``full`` (see the module docstring)."""
    per_step = record["flops"] / (PEAK_FLOPS * UTILISATION) + record["operations"] * SECONDS_PER_OPERATION
    return record["planned_steps"] * per_step


def stage_memory(record: Mapping) -> int:
    """Estimated peak bytes of one training stage: weights, gradients, Adam state, activations."""
    return 4 * record["parameters"] + 12 * record["trainable_parameters"] + record["activation_bytes"]


def estimate(records: Mapping[str, Sequence[Mapping]]) -> dict:
    """Per notebook (name -> its dry records): the stages' seconds and memory, the notebook's total, and the sum."""
    notebooks = {}
    for name, stages in records.items():
        rows = [{"stage": r["stage"], "steps": r["planned_steps"], "parameters": r["parameters"],
                 "gflops_per_step": r["flops"] / 1e9, "operations": r["operations"],
                 "seconds": stage_seconds(r), "memory_gib": stage_memory(r) / 2**30} for r in stages]
        total = NOTEBOOK_OVERHEAD + sum(row["seconds"] for row in rows)
        notebooks[name] = {"stages": rows, "seconds": total,
                           "peak_memory_gib": max((row["memory_gib"] for row in rows), default=0.0)}
    total = sum(n["seconds"] for n in notebooks.values())
    return {"notebooks": notebooks, "seconds": total, "goal_seconds": GOAL_SECONDS, "within_goal": total <= GOAL_SECONDS,
            "assumptions": {"peak_flops": PEAK_FLOPS, "utilisation": UTILISATION,
                            "seconds_per_operation": SECONDS_PER_OPERATION, "notebook_overhead": NOTEBOOK_OVERHEAD}}


def estimate_markdown(result: Mapping) -> str:
    """The estimate as markdown: one row per stage, a total per notebook, the sum against the goal."""
    lines = [f"Estimated `full` on one H100-class GPU: {PEAK_FLOPS / 1e12:.0f} TFLOP/s bf16 at {UTILISATION:.0%} "
             f"utilisation, {SECONDS_PER_OPERATION * 1e6:.0f} µs per tensor operation, {NOTEBOOK_OVERHEAD:.0f} s "
             "per notebook; training stages only.", "",
             "| notebook | stage | steps | parameters | GFLOP/step | ops/step | estimated s | memory GiB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, notebook in result["notebooks"].items():
        for row in notebook["stages"]:
            lines.append(f"| {name} | {row['stage']} | {row['steps']} | {row['parameters'] / 1e6:.2f}M | "
                         f"{row['gflops_per_step']:.2f} | {row['operations']} | {row['seconds']:.1f} | "
                         f"{row['memory_gib']:.2f} |")
        lines.append(f"| **{name}** | total | | | | | **{notebook['seconds']:.0f}** | "
                     f"{notebook['peak_memory_gib']:.2f} |")
    verdict = "within" if result["within_goal"] else "OVER"
    lines += ["", f"All notebooks: **{result['seconds'] / 60:.1f} min**, {verdict} the goal of "
                  f"{result['goal_seconds'] / 60:.0f} min."]
    return "\n".join(lines) + "\n"
