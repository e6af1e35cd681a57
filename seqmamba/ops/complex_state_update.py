"""One decoding step of the complex-A selective SSM as one Triton kernel (mamba-ssm's has real A only).

The portable step spends about twenty small kernels per layer on complex arithmetic; here each program
holds a block of channels' states in registers as (re, im) pairs, updates them and reduces the output in
one pass. Same arguments and semantics as `selective_state_update` (A, B, C and the state complex64).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _complex_state_update_kernel(
    state_ptr, x_ptr, dt_ptr, a_ptr, b_ptr, c_ptr, d_ptr, z_ptr, bias_ptr, out_ptr,
    dim, dstate,
    s_batch, s_dim, s_state, x_batch, x_dim, dt_batch, dt_dim, a_dim, a_state,
    b_batch, b_state, c_batch, c_state, z_batch, z_dim, out_batch, out_dim,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr,
):  # pragma: no cover  (compiled)
    batch = tl.program_id(0)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    offs_n = tl.arange(0, BLOCK_N)
    mask_d, mask_n = offs_d < dim, offs_n < dstate
    mask = mask_d[:, None] & mask_n[None, :]
    x = tl.load(x_ptr + batch * x_batch + offs_d * x_dim, mask=mask_d, other=0.0).to(tl.float32)
    dt = tl.load(dt_ptr + batch * dt_batch + offs_d * dt_dim, mask=mask_d, other=0.0).to(tl.float32)
    if HAS_BIAS:
        dt += tl.load(bias_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    if SOFTPLUS:
        dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
    a_offs = offs_d[:, None] * a_dim + offs_n[None, :] * a_state  # real parts; imaginary at +1
    a_re = tl.load(a_ptr + a_offs, mask=mask, other=0.0)
    a_im = tl.load(a_ptr + a_offs + 1, mask=mask, other=0.0)
    b_offs = batch * b_batch + offs_n * b_state
    b_re = tl.load(b_ptr + b_offs, mask=mask_n, other=0.0)
    b_im = tl.load(b_ptr + b_offs + 1, mask=mask_n, other=0.0)
    c_offs = batch * c_batch + offs_n * c_state
    c_re = tl.load(c_ptr + c_offs, mask=mask_n, other=0.0)
    c_im = tl.load(c_ptr + c_offs + 1, mask=mask_n, other=0.0)
    s_offs = batch * s_batch + offs_d[:, None] * s_dim + offs_n[None, :] * s_state
    h_re = tl.load(state_ptr + s_offs, mask=mask, other=0.0)
    h_im = tl.load(state_ptr + s_offs + 1, mask=mask, other=0.0)
    magnitude = tl.exp(dt[:, None] * a_re)  # exp(dt A) = e^(dt Re A) (cos(dt Im A) + i sin(dt Im A))
    angle = dt[:, None] * a_im
    decay_re, decay_im = magnitude * tl.cos(angle), magnitude * tl.sin(angle)
    drive = (dt * x)[:, None]
    new_re = decay_re * h_re - decay_im * h_im + drive * b_re[None, :]
    new_im = decay_re * h_im + decay_im * h_re + drive * b_im[None, :]
    tl.store(state_ptr + s_offs, new_re, mask=mask)
    tl.store(state_ptr + s_offs + 1, new_im, mask=mask)
    y = 2.0 * tl.sum(c_re[None, :] * new_re - c_im[None, :] * new_im, axis=1)  # 2 Re(C h)
    if HAS_D:
        y += x * tl.load(d_ptr + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    if HAS_Z:
        z = tl.load(z_ptr + batch * z_batch + offs_d * z_dim, mask=mask_d, other=0.0).to(tl.float32)
        y *= z * tl.sigmoid(z)
    tl.store(out_ptr + batch * out_batch + offs_d * out_dim, y, mask=mask_d)


def complex_state_update(
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
    """state (b, d, N) complex64, updated in place; x, dt, z (b, d); A (d, N), B, C (b, N) complex -> y (b, d)."""
    batch, dim, dstate = state.shape
    out = torch.empty_like(x)
    s, a = torch.view_as_real(state), torch.view_as_real(A.to(torch.complex64))
    b, c = torch.view_as_real(B.to(torch.complex64)), torch.view_as_real(C.to(torch.complex64))
    block_n = triton.next_power_of_2(dstate)
    block_d = max(1, min(64, 2048 // block_n))
    _complex_state_update_kernel[(batch, triton.cdiv(dim, block_d))](
        s, x, dt, a, b, c, x if D is None else D, x if z is None else z, x if dt_bias is None else dt_bias, out,
        dim, dstate,
        s.stride(0), s.stride(1), s.stride(2), x.stride(0), x.stride(1), dt.stride(0), dt.stride(1),
        a.stride(0), a.stride(1), b.stride(0), b.stride(1), c.stride(0), c.stride(1),
        z.stride(0) if z is not None else 0, z.stride(1) if z is not None else 0, out.stride(0), out.stride(1),
        HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=dt_bias is not None, SOFTPLUS=dt_softplus,
        BLOCK_D=block_d, BLOCK_N=block_n,
    )
    return out
