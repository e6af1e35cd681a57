"""RMSNorm with a fused residual add, forward and backward, as Triton kernels that tile many rows per program.

mamba-ssm's `rms_norm_fn` gives each program one row at a time, so at the LM's small widths (64..512) its
backward moves 0.4-0.8 TB/s on an H100 (pipelines/benchmarks/norm_kernels.py). Here a program holds a (BLOCK_M, BLOCK_N) tile of rows, the
backward programs sweep tiles persistently and keep their share of dweight in fp32 registers, and one
sum over the programs' partials finishes it. Dtypes follow mamba-ssm's (what autocast hands it: x bf16,
weight fp32): y in x's dtype; the residual stream in residual's dtype, else fp32 with residual_in_fp32,
else x's; each gradient in its input's dtype.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

MAX_WIDTH = 8192  # one row must fit one program's tile; wider rows go to mamba-ssm's kernel
TILE = 4096  # elements per tile, BLOCK_M rows of BLOCK_N columns: on the H100 within 3% of the best of
# 2048/4096/8192 elements x 4/8 warps x 4/8 programs per SM/one per tile, at widths 128, 256, 512


@triton.jit
def _rms_norm_fwd_kernel(
    x_ptr, res_ptr, w_ptr, y_ptr, res_out_ptr, rstd_ptr,
    M, N, eps, x_row, res_row, y_row, res_out_row,
    HAS_RESIDUAL: tl.constexpr, STORE_RESIDUAL_OUT: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # pragma: no cover  (compiled)
    rows = (tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    row_mask, col_mask = rows < M, cols < N
    mask = row_mask[:, None] & col_mask[None, :]
    s = tl.load(x_ptr + rows[:, None] * x_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        s += tl.load(res_ptr + rows[:, None] * res_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    if STORE_RESIDUAL_OUT:
        tl.store(res_out_ptr + rows[:, None] * res_out_row + cols[None, :], s, mask=mask)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=1) / N + eps)  # (BLOCK_M,)
    tl.store(rstd_ptr + rows, rstd, mask=row_mask)
    w = tl.load(w_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    y = s * rstd[:, None] * w[None, :]
    tl.store(y_ptr + rows[:, None] * y_row + cols[None, :], y, mask=mask)


@triton.jit
def _rms_norm_bwd_kernel(
    s_ptr, w_ptr, rstd_ptr, dy_ptr, dres_out_ptr, dx_ptr, dres_ptr, dw_partial_ptr,
    M, N, s_row, dy_row, dres_out_row, dx_row, dres_row, programs,
    HAS_DRES_OUT: tl.constexpr, STORE_DRES: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):  # pragma: no cover  (compiled)
    program = tl.program_id(0)
    cols = tl.arange(0, BLOCK_N)
    col_mask = cols < N
    w = tl.load(w_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)  # reduced over rows once, after the last tile
    tile = program
    while tile < tl.cdiv(M, BLOCK_M):  # tiles program, program + programs, ...: a while, as the CPU
        # interpreter cannot range over a runtime int
        rows = (tile * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
        row_mask = rows < M
        mask = row_mask[:, None] & col_mask[None, :]
        s = tl.load(s_ptr + rows[:, None] * s_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + rows[:, None] * dy_row + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(rstd_ptr + rows, mask=row_mask, other=0.0)
        s_hat = s * rstd[:, None]
        dw += dy * s_hat
        w_dy = dy * w[None, :]
        c = tl.sum(s_hat * w_dy, axis=1) / N
        ds = (w_dy - s_hat * c[:, None]) * rstd[:, None]
        if HAS_DRES_OUT:
            ds += tl.load(dres_out_ptr + rows[:, None] * dres_out_row + cols[None, :], mask=mask,
                          other=0.0).to(tl.float32)
        tl.store(dx_ptr + rows[:, None] * dx_row + cols[None, :], ds, mask=mask)
        if STORE_DRES:
            tl.store(dres_ptr + rows[:, None] * dres_row + cols[None, :], ds, mask=mask)
        tile += programs
    tl.store(dw_partial_ptr + program * N + cols, tl.sum(dw, axis=0), mask=col_mask)


def _tiling(n: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps) for rows of width n: TILE elements per tile, one row at the widest."""
    block_n = triton.next_power_of_2(n)
    return max(1, TILE // block_n), block_n, 4 if block_n <= TILE else 8


def _programs(device: torch.device, tiles: int) -> int:
    """How many persistent backward programs: a few per SM (two in the CPU interpreter), at most one per tile."""
    cuda = device.type == "cuda"
    return min(tiles, 8 * torch.cuda.get_device_properties(device).multi_processor_count if cuda else 2)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """(..., N) as (rows, N) with unit column stride, as the kernels index it."""
    t = t.reshape(-1, t.shape[-1])
    return t if t.stride(-1) == 1 else t.contiguous()


class RMSNormFn(torch.autograd.Function):
    """y = norm(x + residual) * weight, and the residual stream; backward takes gradients of both."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, residual: torch.Tensor | None, eps: float,
                prenorm: bool, residual_in_fp32: bool):
        shape = x.shape
        x2 = _rows(x)
        res2 = _rows(residual) if residual is not None else None
        M, N = x2.shape
        res_dtype = residual.dtype if residual is not None else (torch.float32 if residual_in_fp32 else x.dtype)
        store_res_out = residual is not None or res_dtype != x.dtype
        res_out = torch.empty(M, N, dtype=res_dtype, device=x.device) if store_res_out else x2
        y = torch.empty(M, N, dtype=x.dtype, device=x.device)
        rstd = torch.empty(M, dtype=torch.float32, device=x.device)
        weight = weight.contiguous()
        block_m, block_n, warps = _tiling(N)
        with torch.cuda.device_of(x):
            _rms_norm_fwd_kernel[(triton.cdiv(M, block_m),)](
                x2, res2, weight, y, res_out, rstd, M, N, eps, x2.stride(0),
                res2.stride(0) if res2 is not None else 0, y.stride(0), res_out.stride(0),
                HAS_RESIDUAL=res2 is not None, STORE_RESIDUAL_OUT=store_res_out, BLOCK_M=block_m,
                BLOCK_N=block_n, num_warps=warps)
        ctx.save_for_backward(res_out, weight, rstd)
        ctx.shape, ctx.x_dtype, ctx.has_residual, ctx.prenorm = shape, x.dtype, residual is not None, prenorm
        y = y.reshape(shape)
        return (y, res_out.reshape(shape)) if prenorm else y

    @staticmethod
    def backward(ctx, dy: torch.Tensor, *dres_out: torch.Tensor):
        s, weight, rstd = ctx.saved_tensors
        M, N = s.shape
        dy = _rows(dy)
        dres_out = _rows(dres_out[0]) if ctx.prenorm else None
        dx = torch.empty(M, N, dtype=ctx.x_dtype, device=s.device)
        store_dres = ctx.has_residual and s.dtype != dx.dtype
        dres = torch.empty(M, N, dtype=s.dtype, device=s.device) if store_dres else dx
        block_m, block_n, warps = _tiling(N)
        programs = _programs(s.device, triton.cdiv(M, block_m))
        dw_partial = torch.empty(programs, N, dtype=torch.float32, device=s.device)
        with torch.cuda.device_of(s):
            _rms_norm_bwd_kernel[(programs,)](
                s, weight, rstd, dy, dres_out, dx, dres, dw_partial, M, N, s.stride(0), dy.stride(0),
                dres_out.stride(0) if dres_out is not None else 0, dx.stride(0), dres.stride(0), programs,
                HAS_DRES_OUT=dres_out is not None, STORE_DRES=store_dres, BLOCK_M=block_m, BLOCK_N=block_n,
                num_warps=warps)
        dw = dw_partial.sum(0).to(weight.dtype)
        dres = dres.reshape(ctx.shape) if ctx.has_residual else None
        return dx.reshape(ctx.shape), dw, dres, None, None, None


def rms_norm_fused(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float = 1e-5,
    residual: torch.Tensor | None = None,
    prenorm: bool = False,
    residual_in_fp32: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """`seqmamba.ops.rms_norm` for rows up to MAX_WIDTH wide, at memory bandwidth on GPU."""
    return RMSNormFn.apply(x, weight, residual, eps, prenorm, residual_in_fp32)
