"""The Mamba mixer's inner path continued from a carried state: a long sequence read chunk by chunk, exactly.

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
from seqmamba.ops.scan import selective_scan, split_projection


def state_echo(delta: torch.Tensor, A: torch.Tensor, C: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What h0 adds: to y (B, D, L) float32, and to the last state (B, D, N); one state index at a time (memory)."""
    total = delta.cumsum(dim=-1)  # (B, D, L) float32
    C = unpack_bc(C, A)[:, 0]  # (B, N, L), complex where A is
    y = torch.zeros_like(total)
    for n in range(A.shape[1]):
        echo = torch.exp(total * A[None, :, n, None]) * h0[:, :, n, None]  # (B, D, L)
        term = echo * C[:, None, n]
        y += 2 * term.real if term.is_complex() else term
    return y, torch.exp(total[..., -1:] * A) * h0  # (B, D, L), (B, D, N)


def mamba_inner_from_state(
    xz: torch.Tensor,
    conv_weight: torch.Tensor,
    conv_bias: torch.Tensor | None,
    x_proj_weight: torch.Tensor,
    dt_proj_weight: torch.Tensor,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor | None,
    A: torch.Tensor,
    D: torch.Tensor | None,
    dt_bias: torch.Tensor | None,
    conv_state: torch.Tensor,
    ssm_state: torch.Tensor,
) -> torch.Tensor:
    """As `ops.mamba_inner`, starting from conv_state (B, D, W) and ssm_state (B, D, N), both then advanced."""
    batch, L = xz.shape[0], xz.shape[-1]
    width = conv_weight.shape[-1]
    x, z = xz.chunk(2, dim=1)  # (B, D, L) each
    x_ext = torch.cat([conv_state[..., 1:].to(x.dtype), x], dim=-1)  # the previous W - 1 inputs in front
    conv_state.copy_(x_ext[..., -width:])
    x = causal_conv1d(x_ext, conv_weight, conv_bias, activation="silu")[..., width - 1:].contiguous()
    x_dbl = F.linear(x.transpose(1, 2).reshape(batch * L, -1), x_proj_weight)  # (B*L, R + 2S)
    dt, B, C = split_projection(x_dbl, dt_proj_weight.shape[1], A, batch)
    dt = (dt @ dt_proj_weight.t()).reshape(batch, L, -1).transpose(1, 2)  # (B, D, L)
    y, last_state = selective_scan(x, dt, A, B, C, D, delta_bias=dt_bias, delta_softplus=True,
                                   return_last_state=True)
    delta = F.softplus(dt.float() + (0 if dt_bias is None else dt_bias.float()[:, None]))
    echo_y, echo_state = state_echo(delta, A, C, ssm_state)
    ssm_state.copy_(last_state + echo_state)
    y = (y.float() + echo_y) * F.silu(z.float())
    return F.linear(y.to(xz.dtype).transpose(1, 2), out_proj_weight, out_proj_bias)  # (B, L, d_model)
