"""Selective scan in plain PyTorch: the CPU path, and the reference the CUDA kernel is checked against.

The recurrence itself is `linear_scan` (two-level chunked, with an adjoint backward); this module
turns mamba-ssm's inputs into its decays and drives and reads the output off the states. Long
sequences are cut into segments that are checkpointed under autograd, so memory for (B, D, L, N)
intermediates is bounded by one segment. On the CPU, when the backend allows it, the recurrence runs
in numba's compiled kernels instead (`numba_scan`): the forward alone where no gradient is wanted, and
forward plus compiled backward in training (unless the last state is asked for), with no (B, D, L, N)
tensor at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from seqmamba.ops.backend import NUMBA_SCAN, NUMBA_SCAN_GRAD, use_numba
from seqmamba.ops.linear_scan import linear_scan

SEGMENT_ELEMENTS = 1 << 24  # (B, D, segment, N) elements held at once under autograd


def pairs_to_complex(x: torch.Tensor) -> torch.Tensor:
    """(..., 2K) real with (re, im) side by side -> (..., K) complex: mamba-ssm's complex layout."""
    pairs = x.float().unflatten(-1, (-1, 2)).contiguous()
    if pairs.storage_offset() % 2:  # a slice that starts at an odd element (one row, odd dt_rank): realign it
        pairs = pairs.clone()
    return torch.view_as_complex(pairs)


def _step_sizes(delta: torch.Tensor, bias: torch.Tensor | None, softplus: bool) -> torch.Tensor:
    """delta in float32, biased and softplus-ed as asked: the discretisation step of the SSM."""
    delta = delta.float()
    if bias is not None:
        delta = delta + bias.float()
    return F.softplus(delta) if softplus else delta


def _output(y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None,
            dtype: torch.dtype) -> torch.Tensor:
    """y = 2 Re(C h) for complex states, plus the skip D * u, gated by silu(z), in the input's dtype."""
    if y.is_complex():
        y = 2 * y.real
    if D is not None:
        y = y + u.float() * D.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def unpack_bc(BC: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """B or C in mamba-ssm's layout -> (batch, G, N, L), complex where A is.

    Real A: (batch, N, L) or (batch, G, N, L). Complex A: the same with 2L on the last axis, each
    time step's real and imaginary parts side by side.
    """
    if BC.dim() == 3:
        BC = BC.unsqueeze(1)
    return pairs_to_complex(BC) if A.is_complex() else BC.float()


def _scan_segment(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, h0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """u, delta (b, d, S); A (d, n); B, C (b, g, n, S); h0 (b, d, n) -> y (b, d, S), h_S (b, d, n)."""
    b, d, S = u.shape
    g = B.shape[1]
    time_first = lambda x: x.movedim(-1, 0)  # noqa: E731  (..., S) -> (S, ...)
    decay = torch.exp(time_first(delta).unsqueeze(-1) * A)  # (S, b, d, n)
    drive = (time_first(delta * u).unflatten(2, (g, d // g)).unsqueeze(-1)
             * time_first(B).unsqueeze(3))  # (S, b, g, d/g, n)
    h = linear_scan(decay, drive.flatten(2, 3), h0)  # (S, b, d, n)
    y = (h.unflatten(2, (g, d // g)) * time_first(C).unsqueeze(3)).sum(-1)  # (S, b, g, d/g)
    return y.flatten(2, 3).movedim(0, -1), h[-1]  # (b, d, S), complex for complex A


def selective_scan_portable(
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
    segment_len: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """mamba-ssm's `selective_scan_fn` (same arguments, shapes and result) in chunked PyTorch."""
    dtype_in = u.dtype
    u = u.float()
    delta = _step_sizes(delta, None if delta_bias is None else delta_bias[:, None], delta_softplus)
    B, C = unpack_bc(B, A), unpack_bc(C, A)
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))
    numba = use_numba(u, delta, A, B, C)
    if not needs_grad and numba:
        y, h = NUMBA_SCAN(u, delta, A, B, C)
    elif numba and NUMBA_SCAN_GRAD is not None and not return_last_state:
        y, h = NUMBA_SCAN_GRAD(u, delta, A, B, C), None
    else:
        y, h = _scan_segments(u, delta, A, B, C, needs_grad, segment_len)
    y = _output(y, u, None if D is None else D[:, None], z, dtype_in)
    return (y, h) if return_last_state else y


def _scan_segments(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                   needs_grad: bool, segment_len: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The scan in PyTorch, segment by segment (each checkpointed under autograd) -> y (b, d, L), h_L (b, d, n)."""
    batch, dim, L = u.shape
    h = torch.zeros(batch, dim, A.shape[1], dtype=A.dtype, device=u.device)
    segment_len = segment_len or max(256, SEGMENT_ELEMENTS // (batch * dim * A.shape[1]))
    checkpointed = needs_grad and L > segment_len
    ys = []
    for start in range(0, L, segment_len):
        part = slice(start, start + segment_len)
        args = (u[..., part], delta[..., part], A, B[..., part], C[..., part], h)
        y, h = checkpoint(_scan_segment, *args, use_reentrant=False) if checkpointed else _scan_segment(*args)
        ys.append(y)
    return torch.cat(ys, dim=-1), h


def selective_state_update_portable(
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
    """One recurrent step, updating `state` (batch, dim, N) in place; returns y (batch, dim).

    Shapes as mamba-ssm's `selective_state_update`: x, dt, z (batch, dim); A (dim, N); B, C (batch, N),
    complex (batch, N) where A and the state are complex, in which case y = 2 Re(C h).
    """
    dt = _step_sizes(dt, dt_bias, dt_softplus)
    decay = torch.exp(dt.unsqueeze(-1) * A)  # (b, d, n)
    drive = (dt * x.float()).unsqueeze(-1) * B.unsqueeze(1)
    state.copy_(decay * state + drive)
    return _output((state * C.unsqueeze(1)).sum(-1), x, D, z, x.dtype)
