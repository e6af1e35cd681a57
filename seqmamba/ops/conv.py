"""Causal depthwise convolution: causal-conv1d's CUDA kernels where they apply, PyTorch otherwise.

Training on the CPU sums the W shifted inputs instead of calling F.conv1d: PyTorch's depthwise conv1d
backward there took half a second per layer at L = 4,096, more than the whole selective scan.
"""

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
    width, length = weight.shape[-1], x.shape[-1]
    padded = F.pad(x, (width - 1, 0))
    if torch.is_grad_enabled() and x.device.type == "cpu" and (x.requires_grad or weight.requires_grad):
        w = weight.to(x.dtype).unsqueeze(-1)  # (D, W, 1)
        y = sum(padded[..., k:k + length] * w[:, k] for k in range(width))  # (B, D, L)
        y = y if bias is None else y + bias.to(x.dtype).unsqueeze(-1)
    else:
        y = F.conv1d(padded, weight.unsqueeze(1).to(x.dtype), None if bias is None else bias.to(x.dtype),
                     groups=x.shape[1])
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
