"""The decoding loop: exact log-likelihoods, greedy and nucleus sampling, seeds, and CUDA graphs = eager."""

import pytest
import torch

from seqmamba.generate import generate, sample_next
from seqmamba.nn import MambaLMConfig, MambaLMHeadModel
from seqmamba.nn.sashimi import Sashimi, SashimiConfig


def lm() -> MambaLMHeadModel:
    torch.manual_seed(0)
    return MambaLMHeadModel(MambaLMConfig(d_model=16, n_layer=2, vocab_size=9)).eval()


def unet(kind: str = "mamba") -> Sashimi:
    torch.manual_seed(0)
    return Sashimi(SashimiConfig(d_model=8, n_layers=1, pool=[2, 3], outer=kind, center=kind, d_state=4,
                                 vocab_size=32)).eval()


def teacher_forced_log_likelihood(model, prompt, tokens, vocab_size):
    """Sum of log p(token) read off one forward pass over prompt + tokens."""
    ids = torch.cat([prompt, tokens], 1)
    with torch.no_grad():
        log_probs = model(ids)[..., :vocab_size].log_softmax(-1)
    predicted = log_probs[:, prompt.shape[1] - 1: -1]
    return predicted.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(1).double()


@pytest.mark.parametrize("make, vocab", [(lm, 9), (unet, 32)])
def test_log_likelihood_is_exact(make, vocab):
    model = make()
    prompt = torch.randint(0, vocab, (3, 5))
    out = generate(model, prompt, 31, temperature=0.8, top_p=0.9, seed=1)
    assert out.tokens.shape == (3, 31) and out.tokens.max() < vocab  # padding ids of the LM never drawn
    torch.testing.assert_close(out.log_likelihood, teacher_forced_log_likelihood(model, prompt, out.tokens, vocab),
                               rtol=1e-5, atol=1e-4)


def test_seed_reproduces_and_temperature_zero_is_greedy():
    model = unet("complex-mamba")
    prompt = torch.zeros(2, 1, dtype=torch.long)
    a, b = (generate(model, prompt, 12, seed=3) for _ in range(2))
    assert torch.equal(a.tokens, b.tokens)
    greedy = generate(model, prompt, 12, temperature=0).tokens
    ids = prompt
    for _ in range(12):  # greedy by repeated full forward passes
        with torch.no_grad():
            ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(greedy, ids[:, 1:])


def test_sample_next_follows_the_distribution_and_top_p_truncates():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(20000, 4)
    token, log_prob = sample_next(logits)
    freq = torch.bincount(token, minlength=4) / 20000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.015, rtol=0)
    torch.testing.assert_close(log_prob, logits.gather(1, token[:, None]).squeeze(1))
    token, _ = sample_next(logits, top_p=0.7)  # 0.5 + 0.3 reach 0.7: the last two are cut
    assert set(token.tolist()) == {0, 1}
    assert set(sample_next(logits, top_p=1e-6)[0].tolist()) == {0}


@pytest.mark.cuda
@pytest.mark.parametrize("make, vocab", [(lm, 9), (unet, 32)])
def test_cuda_graphs_match_eager(make, vocab):
    model = make().cuda()
    prompt = torch.randint(0, vocab, (4, 7), device="cuda")
    eager = generate(model, prompt, 50, temperature=0, cuda_graphs=False)
    graphed = generate(model, prompt, 50, temperature=0, cuda_graphs=True)
    assert torch.equal(eager.tokens, graphed.tokens)
    torch.testing.assert_close(eager.log_likelihood, graphed.log_likelihood)
