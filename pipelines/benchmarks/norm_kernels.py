"""Fused RMSNorm + residual, forward and backward: ours (seqmamba.ops.triton_norm) against mamba-ssm's rms_norm_fn.

Both run as the LM calls them under bf16 autocast: x bf16, weight and residual fp32, prenorm, residual_in_fp32.
Times are medians of triton's do_bench, L2 flushed between calls, after 200 ms of warmup (with its default
25 ms, the first shape timed up to 1.9x slower than the same kernel later in the process). GB/s counts the
bytes a pass must move at least, so it reads as a fraction of the GPU's memory bandwidth. Also reports how
far the two implementations' outputs and gradients are apart.

    python -m pipelines.benchmarks.norm_kernels --out pipelines/benchmarks/results/norm_kernels_h100.json
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from triton.testing import do_bench

from pipelines.benchmarks.timing import emit, environment, run_case
from seqmamba.ops.triton_norm import rms_norm_fused

SHAPES = ((262144, 128), (262144, 256), (262144, 512))  # (rows, width): one LM step's tokens at three widths
EPS = 1e-5
NormFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def implementations() -> dict[str, NormFn]:
    """(x, weight, residual) -> (y, residual stream) of each implementation, with the LM's flags."""
    from mamba_ssm.ops.triton.layer_norm import rms_norm_fn

    return {
        "seqmamba": lambda x, w, r: rms_norm_fused(x, w, EPS, r, prenorm=True, residual_in_fp32=True),
        "mamba_ssm": lambda x, w, r: rms_norm_fn(x, w, None, residual=r, eps=EPS, prenorm=True,
                                                 residual_in_fp32=True),
    }


def least_bytes(rows: int, width: int) -> tuple[int, int]:
    """Bytes the forward and the backward must read and write (bf16 x, y, dy, dx; fp32 streams; rstd)."""
    forward = rows * width * (2 + 4 + 2 + 4) + rows * 4  # x, residual in; y, residual stream, rstd out
    backward = rows * width * (4 + 2 + 4 + 2 + 4) + rows * 4  # stream, dy, d(stream), rstd in; dx, dresidual out
    return forward, backward


def time_shape(rows: int, width: int, device: torch.device) -> dict:
    """Forward and backward milliseconds and GB/s of each implementation at one shape, and their differences."""
    torch.manual_seed(0)
    x = torch.randn(rows, width, device=device, dtype=torch.bfloat16, requires_grad=True)
    residual = torch.randn(rows, width, device=device, requires_grad=True)
    weight = (1 + 0.1 * torch.randn(width, device=device)).requires_grad_()
    grads_out = (torch.randn_like(x), torch.randn_like(residual))  # dy, d(residual stream)
    forward_bytes, backward_bytes = least_bytes(rows, width)
    result, values = {"rows": rows, "width": width}, {}
    for name, fn in implementations().items():
        forward_ms = do_bench(lambda fn=fn: fn(x, weight, residual), warmup=200, return_mode="median")
        outputs = fn(x, weight, residual)

        def grads(outputs: tuple[torch.Tensor, torch.Tensor] = outputs) -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(outputs, (x, weight, residual), grads_out, retain_graph=True)

        backward_ms = do_bench(grads, warmup=200, return_mode="median")
        values[name] = (*outputs, *grads())
        result[name] = {
            "forward_ms": round(forward_ms, 4),
            "backward_ms": round(backward_ms, 4),
            "forward_gb_s": round(forward_bytes / forward_ms / 1e6),
            "backward_gb_s": round(backward_bytes / backward_ms / 1e6),
        }
    result["speedup"] = {
        pass_: round(result["mamba_ssm"][f"{pass_}_ms"] / result["seqmamba"][f"{pass_}_ms"], 2)
        for pass_ in ("forward", "backward")
    }
    names = ("y", "residual_out", "dx", "dweight", "dresidual")
    result["max_abs_diff"] = {
        name: (ours.float() - theirs.float()).abs().max().item()
        for name, ours, theirs in zip(names, values["seqmamba"], values["mamba_ssm"])
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args()
    device = torch.device("cuda")
    cases = [{"rows": rows, "width": width} | run_case(lambda rows=rows, width=width: time_shape(rows, width, device))
             for rows, width in SHAPES]
    emit({"benchmark": "norm_kernels", "environment": environment(device), "cases": cases}, args.out)


if __name__ == "__main__":
    main()
