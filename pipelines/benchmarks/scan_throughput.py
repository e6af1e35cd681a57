"""Selective scan forward+backward speed: mamba-ssm's CUDA kernel against the portable PyTorch scan.

Both backends run on the same tensors (on the GPU, or the portable one alone on CPU), for real and
complex A, with the arguments the Mamba mixer passes (D, z gate, dt bias, softplus). Also reports
how far the two backends' outputs and gradients are apart at the smallest length.

    python -m pipelines.benchmarks.scan_throughput --out pipelines/benchmarks/results/scan_h100.json
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from pipelines.benchmarks.timing import (
    default_device,
    emit,
    environment,
    peak_memory_gib,
    reset_peak_memory,
    run_case,
    time_steps,
)
from seqmamba import ops
from seqmamba.nn import ComplexMamba, Mamba

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
ARGUMENTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")  # selective_scan's order


def scan_inputs(batch: int, d: int, n: int, L: int, complex_a: bool, dtype: torch.dtype,
                device: torch.device) -> dict[str, torch.Tensor]:
    """Seeded leaves for one scan: u, delta, B, C, z in `dtype`; A, D, dt bias float32 as a fresh mixer has them."""
    torch.manual_seed(0)
    mixer = (ComplexMamba if complex_a else Mamba)(d_model=d, d_state=n, expand=1)
    steps = 2 * L if complex_a else L  # complex B, C: (re, im) of every step side by side
    x = {
        "u": torch.randn(batch, d, L, device=device),
        "delta": 0.1 * torch.randn(batch, d, L, device=device),  # before bias and softplus
        "B": torch.randn(batch, n, steps, device=device),
        "C": torch.randn(batch, n, steps, device=device),
        "z": torch.randn(batch, d, L, device=device),
    }
    x = {name: t.to(dtype) for name, t in x.items()}
    x |= {"A": mixer.A(), "D": mixer.D, "delta_bias": mixer.dt_proj.bias}
    return {name: t.detach().to(device).requires_grad_() for name, t in x.items()}


def forward_backward(x: dict[str, torch.Tensor],
                     grad_out: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One scan as the mixer calls it, and the gradients of all its inputs."""
    leaves = [x[name] for name in ARGUMENTS]
    y = ops.selective_scan(*leaves, delta_softplus=True)
    return y, torch.autograd.grad(y, leaves, grad_out)


def time_scan(backend: str, complex_a: bool, dtype: torch.dtype, batch: int, L: int,
              args: argparse.Namespace, device: torch.device) -> dict:
    """Median ms of fwd+bwd on one backend, elements (batch*d*L) per second, and peak memory."""
    x = scan_inputs(batch, args.d_inner, args.d_state, L, complex_a, dtype, device)
    grad_out = torch.randn_like(x["u"])
    reset_peak_memory(device)
    with ops.force_backend(backend):
        seconds = time_steps(lambda: forward_backward(x, grad_out), device, args.warmup, args.reps)
    median = statistics.median(seconds)
    return {
        "ms": round(1000 * median, 3),
        "elements_per_s": round(batch * args.d_inner * L / median),
        "peak_gib": peak_memory_gib(device),
    }


def compare_backends(complex_a: bool, dtype: torch.dtype, batch: int, L: int,
                     args: argparse.Namespace, device: torch.device) -> dict:
    """Max |kernel - portable| of the output and of each input's gradient, on identical inputs."""
    x = scan_inputs(batch, args.d_inner, args.d_state, L, complex_a, dtype, device)
    grad_out = torch.randn_like(x["u"])
    with ops.force_backend("cuda"):
        y_kernel, grads_kernel = forward_backward(x, grad_out)
    with ops.force_backend("portable"):
        y_portable, grads_portable = forward_backward(x, grad_out)
    return {
        "max_abs_out": y_portable.float().abs().max().item(),
        "max_abs_diff_out": (y_kernel.float() - y_portable.float()).abs().max().item(),
        "max_abs_diff_grad": {
            name: (a.to(b.dtype) - b).abs().max().item()
            for name, a, b in zip(ARGUMENTS, grads_kernel, grads_portable)
        },
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=default_device(), help="cuda (kernel and portable) or cpu (portable)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[2**10, 2**12, 2**14, 2**16])
    parser.add_argument("--portable-max-len", type=int, default=2**14, help="longest L timed on the slow portable scan")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES),
                        help="dtype of u, delta, B, C, z (A, D, dt bias stay float32)")
    parser.add_argument("--d-inner", type=int, default=256, help="channels; 256 is the 1.4M DNA model's")
    parser.add_argument("--d-state", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", help="also write the JSON report here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    backends = ["cuda", "portable"] if device.type == "cuda" and ops.kernels_available() else ["portable"]
    cases, agreement = [], []
    for complex_a in (False, True):
        for dtype_name in args.dtypes:
            dtype = DTYPES[dtype_name]
            if len(backends) == 2:
                point = {"complex": complex_a, "dtype": dtype_name, "L": min(args.lengths), "batch": args.batches[0]}
                agreement.append(point | run_case(
                    lambda: compare_backends(complex_a, dtype, point["batch"], point["L"], args, device)))
            for batch in args.batches:
                for L in args.lengths:
                    for backend in backends:
                        if backend == "portable" and L > args.portable_max_len:
                            continue
                        case = {"backend": backend, "complex": complex_a, "dtype": dtype_name, "L": L, "batch": batch}
                        case |= run_case(lambda: time_scan(backend, complex_a, dtype, batch, L, args, device))
                        cases.append(case)
                        print(case, file=sys.stderr, flush=True)
    emit({
        "benchmark": "scan_throughput",
        "environment": environment(device),
        "settings": {name: value for name, value in vars(args).items() if name != "out"} | {"backends": backends},
        "cases": cases,
        "agreement": agreement,
    }, args.out)


if __name__ == "__main__":
    main()
