"""Selective scan forward+backward speed: mamba-ssm's CUDA kernel against the portable PyTorch scan.

Both backends run on the same tensors (on the GPU, or the portable one alone on CPU), for real and
complex A, with the arguments the Mamba mixer passes (D, z gate, dt bias, softplus). Also reports
how far the two backends' outputs and gradients are apart at the smallest length. With --vs-loop,
the CPU path (numba forward, PyTorch forward and backward) against a per-step PyTorch loop shaped
like mamba-ssm's `selective_scan_ref`, timed in turns in one process, forward and forward+backward.

    python -m pipelines.benchmarks.scan_throughput --out pipelines/benchmarks/results/scan_h100.json
    python -m pipelines.benchmarks.scan_throughput --device cpu --vs-loop --lengths 1024 --batches 1 \
        --dtypes float32 --out pipelines/benchmarks/results/scan_throughput_cpu.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

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
from seqmamba.ops.backend import NUMBA_SCAN
from seqmamba.ops.portable_scan import unpack_bc

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
ARGUMENTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")  # selective_scan's order
LOOP_SHAPES = ((2, 64, 16, 4096), (4, 256, 16, 2048))  # (batch, d, N, L): the CPU goals


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


def selective_scan_loop(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                        D: torch.Tensor, z: torch.Tensor, delta_bias: torch.Tensor) -> torch.Tensor:
    """mamba-ssm's `selective_scan_ref` (softplus on): exp(delta A) and delta B u for all steps, then a loop over L."""
    u, delta = u.float(), F.softplus(delta.float() + delta_bias[:, None].float())
    B, C = unpack_bc(B, A)[:, 0], unpack_bc(C, A)[:, 0]  # (b, n, L), complex where A is
    delta_A = torch.exp(torch.einsum("bdl,dn->bdln", delta.to(A.dtype), A))
    delta_B_u = torch.einsum("bdl,bnl->bdln", (delta * u).to(B.dtype), B)
    state, ys = u.new_zeros(u.shape[0], u.shape[1], A.shape[1], dtype=A.dtype), []
    for t in range(u.shape[2]):
        state = delta_A[:, :, t] * state + delta_B_u[:, :, t]
        y = torch.einsum("bdn,bn->bd", state, C[:, :, t])
        ys.append(2 * y.real if y.is_complex() else y)
    return (torch.stack(ys, dim=2) + u * D[:, None]) * F.silu(z.float())


def median_ms_in_turns(contenders: dict[str, Callable[[], object]], reps: int, warmup: int) -> dict[str, float]:
    """Median ms of each contender, run one after another `reps` times, so a busy machine slows all alike."""
    cpu = torch.device("cpu")
    for run in contenders.values():
        time_steps(run, cpu, warmup, 0)
    seconds = {name: [] for name in contenders}
    for _ in range(reps):
        for name, run in contenders.items():
            seconds[name] += time_steps(run, cpu, 0, 1)
    return {name: 1000 * statistics.median(s) for name, s in seconds.items()}


def compare_with_loop(batch: int, d: int, n: int, L: int, complex_a: bool, args: argparse.Namespace) -> dict:
    """Median ms of the loop and of our CPU paths, forward and forward+backward, and the loop's time over ours."""
    x = scan_inputs(batch, d, n, L, complex_a, torch.float32, torch.device("cpu"))
    leaves, grad_out = [x[name] for name in ARGUMENTS], torch.randn_like(x["u"])

    def forward(backend: str) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            with torch.no_grad(), ops.force_backend("pytorch" if backend == "loop" else backend):
                if backend == "loop":
                    return selective_scan_loop(*leaves)
                return ops.selective_scan(*leaves, delta_softplus=True)
        return run

    forwards = {"loop": forward("loop"), "pytorch": forward("pytorch")}
    if NUMBA_SCAN is not None:
        forwards["numba"] = forward("portable")  # the portable path as `auto` runs it on CPU without grad
    backwards = {"loop": lambda: torch.autograd.grad(selective_scan_loop(*leaves), leaves, grad_out),
                 "portable": lambda: forward_backward(x, grad_out)}
    reference = forwards["loop"]()
    load_before = os.getloadavg()[0]
    ms = {"forward": median_ms_in_turns(forwards, args.reps, args.warmup),
          # the loop's backward adds a full (B, D, L, N) gradient per step: minutes, so fewer turns
          "forward_backward": median_ms_in_turns(backwards, args.loop_backward_reps, 0)}
    return {
        "ms": {f"{mode}_{name}": round(value, 3) for mode, times in ms.items() for name, value in times.items()},
        "loop_over_ours": {f"{mode}_{name}": round(times["loop"] / value, 2)
                           for mode, times in ms.items() for name, value in times.items() if name != "loop"},
        "max_abs_diff_vs_loop": {f"forward_{name}": (run() - reference).abs().max().item()
                                 for name, run in forwards.items() if name != "loop"},
        "load_average": [load_before, os.getloadavg()[0]],  # other processes' share of the cores, before and after
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
    parser.add_argument("--vs-loop", action="store_true",
                        help="also time the CPU path against a selective_scan_ref-shaped loop at the issue's shapes")
    parser.add_argument("--loop-backward-reps", type=int, default=1,
                        help="turns of the (slow) forward+backward comparison with the loop")
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
    vs_loop = []
    for batch, d, n, L in LOOP_SHAPES if args.vs_loop else ():
        for complex_a in (False, True):
            case = {"batch": batch, "d": d, "N": n, "L": L, "complex": complex_a}
            case |= run_case(lambda: compare_with_loop(batch, d, n, L, complex_a, args))
            vs_loop.append(case)
            print(case, file=sys.stderr, flush=True)
    emit({
        "benchmark": "scan_throughput",
        "environment": environment(device),
        "settings": {name: value for name, value in vars(args).items() if name != "out"}
        | {"backends": backends, "numba": NUMBA_SCAN is not None, "cpu_threads": torch.get_num_threads()},
        "cases": cases,
        "agreement": agreement,
        "vs_loop": vs_loop,
    }, args.out)


if __name__ == "__main__":
    main()
