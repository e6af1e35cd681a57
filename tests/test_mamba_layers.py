"""Mixers and the LM: `step` token by token equals `forward`; state dicts match mamba-ssm's names."""

import pytest
import torch

from seqmamba.nn import ComplexMamba, Mamba, MambaLMConfig, MambaLMHeadModel


@pytest.mark.parametrize("batch", [3, 1])  # batch 1 with dt_rank 1: B, C start at an odd offset of x_proj's row
@pytest.mark.parametrize("mixer_cls", [Mamba, ComplexMamba])
def test_mixer_step_equals_forward(mixer_cls, batch):
    torch.manual_seed(0)
    mixer = mixer_cls(d_model=16, d_state=8).eval()
    x = torch.randn(batch, 25, 16)
    with torch.no_grad():
        full = mixer(x)
        cache = mixer.allocate_cache(batch)
        steps = torch.stack([mixer.step(x[:, t], cache) for t in range(25)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("complex_ssm", [False, True])
def test_lm_prefill_then_step_equals_forward(complex_ssm):
    torch.manual_seed(0)
    model = MambaLMHeadModel(MambaLMConfig(d_model=32, n_layer=3, complex_ssm=complex_ssm)).eval()
    ids = torch.randint(4, 9, (2, 40))
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(2)
        prefix = model(ids[:, :17], cache)  # prefill leaves the recurrent state in the cache
        rest = torch.stack([model.step(ids[:, t], cache) for t in range(17, 40)], 1)
    torch.testing.assert_close(prefix, full[:, :17])
    torch.testing.assert_close(rest, full[:, 17:], rtol=1e-4, atol=1e-5)


def test_complex_mixer_uses_s4d_lin_init_and_complex_state():
    mixer = ComplexMamba(d_model=8, d_state=4)
    A = mixer.A()
    assert A.is_complex()
    torch.testing.assert_close(A[0], torch.complex(torch.full((4,), -0.5), torch.pi * torch.arange(4.0)))
    assert mixer.x_proj.out_features == mixer.dt_rank + 4 * 4  # (re, im) for every state of B and C
    assert mixer.allocate_cache(2)[1].dtype == torch.complex64


def test_presets_have_the_papers_sizes():
    assert round(MambaLMHeadModel(MambaLMConfig(d_model=128, n_layer=12)).num_parameters() / 1e6, 1) == 1.4
    assert round(MambaLMHeadModel(MambaLMConfig(d_model=256, n_layer=16)).num_parameters() / 1e6, 1) == 7.0


def test_head_is_tied_and_vocab_padded():
    model = MambaLMHeadModel(MambaLMConfig(d_model=16, n_layer=1, vocab_size=9))
    assert model.lm_head.weight is model.backbone.embedding.weight
    assert model.lm_head.out_features == 16


def test_state_dict_loads_into_mamba_ssm_both_ways():
    mamba_simple = pytest.importorskip("mamba_ssm.modules.mamba_simple")
    ours = Mamba(d_model=32)
    theirs = mamba_simple.Mamba(d_model=32)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())
    ours.load_state_dict(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert value.shape == ours.state_dict()[key].shape, key
