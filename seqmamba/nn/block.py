"""Pre-norm residual block around a mixer, in mamba-ssm's "add -> norm -> mixer" order.

Carrying the residual stream separately lets the add and the norm fuse into one kernel on GPU.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from seqmamba.nn.mamba import MixerCache
from seqmamba.nn.norm import RMSNorm


class Block(nn.Module):
    """hidden, residual -> mixer(norm(hidden + residual)), hidden + residual."""

    def __init__(self, dim: int, mixer: nn.Module, residual_in_fp32: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.mixer = mixer
        self.norm = RMSNorm(dim, eps)
        self.residual_in_fp32 = residual_in_fp32

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor | None = None,
                cache: MixerCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states, residual = self.norm(hidden_states, residual, prenorm=True,
                                            residual_in_fp32=self.residual_in_fp32)
        return self.mixer(hidden_states, cache), residual

    def step(self, hidden_states: torch.Tensor, residual: torch.Tensor | None,
             cache: MixerCache) -> tuple[torch.Tensor, torch.Tensor]:
        """One token: (B, dim) in and out."""
        hidden_states, residual = self.norm(hidden_states, residual, prenorm=True,
                                            residual_in_fp32=self.residual_in_fp32)
        return self.mixer.step(hidden_states, cache), residual
