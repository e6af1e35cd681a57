"""Pre-norm residual block around a mixer, in mamba-ssm's "add -> norm -> mixer" order.

Carrying the residual stream separately lets the add and the norm fuse into one kernel on GPU. For
decoding, a Mamba block's whole step (add, norm, mixer, residual) is one kernel where `ops` says the
kernels apply (`decode_step`, `residual_step`); `step` stays the op-by-op reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from seqmamba import ops
from seqmamba.nn.mamba import Mamba, MixerCache
from seqmamba.nn.norm import RMSNorm


class Block(nn.Module):
    """hidden, residual -> mixer(norm(hidden + residual)), hidden + residual."""

    def __init__(self, dim: int, mixer: nn.Module, residual_in_fp32: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.mixer = mixer
        self.norm = RMSNorm(dim, eps)
        self.residual_in_fp32 = residual_in_fp32

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor | None = None,
                cache: MixerCache | None = None, carry: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        hidden_states, residual = self.norm(hidden_states, residual, prenorm=True,
                                            residual_in_fp32=self.residual_in_fp32)
        return self.mixer(hidden_states, cache, carry) if carry else self.mixer(hidden_states, cache), residual

    def step(self, hidden_states: torch.Tensor, residual: torch.Tensor | None,
             cache: MixerCache) -> tuple[torch.Tensor, torch.Tensor]:
        """One token: (B, dim) in and out."""
        hidden_states, residual = self.norm(hidden_states, residual, prenorm=True,
                                            residual_in_fp32=self.residual_in_fp32)
        return self.mixer.step(hidden_states, cache), residual

    def decode_step(self, hidden_states: torch.Tensor, residual: torch.Tensor | None,
                    cache: MixerCache) -> tuple[torch.Tensor, torch.Tensor]:
        """As `step`, in one kernel for a Mamba mixer where the kernels apply: the LM's decoding."""
        fused = self._fused_step(hidden_states, cache)
        if fused is None:
            return self.step(hidden_states, residual, cache)
        return fused(hidden_states, residual, None, *cache, residual_stream=True,
                     residual_in_fp32=self.residual_in_fp32, **self._fused_weights())

    def residual_step(self, x: torch.Tensor, cache, skip: torch.Tensor | None = None) -> torch.Tensor:
        """x + mixer(norm(x)) (+ skip) for one token (B, dim): the U-Net's layer, fused as `decode_step`."""
        fused = self._fused_step(x, cache)
        if fused is not None:
            return fused(x, None, skip, *cache, residual_stream=False, **self._fused_weights())
        hidden, residual = self.step(x, None, cache)
        return hidden + residual if skip is None else hidden + residual + skip

    def _fused_step(self, x: torch.Tensor, cache) -> Callable | None:
        """`ops.fused_layer_step` for Mamba mixers (None for the rest: they keep their own step)."""
        return ops.fused_layer_step(x, *cache) if isinstance(self.mixer, Mamba) else None

    def _fused_weights(self) -> dict:
        return dict(norm_weight=self.norm.weight, norm_eps=self.norm.eps, **self.mixer.step_weights())
