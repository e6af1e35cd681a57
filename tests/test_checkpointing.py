"""Activation checkpointing per block: the same loss and gradients as without, with far fewer saved activations."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from seqmamba.nn import MambaLMConfig, MambaLMHeadModel


def twin_models(complex_ssm: bool) -> tuple[MambaLMHeadModel, MambaLMHeadModel]:
    """Two LMs with the same weights, the second with activation checkpointing on."""
    config = MambaLMConfig(d_model=16, n_layer=3, d_state=4, complex_ssm=complex_ssm)
    torch.manual_seed(0)
    plain = MambaLMHeadModel(config)
    recomputed = MambaLMHeadModel(dataclasses.replace(config, activation_checkpointing=True))
    recomputed.load_state_dict(plain.state_dict())
    return plain.train(), recomputed.train()


def loss_of(model: MambaLMHeadModel, ids: torch.Tensor) -> torch.Tensor:
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), ids[:, 1:].flatten())


def saved_bytes(model: MambaLMHeadModel, ids: torch.Tensor) -> int:
    """Bytes of the tensors autograd keeps for backward during one forward."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_of(model, ids)
    return total


@pytest.mark.parametrize("complex_ssm", [False, True])
def test_same_loss_and_gradients(complex_ssm):
    plain, recomputed = twin_models(complex_ssm)
    ids = torch.randint(9, (2, 65), generator=torch.Generator().manual_seed(1))
    losses = [loss_of(model, ids) for model in (plain, recomputed)]
    losses[0].backward()
    losses[1].backward()
    torch.testing.assert_close(losses[1], losses[0], rtol=0, atol=0)
    for (name, a), b in zip(plain.named_parameters(), recomputed.parameters()):
        assert b.grad is not None, name
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-7, msg=name)


def test_keeps_only_block_inputs():
    plain, recomputed = twin_models(False)
    ids = torch.randint(9, (2, 257), generator=torch.Generator().manual_seed(2))
    kept, full = saved_bytes(recomputed, ids), saved_bytes(plain, ids)
    assert kept < full / 4


def test_off_outside_training():
    """Evaluation and decoding (eval mode, no grad, a cache) run the blocks plainly, saving nothing extra."""
    plain, recomputed = twin_models(False)
    ids = torch.randint(9, (1, 33), generator=torch.Generator().manual_seed(3))
    recomputed.eval()
    assert saved_bytes(recomputed, ids) == saved_bytes(plain.eval(), ids)
    with torch.no_grad():
        torch.testing.assert_close(recomputed(ids), plain(ids))
