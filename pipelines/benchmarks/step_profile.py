"""Where a training step's GPU time goes: torch.profiler over a few steps of the LM, kernels ranked by time.

The same step as `train_throughput.py` (bf16 autocast forward, cross-entropy, backward, AdamW), for
seqmamba's LM or mamba-ssm's, at one L. Reports each kernel's share of the summed kernel time, so a
lever (a faster scan backward, a fused norm) can be sized before it is built.

    python -m pipelines.benchmarks.step_profile --impl seqmamba --length 16384 --out step_profile_h100.json
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from pipelines.benchmarks.timing import emit, environment
from pipelines.benchmarks.train_throughput import IMPLS, load_config, training_step


def kernel_times(impl: str, length: int, tokens: int, steps: int, preset: str | None) -> dict[str, float]:
    """Microseconds per step of every CUDA kernel (by name) over `steps` profiled steps after two warmup steps."""
    device = torch.device("cuda")
    step = training_step(impl, load_config(preset, None, None), length, tokens, 1e-3, device).run
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    times: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            times[event.key] += event.device_time_total / steps
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--impl", choices=IMPLS, nargs="+", default=list(IMPLS))
    parser.add_argument("--length", type=int, default=2**14)
    parser.add_argument("--tokens", type=int, default=2**18)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--preset", help="YAML file of MambaLMConfig fields; default: the 1.4M DNA model")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--out")
    args = parser.parse_args()
    report = {"environment": environment(torch.device("cuda")), "settings": vars(args), "profiles": {}}
    for impl in args.impl:
        times = kernel_times(impl, args.length, args.tokens, args.steps, args.preset)
        total = sum(times.values())
        ranked = sorted(times.items(), key=lambda item: -item[1])[: args.top]
        report["profiles"][impl] = {
            "kernel_ms_per_step": round(total / 1000, 3),
            "top": [{"kernel": name[:120], "ms": round(us / 1000, 3), "share": round(us / total, 4)}
                    for name, us in ranked],
        }
    emit(report, args.out)


if __name__ == "__main__":
    main()
