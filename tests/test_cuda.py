"""On a GPU: mamba-ssm's kernels and the portable path agree on the same weights, forward and backward."""

import pytest
import torch

from seqmamba import ops
from seqmamba.nn import ComplexMamba, Mamba, MambaLMConfig, MambaLMHeadModel
from test_scan import make_inputs

pytestmark = pytest.mark.cuda


def both_backends(fn, *tensors):
    """fn's output and the gradients of tensors, once per backend, from identical leaves."""
    results = []
    for backend in ("cuda", "portable"):
        leaves = [t.detach().clone().requires_grad_() for t in tensors]
        with ops.force_backend(backend):
            out = fn(*leaves)
        first = out[0] if isinstance(out, tuple) else out
        grads = torch.autograd.grad(first, leaves, torch.ones_like(first) / first.numel() ** 0.5)
        results.append((out, grads))
    return results


@pytest.mark.parametrize("complex_a", [False, True])
def test_selective_scan_cuda_equals_portable(complex_a):
    u, delta, A, B, C, D, z, bias = (t.cuda() for t in make_inputs(complex_a, None, dim=64, N=16, L=777))
    (y_cuda, g_cuda), (y_port, g_port) = both_backends(
        lambda *a: ops.selective_scan(*a, delta_softplus=True, return_last_state=True), u, delta, A, B, C, D, z, bias)
    torch.testing.assert_close(y_cuda[0], y_port[0], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(y_cuda[1], y_port[1], rtol=1e-3, atol=1e-3)  # last state
    for got, want in zip(g_cuda, g_port):
        torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("mixer_cls", [Mamba, ComplexMamba])
def test_fused_mixer_equals_portable_on_same_weights(mixer_cls):
    torch.manual_seed(0)
    mixer = mixer_cls(d_model=64).cuda()
    x = torch.randn(2, 1000, 64, device="cuda")
    outputs, grads = [], []
    for backend in ("cuda", "portable"):
        mixer.zero_grad()
        with ops.force_backend(backend):
            y = mixer(x)
        y.square().mean().backward()
        outputs.append(y.detach())
        grads.append({k: p.grad.clone() for k, p in mixer.named_parameters()})
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-3, atol=1e-3)
    for key in grads[0]:
        torch.testing.assert_close(grads[0][key], grads[1][key], rtol=5e-3, atol=5e-4, msg=key)


@pytest.mark.parametrize("complex_ssm", [False, True])
def test_lm_step_equals_forward_on_cuda(complex_ssm):
    torch.manual_seed(0)
    model = MambaLMHeadModel(MambaLMConfig(d_model=64, n_layer=2, complex_ssm=complex_ssm)).cuda().eval()
    ids = torch.randint(4, 9, (4, 64), device="cuda")
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(4)
        steps = torch.stack([model.step(ids[:, t], cache) for t in range(64)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-3, atol=1e-3)


def test_lm_matches_mamba_ssm_model_on_same_weights():
    from mamba_ssm.models.config_mamba import MambaConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel as TheirLM

    torch.manual_seed(0)
    ours = MambaLMHeadModel(MambaLMConfig(d_model=64, n_layer=3)).cuda()
    theirs = TheirLM(MambaConfig(d_model=64, n_layer=3, vocab_size=9, ssm_cfg={"layer": "Mamba1"}, rms_norm=True,
                                 residual_in_fp32=True, fused_add_norm=True, pad_vocab_size_multiple=8)).cuda()
    theirs.load_state_dict(ours.state_dict())
    ids = torch.randint(4, 9, (2, 512), device="cuda")
    torch.testing.assert_close(ours(ids), theirs(ids).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("complex_ssm", [False, True])
def test_classifier_chunked_pass_equals_one_pass_on_cuda(complex_ssm):
    from seqmamba.nn.classifier import SequenceClassifier

    torch.manual_seed(0)
    model = SequenceClassifier(MambaLMConfig(d_model=64, n_layer=2, complex_ssm=complex_ssm), 4).cuda().eval()
    ids = torch.randint(4, 9, (3, 1000), device="cuda")
    lengths = torch.tensor([1000, 777, 130], device="cuda")
    with torch.no_grad():
        whole = model(ids, lengths)
        chunked = model.forward_chunked(ids, lengths, 256)  # the kernels' scan from zero, plus the carried state
    torch.testing.assert_close(chunked, whole, rtol=1e-3, atol=1e-3)
