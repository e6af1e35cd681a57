"""Selective scan, its one-step update, and the fused Mamba inner path, each routed to a backend.

Signatures and semantics are mamba-ssm's (`selective_scan_fn`, `selective_state_update`,
`mamba_inner_fn`), for real A and complex A, so that code and weights move between the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqmamba.ops import carry
from seqmamba.ops.backend import KERNELS, use_kernels
from seqmamba.ops.conv import causal_conv1d
from seqmamba.ops.portable_scan import selective_scan_portable, selective_state_update_portable


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """y = SSM(u) with input-dependent delta, B, C: u, delta (B, D, L); A (D, N) real or complex."""
    if use_kernels(u, delta, A, B, C):
        return KERNELS.selective_scan_fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return selective_scan_portable(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def selective_state_update(
    state: torch.Tensor,
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    dt_bias: torch.Tensor | None = None,
    dt_softplus: bool = False,
) -> torch.Tensor:
    """One token of the recurrence for decoding; updates `state` in place and returns y (B, D).

    mamba-ssm's Triton kernel handles real A; complex A has a Triton kernel of ours (one launch per layer).
    """
    if use_kernels(state, x, A):
        step = KERNELS.complex_state_update if A.is_complex() else KERNELS.selective_state_update
        return step(state, x, dt, A, B, C, D, z=z, dt_bias=dt_bias, dt_softplus=dt_softplus)
    return selective_state_update_portable(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)


def split_projection(x_dbl: torch.Tensor, dt_rank: int, A: torch.Tensor, batch: int):
    """x_proj's output (B*L, R + 2S) -> dt (B*L, R) and B, C in the scan's layout (B, S', L').

    S = N for real A; for complex A, S = 2N with each state's (re, im) adjacent, and the scan wants
    (B, N, 2L): mamba-ssm's `mamba_inner_fn` convention, kept so both paths read the same weights.
    """
    width = (x_dbl.shape[-1] - dt_rank) // 2
    dt, B, C = torch.split(x_dbl, [dt_rank, width, width], dim=-1)

    def to_scan_layout(m: torch.Tensor) -> torch.Tensor:
        m = m.reshape(batch, -1, width)  # (B, L, S)
        if A.is_complex():
            return m.unflatten(-1, (-1, 2)).permute(0, 2, 1, 3).reshape(batch, width // 2, -1)  # (B, N, 2L)
        return m.transpose(1, 2)  # (B, N, L)

    return dt, to_scan_layout(B).contiguous(), to_scan_layout(C).contiguous()


def mamba_inner(
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
    return_last_state: bool = False,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
):
    """The Mamba mixer after in_proj: xz (B, 2D, L) -> (B, L, d_model) [, last SSM state].

    On GPU, when no state is asked for, one fused autograd function (mamba-ssm's `mamba_inner_fn`);
    otherwise op by op, each op still on its own backend (prefill needs the state). With `state`
    (conv_state (B, D, W), ssm_state (B, D, N)), the sequence continues from it and advances it in place.
    """
    if not return_last_state and state is None and use_kernels(xz, A):
        return KERNELS.mamba_inner_fn(xz, conv_weight.unsqueeze(1), conv_bias, x_proj_weight, dt_proj_weight,
                                      out_proj_weight, out_proj_bias, A, None, None, D,
                                      delta_bias=dt_bias, delta_softplus=True)
    batch, L = xz.shape[0], xz.shape[-1]
    x, z = xz.chunk(2, dim=1)
    if state is None:
        x = causal_conv1d(x, conv_weight, conv_bias, activation="silu")
    else:
        x = carry.conv_from_state(x, state[0], conv_weight, conv_bias)
    x_dbl = F.linear(x.transpose(1, 2).reshape(batch * L, -1), x_proj_weight)  # (B*L, R + 2S)
    dt, B, C = split_projection(x_dbl, dt_proj_weight.shape[1], A, batch)
    dt = (dt @ dt_proj_weight.t()).reshape(batch, L, -1).transpose(1, 2)  # (B, D, L)
    result = selective_scan(x, dt, A, B, C, D, z=None if state is not None else z, delta_bias=dt_bias,
                            delta_softplus=True, return_last_state=return_last_state or state is not None)
    y, last_state = result if return_last_state or state is not None else (result, None)
    if state is not None:  # the zero-start scan, plus what the carried state adds; then the gate
        y = carry.add_state_echo(y, last_state, dt, dt_bias, A, C, z, state[1])
        last_state = state[1]
    out = F.linear(y.transpose(1, 2), out_proj_weight, out_proj_bias)
    return (out, last_state) if return_last_state else out
