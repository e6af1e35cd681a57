"""Training at long L: tokens/s and peak GPU memory with and without activation checkpointing per block.

For each preset and length, the seqmamba LM trains with `activation_checkpointing` off and on in
turn (and, with --impls, mamba-ssm's own model beside them), each step as in `train_throughput`
(bf16 autocast forward, cross-entropy, backward, AdamW). A variant that runs out of memory at some
L is recorded as {"error": "OOM"} and not tried at longer L.

    python -m pipelines.benchmarks.train_memory --out pipelines/benchmarks/results/train_memory_h100.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from pipelines.benchmarks.timing import add_training_step_arguments, emit, environment, run_case
from pipelines.benchmarks.train_throughput import IMPLS, load_config, time_training
from seqmamba.errors import InputError

SWEEP = (  # preset, lengths: the memory goals (7M at 2^20, 40M at 2^17) and the 1.4M model beside them
    f"configs/models/mamba-1.4m.yaml={2**17},{2**18},{2**19},{2**20}",
    f"configs/models/mamba-7m.yaml={2**17},{2**18},{2**19},{2**20}",
    f"configs/models/mamba-40m.yaml={2**17}",
)


def parse_sweep_item(item: str) -> tuple[str, list[int]]:
    """'PRESET=L1,L2,...' -> (preset path, lengths)."""
    preset, _, lengths = item.partition("=")
    try:
        return preset, [int(L) for L in lengths.split(",")]
    except ValueError:
        raise InputError("--sweep", f"{item!r}: expected PRESET=L1,L2,... with whole-number lengths") from None


def variants(impls: list[str]) -> list[tuple[str, bool]]:
    """(impl, activation checkpointing) pairs to time at each point; mamba-ssm's model has no checkpointing."""
    return [(impl, on) for impl in impls for on in ((False, True) if impl == "seqmamba" else (False,))]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", nargs="+", default=list(SWEEP),
                        help="PRESET=L1,L2,... items (YAML files of MambaLMConfig fields and their lengths)")
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=["seqmamba"],
                        help="add mamba_ssm to time mamba-ssm's own model (no checkpointing) beside ours")
    add_training_step_arguments(parser, warmup=1, steps=3)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    cases = []
    for preset, lengths in map(parse_sweep_item, args.sweep):
        base = load_config(preset, None, None)
        failed_at: dict[tuple[str, bool], int] = {}  # variant -> the L it ran out of memory at
        for L in sorted(lengths):
            for impl, checkpointing in variants(args.impls):
                case = {"preset": preset, "impl": impl, "activation_checkpointing": checkpointing, "L": L,
                        "batch": max(1, args.tokens // L)}
                if (impl, checkpointing) in failed_at:
                    case["skipped"] = f"OOM at L = {failed_at[impl, checkpointing]}"
                else:
                    config = dataclasses.replace(base, activation_checkpointing=checkpointing)
                    case |= run_case(lambda: time_training(impl, config, L, args, device))
                    if case.get("error") == "OOM":
                        failed_at[impl, checkpointing] = L
                cases.append(case)
                print(case, file=sys.stderr, flush=True)
    emit({
        "benchmark": "train_memory",
        "environment": environment(device),
        "settings": {name: value for name, value in vars(args).items() if name != "out"}
        | {"autocast": "bfloat16" if device.type == "cuda" else None},
        "cases": cases,
    }, args.out)


if __name__ == "__main__":
    main()
