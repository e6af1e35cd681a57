"""The fused complex-A decoding step (Triton) equals the portable step: on CPU through Triton's interpreter."""

import pytest
from triton_interpreter import run_in_interpreter

pytest.importorskip("triton")

CHECK = """
import torch
from seqmamba.ops import pairs_to_complex
from seqmamba.ops.complex_state_update import complex_state_update
from seqmamba.ops.portable_scan import selective_state_update_portable
device = "{device}"
torch.manual_seed(0)
for batch, dim, dstate, extras in ((3, 70, 8, True), (2, 16, 16, False), (1, 5, 3, True)):
    state = torch.randn(batch, dim, dstate, dtype=torch.complex64, device=device)
    x, dt, z = (torch.randn(batch, dim, device=device) for _ in range(3))
    A = torch.complex(-torch.rand(dim, dstate, device=device), 3 * torch.randn(dim, dstate, device=device))
    bc = torch.randn(batch, 4 * dstate, device=device)  # x_proj's (re, im) columns, as ComplexMamba.step slices them
    B, C = pairs_to_complex(bc[:, : 2 * dstate]), pairs_to_complex(bc[:, 2 * dstate:])
    D, bias = torch.randn(dim, device=device), torch.randn(dim, device=device)
    kwargs = dict(D=D, z=z, dt_bias=bias, dt_softplus=True) if extras else {{}}  # else: raw positive steps
    dt = dt if extras else dt.sigmoid()
    expected_state, fused_state = state.clone(), state.clone()
    expected = selective_state_update_portable(expected_state, x, dt, A, B, C, **kwargs)
    fused = complex_state_update(fused_state, x, dt, A, B, C, **kwargs)
    torch.testing.assert_close(fused, expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fused_state, expected_state, rtol=1e-4, atol=1e-4)
print("ok")
"""


def test_fused_step_equals_portable_step_in_the_interpreter():
    run_in_interpreter(CHECK.format(device="cpu"))


@pytest.mark.cuda
def test_fused_step_equals_portable_step_on_gpu():
    exec(CHECK.format(device="cuda"), {})
