"""RMSNorm with an optional fused residual add: Triton kernels on GPU (ours, mamba-ssm's when wider), else PyTorch."""

from __future__ import annotations

import torch

from seqmamba.ops.backend import KERNELS, use_kernels


def rms_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-5,
    residual: torch.Tensor | None = None,
    prenorm: bool = False,
    residual_in_fp32: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Norm of (x + residual); with prenorm also returns the new residual stream, as mamba-ssm's Block."""
    if use_kernels(x, weight):
        if x.shape[-1] <= KERNELS.rms_norm_fused_max_width:  # ours: many rows per program
            return KERNELS.rms_norm_fused(x, weight, eps, residual, prenorm, residual_in_fp32)
        return KERNELS.rms_norm_fn(x, weight, None, residual=residual, eps=eps, prenorm=prenorm,
                                   residual_in_fp32=residual_in_fp32)
    summed = x if residual is None else x + residual
    if residual_in_fp32:
        summed = summed.float()
    s = summed.float()
    y = (s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + eps) * weight.float()).to(x.dtype)
    return (y, summed) if prenorm else y
