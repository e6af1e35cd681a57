"""One decoding step of a whole residual Mamba layer (add, RMSNorm, mixer, residual) in one or two Triton kernels.

Op by op, a layer's step is ~15 small kernels; decoding is bound by their launches, not by arithmetic.
Here a batch row's inner channels are spread over programs, a chunk each (grid: rows x chunks). The first
launch: the norm (each program recomputes it), its chunk of in_proj (x and z), the conv window, SiLU, and
its chunk's partial sums of x_proj (dt, B, C) into a scratch tensor. The second: those sums added up,
dt_proj, the selective state update (real, or complex as in `complex_state_update`), D, the gate and its
chunk's share of out_proj, added atomically (fp32) into the output that the first launch's chunk 0 set to
the bias (+ s + skip). Where one chunk holds all the channels, one launch does both halves. Weights are
read straight from the parameters (fp32 or bf16) and everything accumulates in fp32; with several chunks
the order of the atomic adds, so the last bits of the output, may vary from run to run.

Measured on an H100 (batch 64, graphed, us per layer; this kernel / the one-program-per-row kernel it
replaced / op by op): complex d_model 64: 7.3 / 12.6 / 39.9, 128: 13.1 / 34.2 / 39.4, 256: 35.8 / 106.1 /
44.9; real 64: 6.8 / 7.8 / 33.4, 128: 10.9 / 28.0 / 31.6, 256: 35.6 / 100.5 / 34.5 (a tie). 4 warps beat 8
by 20-30% at these tiles; 2 or 4 rows per program were no faster than the best chunk of one row.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_WIDTH = 256  # d_model up to which the fused step beats (complex) or ties (real) op by op, as above


@triton.jit
def _matvec(a, w_t):  # pragma: no cover  (compiled)
    """a (rows, K) @ w_t (K, M) in fp32, as a broadcast sum (a program holds one or a few rows)."""
    return tl.sum(a[:, :, None] * w_t[None, :, :], axis=1)


@triton.jit
def _mamba_layer_step_kernel(
    x_ptr, res_ptr, skip_ptr, acc_ptr, stream_ptr, xz_ptr, part_ptr,
    norm_w_ptr, in_w_ptr, in_b_ptr, conv_w_ptr, conv_b_ptr, xp_w_ptr, dt_w_ptr, dt_b_ptr,
    a_log_ptr, a_imag_ptr, d_ptr, out_w_ptr, out_b_ptr, conv_ptr, ssm_ptr,
    batch, d_model, dt_rank, d_state, eps,
    x_row, res_row, skip_row, stream_row,
    conv_b_s, conv_d_s, conv_w_s, ssm_b_s, ssm_d_s, ssm_n_s,
    HAS_RES: tl.constexpr, HAS_SKIP: tl.constexpr, ADD_STREAM: tl.constexpr, STORE_STREAM: tl.constexpr,
    HAS_IN_BIAS: tl.constexpr, HAS_CONV_BIAS: tl.constexpr, HAS_OUT_BIAS: tl.constexpr, COMPLEX: tl.constexpr,
    D_INNER: tl.constexpr, WIDTH: tl.constexpr, CHUNKS: tl.constexpr, PHASE: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_K: tl.constexpr,
):  # pragma: no cover  (compiled)
    rows, chunk = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B), tl.program_id(1)
    offs_c = chunk * BLOCK_C + tl.arange(0, BLOCK_C)
    offs_m, offs_r = tl.arange(0, BLOCK_M), tl.arange(0, BLOCK_R)
    offs_n, offs_w = tl.arange(0, BLOCK_N), tl.arange(0, BLOCK_W)
    mask_b, mask_m, mask_r, mask_n = rows < batch, offs_m < d_model, offs_r < dt_rank, offs_n < d_state
    mask_c = offs_c < D_INNER
    mask_bm, mask_bc = mask_b[:, None] & mask_m[None, :], mask_b[:, None] & mask_c[None, :]
    acc_at = acc_ptr + rows[:, None] * d_model + offs_m[None, :]  # (rows, M) fp32: bias (+ s + skip) + out_proj
    x_at = xz_ptr + rows[:, None] * (2 * D_INNER) + offs_c[None, :]  # (rows, C) scratch: silu(conv); z after it
    part_at = part_ptr + rows[:, None] * (CHUNKS * BLOCK_P)  # (rows, chunk, P): x_proj's sums per chunk
    pair = 2 if COMPLEX else 1

    if PHASE != 2:  # s = x (+ residual), h = RMSNorm(s); in_proj, the conv window, x_proj over this chunk
        s = tl.load(x_ptr + rows[:, None] * x_row + offs_m[None, :], mask=mask_bm, other=0.0).to(tl.float32)
        if HAS_RES:
            s += tl.load(res_ptr + rows[:, None] * res_row + offs_m[None, :], mask=mask_bm, other=0.0).to(tl.float32)
        first = mask_bm & (chunk == 0)  # the row's chunk 0 writes what is per row
        if STORE_STREAM:
            stream = stream_ptr + rows[:, None] * stream_row + offs_m[None, :]
            tl.store(stream, s.to(stream_ptr.dtype.element_ty), mask=first)
        base = tl.zeros([BLOCK_B, BLOCK_M], dtype=tl.float32)
        if HAS_OUT_BIAS:
            base += tl.load(out_b_ptr + offs_m, mask=mask_m, other=0.0).to(tl.float32)[None, :]
        if ADD_STREAM:
            base += s
        if HAS_SKIP:
            base += tl.load(skip_ptr + rows[:, None] * skip_row + offs_m[None, :], mask=mask_bm,
                            other=0.0).to(tl.float32)
        tl.store(acc_at, base, mask=first)
        rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=1) / d_model + eps)
        h = s * rstd[:, None] * tl.load(norm_w_ptr + offs_m, mask=mask_m, other=0.0).to(tl.float32)[None, :]

        in_at = in_w_ptr + offs_c[None, :] * d_model + offs_m[:, None]
        mask_mc = mask_m[:, None] & mask_c[None, :]
        x_new = _matvec(h, tl.load(in_at, mask=mask_mc, other=0.0).to(tl.float32))  # (rows, C)
        z = _matvec(h, tl.load(in_at + D_INNER * d_model, mask=mask_mc, other=0.0).to(tl.float32))
        if HAS_IN_BIAS:
            x_new += tl.load(in_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
            z += tl.load(in_b_ptr + D_INNER + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        window_at = conv_ptr + rows[:, None, None] * conv_b_s + offs_c[None, :, None] * conv_d_s \
            + offs_w[None, None, :] * conv_w_s
        older = tl.load(window_at + conv_w_s, mask=mask_bc[:, :, None] & (offs_w < WIDTH - 1)[None, None, :],
                        other=0.0)  # the window moved left by one
        window = tl.where((offs_w == WIDTH - 1)[None, None, :], x_new.to(older.dtype)[:, :, None], older)
        conv_w = tl.load(conv_w_ptr + offs_c[:, None] * WIDTH + offs_w[None, :],
                         mask=mask_c[:, None] & (offs_w < WIDTH)[None, :], other=0.0).to(tl.float32)
        x = tl.sum(window.to(tl.float32) * conv_w[None, :, :], axis=2)
        if HAS_CONV_BIAS:
            x += tl.load(conv_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        x = x * tl.sigmoid(x)
        tl.debug_barrier()  # every thread has read the old window before any writes the new one
        tl.store(window_at, window, mask=mask_bc[:, :, None] & (offs_w < WIDTH)[None, None, :])
        tl.store(x_at, x, mask=mask_bc)
        tl.store(x_at + D_INNER, z, mask=mask_bc)
        offs_p = tl.arange(0, BLOCK_P)  # x_proj's rows: dt (R), then B and C (N each; (re, im) pairs if complex)
        mask_p = offs_p < dt_rank + 2 * pair * d_state
        w_p = tl.load(xp_w_ptr + offs_p[None, :] * D_INNER + offs_c[:, None], mask=mask_c[:, None] & mask_p[None, :],
                      other=0.0).to(tl.float32)  # (C, P)
        tl.store(part_at + chunk * BLOCK_P + offs_p[None, :], _matvec(x, w_p), mask=mask_b[:, None] & mask_p[None, :])
    if PHASE == 3:
        tl.debug_barrier()  # one program per row: it reads back what it wrote above

    if PHASE != 1:  # dt, B, C summed over the chunks; the state update, y = (C h + D x) silu(z), out += out_proj(y)
        offs_k = tl.arange(0, BLOCK_K)
        sums_at = part_at[:, :, None] + offs_k[None, :, None] * BLOCK_P  # (rows, chunks, 1)
        mask_k = mask_b[:, None, None] & (offs_k < CHUNKS)[None, :, None]
        b_rows = dt_rank + pair * offs_n
        c_rows = b_rows + pair * d_state
        mask_kn = mask_k & mask_n[None, None, :]
        dt_low = tl.sum(tl.load(sums_at + offs_r[None, None, :], mask=mask_k & mask_r[None, None, :], other=0.0), 1)
        b_re = tl.sum(tl.load(sums_at + b_rows[None, None, :], mask=mask_kn, other=0.0), axis=1)
        c_re = tl.sum(tl.load(sums_at + c_rows[None, None, :], mask=mask_kn, other=0.0), axis=1)
        x = tl.load(x_at, mask=mask_bc, other=0.0)
        z = tl.load(x_at + D_INNER, mask=mask_bc, other=0.0)
        w_dt = tl.load(dt_w_ptr + offs_c[None, :] * dt_rank + offs_r[:, None],
                       mask=mask_r[:, None] & mask_c[None, :], other=0.0).to(tl.float32)  # (R, C)
        dt = _matvec(dt_low, w_dt) + tl.load(dt_b_ptr + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
        dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)  # softplus, as F.softplus
        mask_cn = mask_c[:, None] & mask_n[None, :]
        a_at = offs_c[:, None] * d_state + offs_n[None, :]
        a_re = -tl.exp(tl.load(a_log_ptr + a_at, mask=mask_cn, other=0.0).to(tl.float32))
        state_at = ssm_ptr + rows[:, None, None] * ssm_b_s + offs_c[None, :, None] * ssm_d_s \
            + offs_n[None, None, :] * ssm_n_s
        mask_s = mask_bc[:, :, None] & mask_n[None, None, :]
        dt3 = dt[:, :, None]
        drive = (dt * x)[:, :, None]
        h_re = tl.load(state_at, mask=mask_s, other=0.0)
        if COMPLEX:  # exp(dt A) = e^(dt Re A) (cos(dt Im A) + i sin(dt Im A)); y = 2 Re(C h)
            b_im = tl.sum(tl.load(sums_at + (b_rows + 1)[None, None, :], mask=mask_kn, other=0.0), axis=1)
            c_im = tl.sum(tl.load(sums_at + (c_rows + 1)[None, None, :], mask=mask_kn, other=0.0), axis=1)
            a_im = tl.load(a_imag_ptr + a_at, mask=mask_cn, other=0.0).to(tl.float32)
            h_im = tl.load(state_at + 1, mask=mask_s, other=0.0)
            magnitude = tl.exp(dt3 * a_re[None, :, :])
            angle = dt3 * a_im[None, :, :]
            decay_re, decay_im = magnitude * tl.cos(angle), magnitude * tl.sin(angle)
            new_re = decay_re * h_re - decay_im * h_im + drive * b_re[:, None, :]
            new_im = decay_re * h_im + decay_im * h_re + drive * b_im[:, None, :]
            y = 2.0 * tl.sum(c_re[:, None, :] * new_re - c_im[:, None, :] * new_im, axis=2)
            tl.debug_barrier()
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
        tl.atomic_add(acc_at, _matvec(y, w_out), mask=mask_bm, sem="relaxed")


def chunk_width(d_model: int, d_inner: int, rows: int, complex_state: bool) -> int:
    """Inner channels per program: in_proj tiles (rows x d_model x chunk) of ~8K weights, a power of two;
    the complex update (a sin and a cos per state) at most d_inner / 8, so a row spreads over 8 programs."""
    chunk = max(16, 8192 // (rows * triton.next_power_of_2(d_model)))
    if complex_state:
        chunk = min(chunk, max(16, triton.next_power_of_2(d_inner) // 8))
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
    num_warps: int = 4,
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
    rows = rows_per_program
    chunk = block_c or chunk_width(d_model, d_inner, rows, complex_state=A_imag is not None)
    chunks, block_p = triton.cdiv(d_inner, chunk), triton.next_power_of_2(x_proj_weight.shape[0])
    acc = torch.empty_like(x, dtype=torch.float32)  # the output, summed over the chunks in fp32
    xz = torch.empty(batch, 2, d_inner, device=x.device, dtype=torch.float32)
    sums = torch.empty(batch, chunks, block_p, device=x.device, dtype=torch.float32)
    stream = None
    if residual_stream:
        stream = torch.empty_like(x, dtype=torch.float32 if residual_in_fp32 else x.dtype)
    ssm = torch.view_as_real(ssm_state) if ssm_state.is_complex() else ssm_state
    args = (
        x, x if residual is None else residual, x if skip is None else skip, acc, acc if stream is None else stream,
        xz, sums, norm_weight, in_proj_weight, x if in_proj_bias is None else in_proj_bias, conv_weight,
        x if conv_bias is None else conv_bias, x_proj_weight, dt_proj_weight, dt_proj_bias,
        A_log, A_log if A_imag is None else A_imag, D, out_proj_weight, x if out_proj_bias is None else out_proj_bias,
        conv_state, ssm,
        batch, d_model, dt_rank, d_state, norm_eps,
        x.stride(0), 0 if residual is None else residual.stride(0), 0 if skip is None else skip.stride(0),
        0 if stream is None else stream.stride(0),
        conv_state.stride(0), conv_state.stride(1), conv_state.stride(2), ssm.stride(0), ssm.stride(1), ssm.stride(2),
    )
    grid = (triton.cdiv(batch, rows), chunks)
    for phase in (3,) if chunks == 1 else (1, 2):  # one launch where one program holds a row's channels
        _mamba_layer_step_kernel[grid](
            *args,
            HAS_RES=residual is not None, HAS_SKIP=skip is not None, ADD_STREAM=not residual_stream,
            STORE_STREAM=residual_stream, HAS_IN_BIAS=in_proj_bias is not None, HAS_CONV_BIAS=conv_bias is not None,
            HAS_OUT_BIAS=out_proj_bias is not None, COMPLEX=A_imag is not None,
            D_INNER=d_inner, WIDTH=width, CHUNKS=chunks, PHASE=phase, BLOCK_B=rows,
            BLOCK_M=triton.next_power_of_2(d_model), BLOCK_C=chunk, BLOCK_R=triton.next_power_of_2(dt_rank),
            BLOCK_N=triton.next_power_of_2(d_state), BLOCK_W=triton.next_power_of_2(width),
            BLOCK_P=block_p, BLOCK_K=triton.next_power_of_2(chunks), num_warps=num_warps,
        )
    out = acc.to(x.dtype)  # the same tensor where x is fp32
    return (out, stream) if residual_stream else out
