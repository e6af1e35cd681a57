"""Training tokens/s and peak memory of the Mamba LM across sequence lengths, seqmamba against mamba-ssm.

Every step sees the same number of tokens (batch = tokens // L, at least one sequence): forward,
cross-entropy, backward and an AdamW step, in bf16 autocast on CUDA. `--impl both` times the two
implementations of one config alternately at each length, in one process, so neither gets a warmer GPU.

    python -m pipelines.benchmarks.train_throughput --impl both --out pipelines/benchmarks/results/train_h100.json
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from pipelines.benchmarks.timing import (
    add_training_step_arguments,
    emit,
    environment,
    peak_memory_gib,
    reset_peak_memory,
    run_case,
    time_steps,
)
from seqmamba.errors import InputError
from seqmamba.nn import MambaLMConfig, MambaLMHeadModel

IMPLS = ("seqmamba", "mamba_ssm")
LogitsFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def load_config(preset: str | None, d_model: int | None, n_layer: int | None) -> MambaLMConfig:
    """The model to time: a preset YAML of MambaLMConfig fields (or the defaults), then the size flags on top."""
    fields = {}
    if preset:
        path = Path(preset)
        try:
            fields = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            problem = f"cannot read the preset ({err}); give a YAML file of MambaLMConfig fields"
            raise InputError(path, problem) from None
        known = {field.name for field in dataclasses.fields(MambaLMConfig)}
        if not isinstance(fields, dict) or not set(fields) <= known:
            raise InputError(path, "a preset maps MambaLMConfig fields to values; known fields: "
                                   + ", ".join(sorted(known)))
    sizes = {"d_model": d_model, "n_layer": n_layer}
    return MambaLMConfig(**fields | {name: value for name, value in sizes.items() if value is not None})


def build_model(impl: str, config: MambaLMConfig, device: torch.device) -> tuple[nn.Module, LogitsFn]:
    """The LM of one implementation for one config, and how to get (B, L, V) logits out of it."""
    if impl == "seqmamba":
        return MambaLMHeadModel(config).to(device), lambda model, ids: model(ids)
    if config.complex_ssm:
        raise InputError("--impl", "mamba-ssm has no complex-A model; time it with --impl seqmamba")
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel as ReferenceLMHeadModel

    reference = MambaConfig(
        d_model=config.d_model,
        n_layer=config.n_layer,
        vocab_size=config.vocab_size,
        ssm_cfg={"layer": "Mamba1", "d_state": config.d_state, "d_conv": config.d_conv, "expand": config.expand},
        rms_norm=True,
        residual_in_fp32=config.residual_in_fp32,
        fused_add_norm=True,
        pad_vocab_size_multiple=config.pad_vocab_size_multiple,
        tie_embeddings=config.tie_embeddings,
    )
    return ReferenceLMHeadModel(reference, device=device), lambda model, ids: model(ids).logits


@dataclasses.dataclass
class TrainingStep:
    """One LM training step as a closure, with the model it trains, the losses it appends and its batch size."""

    run: Callable[[], None]
    model: nn.Module
    losses: list[torch.Tensor]
    batch: int


def training_step(impl: str, config: MambaLMConfig, L: int, tokens: int, lr: float,
                  device: torch.device) -> TrainingStep:
    """bf16 autocast forward, cross-entropy, backward and AdamW on random tokens: what the timing and the
    profiling benchmarks run."""
    torch.manual_seed(0)
    model, logits_of = build_model(impl, config, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    batch = max(1, tokens // L)
    ids = torch.randint(config.vocab_size, (batch, L + 1), device=device)
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    losses = []

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = logits_of(model, inputs)  # (B, L, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    return TrainingStep(step, model, losses, batch)


def time_training(impl: str, config: MambaLMConfig, L: int, args: argparse.Namespace, device: torch.device) -> dict:
    """Tokens/s over the timed steps, median step time, peak memory (model and optimizer included)."""
    reset_peak_memory(device)
    step = training_step(impl, config, L, args.tokens, args.lr, device)
    seconds = time_steps(step.run, device, args.warmup, args.steps)
    return {
        "tokens_per_step": step.batch * L,
        "tokens_per_s": round(step.batch * L * args.steps / sum(seconds)),
        "step_ms": round(1000 * statistics.median(seconds), 3),
        "peak_gib": peak_memory_gib(device),
        "parameters": sum(p.numel() for p in step.model.parameters()),
        "last_loss": round(step.losses[-1].item(), 4),  # finite and alike across impls, or something is off
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=[*IMPLS, "both"], default="seqmamba")
    parser.add_argument("--preset", help="YAML file of MambaLMConfig fields; default: MambaLMConfig's (1.4M DNA model)")
    parser.add_argument("--d-model", type=int, help="overrides the preset (default 128)")
    parser.add_argument("--n-layer", type=int, help="overrides the preset (default 12)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[2**k for k in range(10, 21)],
                        help="sequence lengths, written out (default 1024 2048 ... 1048576)")
    add_training_step_arguments(parser, warmup=2, steps=5)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    config = load_config(args.preset, args.d_model, args.n_layer)
    impls = IMPLS if args.impl == "both" else (args.impl,)
    cases = []
    for L in args.lengths:
        for impl in impls:
            case = {"impl": impl, "L": L, "batch": max(1, args.tokens // L)}
            case |= run_case(lambda: time_training(impl, config, L, args, device))
            cases.append(case)
            print(case, file=sys.stderr, flush=True)
    emit({
        "benchmark": "train_throughput",
        "environment": environment(device),
        "settings": {name: value for name, value in vars(args).items() if name != "out"}
        | {"autocast": "bfloat16" if device.type == "cuda" else None, "model": dataclasses.asdict(config)},
        "cases": cases,
    }, args.out)


if __name__ == "__main__":
    main()
