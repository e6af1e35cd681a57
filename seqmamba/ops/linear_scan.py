"""h_t = a_t * h_{t-1} + b_t along the leading axis, with a hand-written backward.

The backward of a linear recurrence is the same recurrence run backwards in time with conj(a)
(the adjoint), so both directions use one two-level chunked scan that writes in place and builds
no autograd graph. Chunks of T ~ sqrt(L) steps are scanned all at once from a zero state, then
the state entering each chunk is carried across (L/T small steps) and added back through the
chunk's running decay product: about 2*sqrt(L) Python steps, O(L) work, and only products of
decays of modulus <= 1, which cannot overflow.
"""

from __future__ import annotations

import math

import torch


def _scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """Inclusive scan of (L, ...) tensors from h0 (...) or zero; returns h (L, ...), a new tensor."""
    L = a.shape[0]
    T = 1 << max(0, math.ceil(math.log2(L) / 2))
    pad = -L % T
    if pad:  # padded steps: a = 1, b = 0 leave the state unchanged
        a = torch.cat([a, a.new_ones((pad, *a.shape[1:]))])
        b = torch.cat([b, b.new_zeros((pad, *b.shape[1:]))])
    K = (L + pad) // T
    a, h = a.view(K, T, *a.shape[1:]), b.view(K, T, *b.shape[1:]).clone()
    decay = a.clone()  # (K, T, ...): decay from each chunk's start
    for t in range(1, T):  # every chunk at once, from a zero state
        h[:, t].addcmul_(a[:, t], h[:, t - 1])
        decay[:, t].mul_(decay[:, t - 1])
    carry = h0 if h0 is not None else torch.zeros_like(h[0, 0])
    for k in range(K):
        h[k].addcmul_(decay[k], carry.unsqueeze(0))
        carry = h[k, -1]
    return h.view(K * T, *h.shape[2:])[:L]


class LinearScan(torch.autograd.Function):
    """Autograd wrapper of `_scan`; gradients follow PyTorch's conjugate convention for complex."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        h = _scan(a, b, h0)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        a, h, h0 = ctx.saved_tensors
        # adjoint: lam_t = grad_t + conj(a_{t+1}) lam_{t+1}, i.e. a scan over reversed time
        a_next = torch.cat([a[1:], a.new_zeros((1, *a.shape[1:]))]).conj()
        lam = _scan(a_next.flip(0), grad_h.flip(0), None).flip(0)
        h_prev = torch.cat([h0.unsqueeze(0), h[:-1]])
        grad_a = lam * h_prev.conj()
        grad_h0 = a[0].conj() * lam[0]
        return grad_a, lam, grad_h0


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t over dim 0, h_{-1} = h0; a, b (L, ...), h0 (...) -> h (L, ...)."""
    return LinearScan.apply(a, b, h0)
