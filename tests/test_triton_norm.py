"""The fused RMSNorm + residual kernels equal ops/norm.py's PyTorch path: on CPU through Triton's interpreter."""

import pytest
from triton_interpreter import run_in_interpreter

pytest.importorskip("triton")

CHECK = """
import torch
from seqmamba.ops import force_backend, rms_norm
from seqmamba.ops.triton_norm import rms_norm_fused
device = "{device}"
torch.manual_seed(0)
cases = (  # shape, x dtype, with residual, prenorm, residual_in_fp32
    ((2, 19, 64), torch.float32, True, True, True),
    ((37, 300), torch.float32, True, True, False),  # non-power-of-two width, more tiles than programs
    ((37, 300), torch.float32, False, True, True),
    ((5, 96), torch.float32, False, True, False),  # the residual stream is x itself
    ((9, 96), torch.float32, True, False, False),
    ((3, 5000), torch.float32, True, True, True),  # one row per tile
    ((4, 33, 200), torch.bfloat16, True, True, True),  # as the LM under autocast: x bf16, residual fp32
    ((4, 33, 200), torch.bfloat16, False, True, True),
)
for shape, dtype, with_residual, prenorm, fp32 in cases:
    x = torch.randn(shape, device=device).to(dtype).requires_grad_()
    weight = (1 + 0.1 * torch.randn(shape[-1], device=device)).requires_grad_()
    residual = torch.randn(shape, device=device).requires_grad_() if with_residual else None
    leaves = [t for t in (x, weight, residual) if t is not None]
    fused = rms_norm_fused(x, weight, 1e-5, residual, prenorm, fp32)
    with force_backend("pytorch"):
        expected = rms_norm(x, weight, 1e-5, residual, prenorm, fp32)
    fused, expected = (fused, expected) if prenorm else ((fused,), (expected,))
    grads_out = [torch.randn_like(t) for t in expected]  # dy and, with prenorm, d(residual stream)
    for got, want in zip(fused, expected):
        assert got.dtype == want.dtype and got.shape == want.shape, (shape, got.dtype, want.dtype)
        torch.testing.assert_close(got, want)
    for got, want in zip(torch.autograd.grad(fused, leaves, grads_out),
                         torch.autograd.grad(expected, leaves, grads_out)):
        assert got.dtype == want.dtype, (shape, got.dtype, want.dtype)
        tolerance = {{"rtol": 1e-4, "atol": 1e-4}} if got.dtype == torch.float32 else {{}}  # bf16: one rounding apart
        torch.testing.assert_close(got, want, **tolerance)
print("ok")
"""


def test_fused_norm_equals_pytorch_path_in_the_interpreter():
    run_in_interpreter(CHECK.format(device="cpu"))


@pytest.mark.cuda
def test_fused_norm_equals_pytorch_path_on_gpu():
    exec(CHECK.format(device="cuda"), {})


@pytest.mark.cuda
def test_fused_norm_matches_mamba_ssm_in_bf16():
    """As the LM calls it under autocast (x bf16, weight and residual fp32), ours and mamba-ssm's agree."""
    import torch
    from mamba_ssm.ops.triton.layer_norm import rms_norm_fn

    from seqmamba import ops
    from seqmamba.ops.triton_norm import rms_norm_fused

    torch.manual_seed(0)
    for rows, width, with_residual in ((4096, 128, True), (1000, 384, False)):  # few: mamba-ssm autotunes per width
        x = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        weight = (1 + 0.1 * torch.randn(width, device="cuda")).requires_grad_()
        residual = torch.randn(rows, width, device="cuda", requires_grad=True) if with_residual else None
        leaves = [t for t in (x, weight, residual) if t is not None]
        ours = rms_norm_fused(x, weight, 1e-5, residual, True, True)
        theirs = rms_norm_fn(x, weight, None, residual=residual, eps=1e-5, prenorm=True, residual_in_fp32=True)
        routed = ops.rms_norm(x, weight, 1e-5, residual, True, True)
        grads_out = [torch.randn_like(t) for t in ours]
        for got, want, via_ops in zip(ours, theirs, routed):
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want)
            torch.testing.assert_close(via_ops, got, rtol=0, atol=0)
        for got, want in zip(torch.autograd.grad(ours, leaves, grads_out),
                             torch.autograd.grad(theirs, leaves, grads_out)):
            assert got.dtype == want.dtype
            tolerance = {"rtol": 1e-4, "atol": 1e-3} if got.dtype == torch.float32 else {}  # summed in other orders
            torch.testing.assert_close(got, want, **tolerance)
