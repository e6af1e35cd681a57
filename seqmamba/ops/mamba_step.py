"""One decoding step of a whole residual Mamba layer (add, RMSNorm, mixer, residual) as one Triton kernel.

Op by op, a layer's step is ~15 small kernels; decoding is bound by their launches, not by arithmetic.
Here each program takes a batch row (or a few) through the layer: the norm, in_proj and the conv window
on chunks of the inner channels while x_proj's dt, B, C accumulate; then, chunk by chunk again, z,
dt_proj, the selective state update (real, or complex as in `complex_state_update`), D, the gate and
out_proj. Weights are read straight from the parameters (fp32 or bf16) and everything accumulates in fp32.

Measured on an H100 (batch 64, graphed, us per layer, fused / op by op): complex d_model 64: 12.4 / 37.8,
128: 33.7 / 40.3, 256: 106 / 45.3; real 64: 7.4 / 34.3. One program walks a row's whole chain of
mat-vecs, so wide layers lose: `MAX_WIDTH` is the widest that gains. Blocks of 16 rows per program
through tl.dot (fp32) were 10-15x slower than one row per program.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_WIDTH = 128  # d_model up to which the fused step beats the op-by-op one (see above)


@triton.jit
def _matvec(a, w_t):  # pragma: no cover  (compiled)
    """a (rows, K) @ w_t (K, M) in fp32, as a broadcast sum (a program holds one or a few rows)."""
    return tl.sum(a[:, :, None] * w_t[None, :, :], axis=1)


@triton.jit
def _mamba_layer_step_kernel(
    x_ptr, res_ptr, skip_ptr, out_ptr, stream_ptr,
    norm_w_ptr, in_w_ptr, in_b_ptr, conv_w_ptr, conv_b_ptr, xp_w_ptr, dt_w_ptr, dt_b_ptr,
    a_log_ptr, a_imag_ptr, d_ptr, out_w_ptr, out_b_ptr, conv_ptr, ssm_ptr,
    batch, d_model, dt_rank, d_state, eps,
    x_row, res_row, skip_row, out_row, stream_row,
    conv_b_s, conv_d_s, conv_w_s, ssm_b_s, ssm_d_s, ssm_n_s,
    HAS_RES: tl.constexpr, HAS_SKIP: tl.constexpr, ADD_STREAM: tl.constexpr, STORE_STREAM: tl.constexpr,
    HAS_IN_BIAS: tl.constexpr, HAS_CONV_BIAS: tl.constexpr, HAS_OUT_BIAS: tl.constexpr, COMPLEX: tl.constexpr,
    D_INNER: tl.constexpr, WIDTH: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr,
):  # pragma: no cover  (compiled)
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_m, offs_r = tl.arange(0, BLOCK_M), tl.arange(0, BLOCK_R)
    offs_n, offs_w = tl.arange(0, BLOCK_N), tl.arange(0, BLOCK_W)
    mask_b, mask_m, mask_r, mask_n = rows < batch, offs_m < d_model, offs_r < dt_rank, offs_n < d_state
    mask_bm = mask_b[:, None] & mask_m[None, :]

    # s = x (+ residual); h = RMSNorm(s)                                    (rows, M)
    s = tl.load(x_ptr + rows[:, None] * x_row + offs_m[None, :], mask=mask_bm, other=0.0).to(tl.float32)
    if HAS_RES:
        s += tl.load(res_ptr + rows[:, None] * res_row + offs_m[None, :], mask=mask_bm, other=0.0).to(tl.float32)
    if STORE_STREAM:
        stream = stream_ptr + rows[:, None] * stream_row + offs_m[None, :]
        tl.store(stream, s.to(stream_ptr.dtype.element_ty), mask=mask_bm)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=1) / d_model + eps)
    h = s * rstd[:, None] * tl.load(norm_w_ptr + offs_m, mask=mask_m, other=0.0).to(tl.float32)[None, :]

    # x_proj rows: dt (R), then B and C (N each; (re, im) pairs for complex)
    pair = 2 if COMPLEX else 1
    b_rows = dt_rank + pair * offs_n
    c_rows = b_rows + pair * d_state
    dt_low = tl.zeros([BLOCK_B, BLOCK_R], dtype=tl.float32)
    b_re = tl.zeros([BLOCK_B, BLOCK_N], dtype=tl.float32)
    b_im, c_re, c_im = tl.zeros_like(b_re), tl.zeros_like(b_re), tl.zeros_like(b_re)

    # pass 1: x = silu(conv(window + in_proj_x(h))), window updated in place; dt, B, C = x_proj(x)
    for c0 in range(0, D_INNER, BLOCK_C):  # a constexpr bound: Triton's interpreter cannot loop to an argument
        offs_c = c0 + tl.arange(0, BLOCK_C)
        mask_c = offs_c < D_INNER
        mask_bc = mask_b[:, None] & mask_c[None, :]
        w_x = tl.load(in_w_ptr + offs_c[None, :] * d_model + offs_m[:, None],
                      mask=mask_m[:, None] & mask_c[None, :], other=0.0).to(tl.float32)  # (M, C)
        x_new = _matvec(h, w_x)
        if HAS_IN_BIAS:
            x_new += tl.load(in_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        window_at = conv_ptr + rows[:, None, None] * conv_b_s + offs_c[None, :, None] * conv_d_s \
            + offs_w[None, None, :] * conv_w_s
        older = tl.load(window_at + conv_w_s, mask=mask_bc[:, :, None] & (offs_w < WIDTH - 1)[None, None, :],
                        other=0.0)  # the window moved left by one
        x_new = x_new.to(older.dtype)[:, :, None]
        window = tl.where((offs_w == WIDTH - 1)[None, None, :], x_new, older)
        conv_w = tl.load(conv_w_ptr + offs_c[:, None] * WIDTH + offs_w[None, :],
                         mask=mask_c[:, None] & (offs_w < WIDTH)[None, :], other=0.0).to(tl.float32)
        x = tl.sum(window.to(tl.float32) * conv_w[None, :, :], axis=2)
        if HAS_CONV_BIAS:
            x += tl.load(conv_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        x = x * tl.sigmoid(x)
        tl.debug_barrier()  # every thread has read the old window before any writes the new one
        tl.store(window_at, window, mask=mask_bc[:, :, None] & (offs_w < WIDTH)[None, None, :])
        xp_at = xp_w_ptr + offs_c[:, None]
        mask_cn = mask_c[:, None] & mask_n[None, :]
        dt_low += _matvec(x, tl.load(xp_at + offs_r[None, :] * D_INNER, mask=mask_c[:, None] & mask_r[None, :],
                                     other=0.0).to(tl.float32))
        b_re += _matvec(x, tl.load(xp_at + b_rows[None, :] * D_INNER, mask=mask_cn, other=0.0).to(tl.float32))
        c_re += _matvec(x, tl.load(xp_at + c_rows[None, :] * D_INNER, mask=mask_cn, other=0.0).to(tl.float32))
        if COMPLEX:
            b_im += _matvec(x, tl.load(xp_at + (b_rows + 1)[None, :] * D_INNER, mask=mask_cn,
                                       other=0.0).to(tl.float32))
            c_im += _matvec(x, tl.load(xp_at + (c_rows + 1)[None, :] * D_INNER, mask=mask_cn,
                                       other=0.0).to(tl.float32))
    tl.debug_barrier()  # pass 2 reads back the windows written above

    # pass 2: z, dt, the state update, y = (C h + D x) silu(z), out += out_proj(y)
    acc = tl.zeros([BLOCK_B, BLOCK_M], dtype=tl.float32)
    for c0 in range(0, D_INNER, BLOCK_C):
        offs_c = c0 + tl.arange(0, BLOCK_C)
        mask_c = offs_c < D_INNER
        mask_bc = mask_b[:, None] & mask_c[None, :]
        mask_cn = mask_c[:, None] & mask_n[None, :]
        window_at = conv_ptr + rows[:, None, None] * conv_b_s + offs_c[None, :, None] * conv_d_s \
            + offs_w[None, None, :] * conv_w_s
        window = tl.load(window_at, mask=mask_bc[:, :, None] & (offs_w < WIDTH)[None, None, :], other=0.0)
        conv_w = tl.load(conv_w_ptr + offs_c[:, None] * WIDTH + offs_w[None, :],
                         mask=mask_c[:, None] & (offs_w < WIDTH)[None, :], other=0.0).to(tl.float32)
        x = tl.sum(window.to(tl.float32) * conv_w[None, :, :], axis=2)
        if HAS_CONV_BIAS:
            x += tl.load(conv_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        x = x * tl.sigmoid(x)
        w_z = tl.load(in_w_ptr + (D_INNER + offs_c)[None, :] * d_model + offs_m[:, None],
                      mask=mask_m[:, None] & mask_c[None, :], other=0.0).to(tl.float32)  # (M, C)
        z = _matvec(h, w_z)
        if HAS_IN_BIAS:
            z += tl.load(in_b_ptr + D_INNER + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        w_dt = tl.load(dt_w_ptr + offs_c[None, :] * dt_rank + offs_r[:, None],
                       mask=mask_r[:, None] & mask_c[None, :], other=0.0).to(tl.float32)  # (R, C)
        dt = _matvec(dt_low, w_dt) + tl.load(dt_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)  # softplus, as F.softplus
        a_at = offs_c[:, None] * d_state + offs_n[None, :]
        a_re = -tl.exp(tl.load(a_log_ptr + a_at, mask=mask_cn, other=0.0).to(tl.float32))
        state_at = ssm_ptr + rows[:, None, None] * ssm_b_s + offs_c[None, :, None] * ssm_d_s \
            + offs_n[None, None, :] * ssm_n_s
        mask_s = mask_bc[:, :, None] & mask_n[None, None, :]
        dt3 = dt[:, :, None]
        drive = (dt * x)[:, :, None]
        h_re = tl.load(state_at, mask=mask_s, other=0.0)
        if COMPLEX:  # exp(dt A) = e^(dt Re A) (cos(dt Im A) + i sin(dt Im A)); y = 2 Re(C h)
            a_im = tl.load(a_imag_ptr + a_at, mask=mask_cn, other=0.0).to(tl.float32)
            h_im = tl.load(state_at + 1, mask=mask_s, other=0.0)
            magnitude = tl.exp(dt3 * a_re[None, :, :])
            angle = dt3 * a_im[None, :, :]
            decay_re, decay_im = magnitude * tl.cos(angle), magnitude * tl.sin(angle)
            new_re = decay_re * h_re - decay_im * h_im + drive * b_re[:, None, :]
            new_im = decay_re * h_im + decay_im * h_re + drive * b_im[:, None, :]
            y = 2.0 * tl.sum(c_re[:, None, :] * new_re - c_im[:, None, :] * new_im, axis=2)
            tl.debug_barrier()
            tl.store(state_at, new_re, mask=mask_s)
            tl.store(state_at + 1, new_im, mask=mask_s)
        else:
            new_re = tl.exp(dt3 * a_re[None, :, :]) * h_re + drive * b_re[:, None, :]
            y = tl.sum(c_re[:, None, :] * new_re, axis=2)
            tl.debug_barrier()
            tl.store(state_at, new_re, mask=mask_s)
        y += x * tl.load(d_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        y *= z * tl.sigmoid(z)
        w_out = tl.load(out_w_ptr + offs_m[None, :] * D_INNER + offs_c[:, None],
                        mask=mask_c[:, None] & mask_m[None, :], other=0.0).to(tl.float32)  # (C, M)
        acc += _matvec(y, w_out)

    if HAS_OUT_BIAS:
        acc += tl.load(out_b_ptr + offs_m, mask=mask_m, other=0.0).to(tl.float32)[None, :]
    if ADD_STREAM:
        acc += s
    if HAS_SKIP:
        acc += tl.load(skip_ptr + rows[:, None] * skip_row + offs_m[None, :], mask=mask_bm, other=0.0).to(tl.float32)
    tl.store(out_ptr + rows[:, None] * out_row + offs_m[None, :], acc.to(out_ptr.dtype.element_ty), mask=mask_bm)


def chunk_width(d_model: int, d_inner: int, rows: int) -> int:
    """Inner channels per chunk: in_proj tiles (rows x d_model x chunk) of ~8K weights, a power of two."""
    chunk = max(16, 8192 // (rows * triton.next_power_of_2(d_model)))
    return min(chunk, max(16, triton.next_power_of_2(d_inner)))


def mamba_layer_step(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    skip: torch.Tensor | None,
    conv_state: torch.Tensor,
    ssm_state: torch.Tensor,
    *,
    norm_weight: torch.Tensor,
    norm_eps: float,
    in_proj_weight: torch.Tensor,
    in_proj_bias: torch.Tensor | None,
    conv_weight: torch.Tensor,
    conv_bias: torch.Tensor | None,
    x_proj_weight: torch.Tensor,
    dt_proj_weight: torch.Tensor,
    dt_proj_bias: torch.Tensor,
    A_log: torch.Tensor,
    A_imag: torch.Tensor | None,
    D: torch.Tensor,
    out_proj_weight: torch.Tensor,
    out_proj_bias: torch.Tensor | None,
    residual_stream: bool,
    residual_in_fp32: bool = False,
    rows_per_program: int = 1,
    block_c: int | None = None,
    num_warps: int = 8,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """One token (B, d_model) through a residual Mamba layer; conv_state (B, Di, W), ssm_state updated in place.

    residual_stream=False (the U-Net): returns s + mixer(norm(s)) (+ skip), s = x. residual_stream=True
    (the LM's Block): returns (mixer(norm(s)), s), s = x + residual, kept in fp32 if residual_in_fp32.
    A = -exp(A_log) (+ i A_imag, the state complex64, B and C (re, im) pairs of x_proj's columns).
    """
    x, residual, skip = (None if t is None else t.contiguous() for t in (x, residual, skip))
    batch, d_model = x.shape
    d_inner, width = conv_weight.shape
    dt_rank, d_state = dt_proj_weight.shape[1], A_log.shape[1]
    rows, chunk = rows_per_program, block_c or chunk_width(d_model, d_inner, rows_per_program)
    out = torch.empty_like(x)
    stream = None
    if residual_stream:
        stream = torch.empty_like(x, dtype=torch.float32 if residual_in_fp32 else x.dtype)
    ssm = torch.view_as_real(ssm_state) if ssm_state.is_complex() else ssm_state
    _mamba_layer_step_kernel[(triton.cdiv(batch, rows),)](
        x, x if residual is None else residual, x if skip is None else skip, out, out if stream is None else stream,
        norm_weight, in_proj_weight, x if in_proj_bias is None else in_proj_bias, conv_weight,
        x if conv_bias is None else conv_bias, x_proj_weight, dt_proj_weight, dt_proj_bias,
        A_log, A_log if A_imag is None else A_imag, D, out_proj_weight, x if out_proj_bias is None else out_proj_bias,
        conv_state, ssm,
        batch, d_model, dt_rank, d_state, norm_eps,
        x.stride(0), 0 if residual is None else residual.stride(0), 0 if skip is None else skip.stride(0),
        out.stride(0), 0 if stream is None else stream.stride(0),
        conv_state.stride(0), conv_state.stride(1), conv_state.stride(2), ssm.stride(0), ssm.stride(1), ssm.stride(2),
        HAS_RES=residual is not None, HAS_SKIP=skip is not None, ADD_STREAM=not residual_stream,
        STORE_STREAM=residual_stream, HAS_IN_BIAS=in_proj_bias is not None, HAS_CONV_BIAS=conv_bias is not None,
        HAS_OUT_BIAS=out_proj_bias is not None, COMPLEX=A_imag is not None,
        D_INNER=d_inner, WIDTH=width, BLOCK_B=rows, BLOCK_M=triton.next_power_of_2(d_model), BLOCK_C=chunk,
        BLOCK_R=triton.next_power_of_2(dt_rank),
        BLOCK_N=triton.next_power_of_2(d_state), BLOCK_W=triton.next_power_of_2(width), num_warps=num_warps,
    )
    return (out, stream) if residual_stream else out
