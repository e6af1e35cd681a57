"""The one-kernel layer step (Triton) equals the op-by-op `Block.step`: on CPU through Triton's interpreter, on GPU."""

import pytest
from triton_interpreter import run_in_interpreter

pytest.importorskip("triton")

CHECK = """
import torch
from seqmamba import ops
from seqmamba.nn.block import Block
from seqmamba.nn.mamba import ComplexMamba, Mamba
from seqmamba.ops.mamba_step import mamba_layer_step
device = "{device}"


def layer(mixer_cls, d_model, d_state, bias, residual_in_fp32):
    block = Block(d_model, mixer_cls(d_model, d_state=d_state, bias=bias), residual_in_fp32=residual_in_fp32)
    with torch.no_grad():
        for p in block.parameters():  # away from the init: every weight and state matters
            p.add_(0.1 * torch.randn_like(p))
    return block.to(device)


def caches(block, batch):
    conv_state, ssm_state = block.mixer.allocate_cache(batch)
    conv_state.normal_()
    ssm_state.copy_(0.5 * torch.randn_like(ssm_state))
    return (conv_state, ssm_state), (conv_state.clone(), ssm_state.clone())


def close(a, b):
    torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-4)


torch.manual_seed(0)
cases = {cases}  # (mixer, d_model, d_state, batch, in/out_proj bias)
for mixer_cls, d_model, d_state, batch, bias in cases:
    for rows in {rows}:
        for residual_in_fp32 in (True, False):
            block = layer(mixer_cls, d_model, d_state, bias, residual_in_fp32)
            weights = dict(norm_weight=block.norm.weight, norm_eps=block.norm.eps, **block.mixer.step_weights())
            x, residual, skip = (torch.randn(batch, d_model, device=device) for _ in range(3))
            with torch.no_grad(), ops.force_backend("pytorch"):
                (ref_cache, cache) = caches(block, batch)
                hidden, stream = block.step(x, residual, ref_cache)  # the LM's residual stream
                got_hidden, got_stream = mamba_layer_step(x, residual, None, *cache, residual_stream=True,
                                                          residual_in_fp32=residual_in_fp32, rows_per_program=rows,
                                                          **weights)
                close(got_hidden, hidden)
                close(got_stream, stream)
                assert got_stream.dtype == stream.dtype
                close(cache[0], ref_cache[0])
                close(cache[1], ref_cache[1])
                for extra_skip in (None, skip):  # the U-Net: x + mixer(norm(x)) (+ the up path's skip)
                    out = sum(block.step(x, None, ref_cache)) + (0 if extra_skip is None else extra_skip)
                    got = mamba_layer_step(x, None, extra_skip, *cache, residual_stream=False,
                                           rows_per_program=rows, **weights)
                    close(got, out)
                    close(cache[0], ref_cache[0])
                    close(cache[1], ref_cache[1])
print("ok")
"""


def test_fused_layer_step_equals_op_by_op_in_the_interpreter():
    cases = "[(Mamba, 12, 4, 1, True), (ComplexMamba, 12, 4, 3, False), (Mamba, 64, 16, 3, False), " \
            "(ComplexMamba, 64, 8, 3, True), (Mamba, 40, 4, 2, False)]"
    # d_model 12: not a power of two, dt_rank 1; real: one program per row (one launch), complex: 24 inner
    # channels in chunks of 16, the last partly masked (two launches); 64: one chunk (real, one row per
    # program), 2 (real, two rows) or 8 (complex); 40: 80 inner channels, with two rows per
    # program in chunks of 64 (the last partly masked)
    check = CHECK.format(device="cpu", cases=cases, rows="(1, 2)")  # one row per program (default), and two
    run_in_interpreter(check)


@pytest.mark.cuda
def test_fused_layer_step_equals_op_by_op_on_gpu():
    cases = "[(ComplexMamba, 12, 4, 3, True), (Mamba, 64, 16, 1, False), (ComplexMamba, 128, 8, 64, False), " \
            "(Mamba, 256, 16, 64, False), (ComplexMamba, 40, 4, 5, True)]"
    exec(CHECK.format(device="cuda", cases=cases, rows="(1,)"), {})


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["mamba", "complex-mamba"])
def test_unet_step_with_fused_layers_equals_forward(kind):
    import torch

    from seqmamba import ops
    from seqmamba.nn.sashimi import Sashimi, SashimiConfig

    torch.manual_seed(0)
    model = Sashimi(SashimiConfig(d_model=24, n_layers=2, pool=[3], outer=kind, center=kind, d_state=8,
                                  vocab_size=16)).cuda().eval()
    assert ops.fused_layer_step(torch.zeros(1, 48, device="cuda")) is not None
    ids = torch.randint(0, 16, (3, 18), device="cuda")
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(3, max_len=18)
        steps = torch.stack([model.step(ids[:, t], cache, model.step_path(t)) for t in range(18)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-3, atol=1e-4)
