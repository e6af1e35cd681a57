"""Causal depthwise convolution: causal-conv1d's CUDA kernels where they apply, F.conv1d otherwise."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqmamba.ops.backend import KERNELS, use_kernels


def causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, activation: str | None = "silu"
) -> torch.Tensor:
    """Depthwise causal conv over time: x (B, D, L), weight (D, W) -> (B, D, L); output t sees inputs <= t."""
    if use_kernels(x, weight):
        return KERNELS.causal_conv1d_fn(x, weight, bias, activation=activation)
    width = weight.shape[-1]
    y = F.conv1d(F.pad(x, (width - 1, 0)), weight.unsqueeze(1).to(x.dtype),
                 None if bias is None else bias.to(x.dtype), groups=x.shape[1])
    return F.silu(y) if activation in ("silu", "swish") else y


def causal_conv1d_update(
    x: torch.Tensor, conv_state: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
    activation: str | None = "silu",
) -> torch.Tensor:
    """One step: x (B, D) enters the window `conv_state` (B, D, W), updated in place; returns (B, D)."""
    if use_kernels(x, conv_state, weight):
        return KERNELS.causal_conv1d_update(x, conv_state, weight, bias, activation)
    conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
    conv_state[:, :, -1] = x
    y = (conv_state * weight).sum(-1)
    if bias is not None:
        y = y + bias
    y = F.silu(y) if activation in ("silu", "swish") else y
    return y.to(x.dtype)
