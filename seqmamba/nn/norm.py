"""RMSNorm whose weight is named as mamba-ssm's, computed by `seqmamba.ops.rms_norm`."""

from __future__ import annotations

import torch
import torch.nn as nn

from seqmamba import ops


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale; optionally adds the residual first (fused on GPU)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None, prenorm: bool = False,
                residual_in_fp32: bool = False):
        return ops.rms_norm(x, self.weight, self.eps, residual, prenorm, residual_in_fp32)
