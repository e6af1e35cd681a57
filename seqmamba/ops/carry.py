"""The pieces that let the Mamba mixer's inner path (`ops.mamba_inner(state=...)`) continue from a carried state:
a long sequence read chunk by chunk, exactly.

mamba-ssm's scan starts every sequence from a zero state. The recurrence h_t = a_t h_{t-1} + b_t is
linear, so a chunk that starts from a state h0 is the zero-start scan plus h0's decayed echo:
h_t += exp(A * sum_{s<=t} delta_s) h0, and y_t += C_t . that echo (2 Re(...) for complex A). The
causal conv sees the previous chunk's last W - 1 inputs in front of this chunk's. Both states are
updated in place, so the next chunk continues where this one ended, with memory bounded by a chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqmamba.ops.conv import causal_conv1d
from seqmamba.ops.portable_scan import unpack_bc


def state_echo(delta: torch.Tensor, A: torch.Tensor, C: torch.Tensor,
               h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What h0 adds: to y (B, D, L) float32, and to the last state (B, D, N); one state index at a time (memory)."""
    total = delta.cumsum(dim=-1)  # (B, D, L) float32
    C = unpack_bc(C, A)[:, 0]  # (B, N, L), complex where A is
    y = torch.zeros_like(total)
    for n in range(A.shape[1]):
        echo = torch.exp(total * A[None, :, n, None]) * h0[:, :, n, None]  # (B, D, L)
        term = echo * C[:, None, n]
        y += 2 * term.real if term.is_complex() else term
    return y, torch.exp(total[..., -1:] * A) * h0  # (B, D, L), (B, D, N)


def conv_from_state(x: torch.Tensor, conv_state: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None) -> torch.Tensor:
    """Causal conv + silu of x (B, D, L) continuing the inputs in conv_state (B, D, W), which then holds x's last W."""
    width = weight.shape[-1]
    x_ext = torch.cat([conv_state[..., 1:].to(x.dtype), x], dim=-1)  # the previous W - 1 inputs in front
    conv_state.copy_(x_ext[..., -width:])
    return causal_conv1d(x_ext, weight, bias, activation="silu")[..., width - 1:].contiguous()


def add_state_echo(y: torch.Tensor, last_state: torch.Tensor, dt: torch.Tensor, dt_bias: torch.Tensor | None,
                   A: torch.Tensor, C: torch.Tensor, z: torch.Tensor, ssm_state: torch.Tensor) -> torch.Tensor:
    """A zero-start scan's ungated y (B, D, L) and last state, made to start from ssm_state (then advanced); gated."""
    delta = F.softplus(dt.float() + (0 if dt_bias is None else dt_bias.float()[:, None]))
    echo_y, echo_state = state_echo(delta, A, C, ssm_state)
    ssm_state.copy_(last_state + echo_state)
    return ((y.float() + echo_y) * F.silu(z.float())).to(y.dtype)
