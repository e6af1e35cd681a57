"""The selective scan's forward compiled for the CPU with numba: one fused pass, no (B, D, L, N) tensors.

A per-step PyTorch loop (mamba-ssm's `selective_scan_ref`) materialises exp(delta A) and delta B u
for every step and state before it starts; this kernel keeps one (N,) state per (batch, channel) in
registers, computes each decay where it is used, and splits the (batch, channel) pairs across
threads. Its backward (`selective_scan_numba_grad`) recomputes each channel's states into a small
(L, N) buffer and runs the adjoint recurrence backwards in time, in the same fused way: CPU training
takes time linear in L and memory of the inputs only.
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


@numba.njit(cache=True)
def _states(hs, u, delta, a, B):  # pragma: no cover  (compiled)
    """One channel's states h_t into hs[t + 1] (hs[0] stays 0): u, delta (L,); a (n,); B (L, n)."""
    for t in range(len(u)):
        dt = delta[t]
        x = dt * u[t]
        for n in range(len(a)):
            hs[t + 1, n] = np.exp(dt * a[n]) * hs[t, n] + x * B[t, n]


@numba.njit(parallel=True, cache=True)
def _grad(u, delta, A, B, C, gy, blocks, scale, du, ddelta, dA, dB, dC):  # pragma: no cover  (compiled)
    """Gradients of y = scale * Re(sum_n C h) for y = scan(u, delta, A, B, C), given gy (b, d, L), with real or
    complex A, B, C (scale 1 or 2). Each block of channels recomputes its states forward into an (L + 1, n)
    buffer, then runs the adjoint backwards in time; complex gradients follow PyTorch's convention
    (dl/d Re + i dl/d Im), so the adjoint carries conj(decay).
    du, ddelta (b, d, L); dA (d, n); dB, dC (blocks, b, g, L, n): one partial sum per block (no races)."""
    batch, dim, L = u.shape
    n_states = A.shape[1]
    per_group = dim // B.shape[1]
    per_block = (dim + blocks - 1) // blocks
    for blk in numba.prange(blocks):
        hs = np.zeros((L + 1, n_states), dtype=A.dtype)  # hs[t + 1] = h_t, hs[0] = 0
        lam = np.zeros(n_states, dtype=A.dtype)
        grad_a = np.zeros(n_states, dtype=A.dtype)
        for d in range(blk * per_block, min(dim, (blk + 1) * per_block)):
            g = d // per_group
            a = A[d]
            grad_a[:] = 0
            for b in range(batch):
                _states(hs, u[b, d], delta[b, d], a, B[b, g])
                lam[:] = 0  # lam_t = dl/dh_t, carried back as conj(a_{t+1}) lam_{t+1}
                for t in range(L - 1, -1, -1):
                    dt, ut = delta[b, d, t], u[b, d, t]
                    gy_t = scale * gy[b, d, t]
                    x = dt * ut
                    grad_x = np.float32(0)
                    grad_dt = np.float32(0)
                    for n in range(n_states):
                        lam_n = lam[n] + gy_t * np.conj(C[b, g, t, n])
                        dC[blk, b, g, t, n] += gy_t * np.conj(hs[t + 1, n])
                        dB[blk, b, g, t, n] += lam_n * x
                        grad_x += (lam_n * np.conj(B[b, g, t, n])).real
                        decay = np.exp(dt * a[n])
                        grad_z = lam_n * np.conj(hs[t, n] * decay)  # dl/d(dt * a_n)
                        grad_a[n] += grad_z * dt
                        grad_dt += (grad_z * np.conj(a[n])).real
                        lam[n] = np.conj(decay) * lam_n
                    du[b, d, t] = grad_x * dt
                    ddelta[b, d, t] = grad_dt + grad_x * ut
            for n in range(n_states):
                dA[d, n] = grad_a[n]


class SelectiveScanNumba(torch.autograd.Function):
    """The numba scan with a numba backward: no (B, D, L, N) tensor is built or saved, so memory is the
    inputs' and time grows linearly in L. Saves only the inputs; the backward recomputes the states."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor) -> torch.Tensor:
        y, _ = selective_scan_numba(u, delta, A, B, C)
        ctx.save_for_backward(u, delta, A, B, C)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        u, delta, A, B, C = ctx.saved_tensors
        complex_a = A.is_complex()
        state_dtype = torch.complex64 if complex_a else torch.float32
        batch, dim, L = u.shape
        blocks = max(1, min(dim, numba.get_num_threads()))
        as_array = lambda t, dtype: t.detach().to(dtype).contiguous().numpy()  # noqa: E731
        arrays = [as_array(u, torch.float32), as_array(delta, torch.float32), as_array(A, state_dtype)]
        arrays += [as_array(t.transpose(-1, -2), state_dtype) for t in (B, C)]  # (b, g, L, n)
        arrays.append(as_array(grad_y, torch.float32))
        du, ddelta = torch.empty(batch, dim, L), torch.empty(batch, dim, L)
        dA = torch.empty(A.shape, dtype=state_dtype)
        parts = [torch.zeros(blocks, *B.shape[:2], L, B.shape[2], dtype=state_dtype) for _ in range(2)]
        with _launch:
            _grad(*arrays, blocks, np.float32(2 if complex_a else 1), du.numpy(), ddelta.numpy(), dA.numpy(),
                  parts[0].numpy(), parts[1].numpy())
        dB, dC = (part.sum(0).transpose(-1, -2) for part in parts)  # (b, g, n, L)
        return du.to(u.dtype), ddelta.to(delta.dtype), dA.to(A.dtype), dB.to(B.dtype), dC.to(C.dtype)


def selective_scan_numba_grad(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                              C: torch.Tensor) -> torch.Tensor:
    """`selective_scan_numba`'s y with gradients for every input, computed by compiled kernels (the CPU
    training path): same arguments; returns y (b, d, L) float32 without D or gate."""
    return SelectiveScanNumba.apply(u, delta, A, B, C)
