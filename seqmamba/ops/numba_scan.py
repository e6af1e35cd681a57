"""The selective scan's forward compiled for the CPU with numba: one fused pass, no (B, D, L, N) tensors.

A per-step PyTorch loop (mamba-ssm's `selective_scan_ref`) materialises exp(delta A) and delta B u
for every step and state before it starts; this kernel keeps one (N,) state per (batch, channel) in
registers, computes each decay where it is used, and splits the (batch, channel) pairs across
threads. Forward only: training still goes through the portable scan's autograd path.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import torch

_launch = threading.Lock()  # numba's default thread pool aborts the process on concurrent launches


@numba.njit(parallel=True, cache=True)
def _scan_real(u, delta, A, B, C, y, last):  # pragma: no cover  (compiled)
    """u, delta, y (b, d, L); A (d, n); B, C (b, g, L, n); last (b, d, n)."""
    batch, dim, L = u.shape
    per_group = dim // B.shape[1]
    for k in numba.prange(batch * dim):
        b, d = k // dim, k % dim
        g = d // per_group
        a = A[d]
        h = np.zeros_like(a)
        for t in range(L):
            dt = delta[b, d, t]
            x = dt * u[b, d, t]
            acc = np.float32(0)
            for n in range(a.shape[0]):
                h[n] = np.exp(dt * a[n]) * h[n] + x * B[b, g, t, n]
                acc += h[n] * C[b, g, t, n]
            y[b, d, t] = acc
        last[b, d] = h


@numba.njit(parallel=True, cache=True)
def _scan_complex(u, delta, A, B, C, y, last):  # pragma: no cover  (compiled)
    """As `_scan_real` with A, B, C, last complex64 and y = 2 Re(C h), in float32 arithmetic throughout."""
    batch, dim, L = u.shape
    per_group = dim // B.shape[1]
    for k in numba.prange(batch * dim):
        b, d = k // dim, k % dim
        g = d // per_group
        a_re, a_im = A[d].real.copy(), A[d].imag.copy()
        n_states = a_re.shape[0]
        h_re, h_im = np.zeros_like(a_re), np.zeros_like(a_re)
        for t in range(L):
            dt = delta[b, d, t]
            x = dt * u[b, d, t]
            acc = np.float32(0)
            for n in range(n_states):
                modulus, angle = np.exp(dt * a_re[n]), dt * a_im[n]
                decay_re, decay_im = modulus * np.cos(angle), modulus * np.sin(angle)
                b_tn, c_tn = B[b, g, t, n], C[b, g, t, n]
                re = decay_re * h_re[n] - decay_im * h_im[n] + x * b_tn.real
                im = decay_re * h_im[n] + decay_im * h_re[n] + x * b_tn.imag
                h_re[n], h_im[n] = re, im
                acc += re * c_tn.real - im * c_tn.imag
            y[b, d, t] = 2 * acc
        for n in range(n_states):
            last[b, d, n] = complex(h_re[n], h_im[n])


def selective_scan_numba(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                         C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """u, delta (b, d, L) float32 (delta already biased and softplus-ed); A (d, n); B, C (b, g, n, L),
    complex where A is -> y (b, d, L) float32 without D or gate, last state (b, d, n) in A's dtype."""
    complex_a = A.is_complex()
    state_dtype = torch.complex64 if complex_a else torch.float32
    arrays = [t.detach().contiguous().numpy() for t in (u.float(), delta.float(), A.to(state_dtype))]
    arrays += [t.detach().to(state_dtype).transpose(-1, -2).contiguous().numpy() for t in (B, C)]  # (b, g, L, n)
    y = torch.empty(u.shape, dtype=torch.float32)
    last = torch.empty(*u.shape[:2], A.shape[1], dtype=state_dtype)
    with _launch:
        (_scan_complex if complex_a else _scan_real)(*arrays, y.numpy(), last.numpy())
    return y, last.to(A.dtype)
