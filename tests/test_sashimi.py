"""The SaShiMi U-Net: causality by perturbation, step = forward for every block kind, paths, presets' sizes."""

import pytest
import torch
import yaml

from seqmamba.generate import zero_state
from seqmamba.nn.sashimi import BLOCK_KINDS, DownPool, Sashimi, SashimiConfig, UpPool

KINDS = [(outer, outer) for outer in BLOCK_KINDS[:3]] + [("mamba", "s4d+mlp"), ("s4d+mlp", "attention+mlp")]


def tiny(outer="mamba", center="mamba", pool=(2, 3)) -> Sashimi:
    torch.manual_seed(0)
    config = SashimiConfig(d_model=8, n_layers=1, pool=list(pool), outer=outer, center=center, d_state=4,
                           s4d_state=8, n_heads=2, vocab_size=16)
    return Sashimi(config).eval()


def cache_tensors(state) -> list[torch.Tensor]:
    """Every tensor of a cache, in a fixed order."""
    found = []
    if isinstance(state, torch.Tensor):
        return [state]
    items = state.__dict__.values() if hasattr(state, "__dataclass_fields__") else state
    for part in items:
        found += cache_tensors(part)
    return found


@pytest.mark.parametrize("outer, center", KINDS)
def test_unet_is_causal(outer, center):
    model = tiny(outer, center)
    ids = torch.randint(0, 16, (1, 36))
    with torch.no_grad():
        base = model(ids)
        for t in (0, 1, 5, 6, 13, 29):  # inside windows and at pooling boundaries of 2 and 6
            changed = ids.clone()
            changed[0, t] = (ids[0, t] + 5) % 16
            out = model(changed)
            torch.testing.assert_close(out[:, :t], base[:, :t], rtol=0, atol=1e-5)  # FFT round-off for S4D
            assert (out[:, t] - base[:, t]).abs().max() > 1e-3  # the input of t shapes the prediction of t + 1


def test_pooling_pair_sees_only_earlier_windows():
    torch.manual_seed(0)
    down, up = DownPool(4, 2, 3), UpPool(8, 2, 3)
    x = torch.randn(2, 12, 4)
    base = up(down(x))
    assert base.shape == x.shape
    torch.testing.assert_close(base[:, :3], torch.zeros_like(base[:, :3]))  # the first window sees nothing
    for t in range(12):
        changed = x.clone()
        changed[:, t] += 1.0
        out = up(down(changed))
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=0)  # not even output t itself
        first_seen = (t // 3 + 1) * 3
        if first_seen < 12:
            assert not torch.allclose(out[:, first_seen], base[:, first_seen])


@pytest.mark.parametrize("outer, center", KINDS)
def test_step_equals_forward_over_several_pooling_periods(outer, center):
    model = tiny(outer, center)
    ids = torch.randint(0, 16, (2, 30))  # 5 center periods of 6 samples
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(2, max_len=30)
        steps = torch.stack([model.step(ids[:, t], cache, model.step_path(t)) for t in range(30)], 1)
        zero_state(cache)
        prefix = model.prefill(ids[:, :15], cache)  # 2 whole periods in parallel, 3 samples stepped
        rest = torch.stack([model.step(ids[:, t], cache, model.step_path(t)) for t in range(15, 30)], 1)
    torch.testing.assert_close(steps, full, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(prefix, full[:, 14], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(rest, full[:, 15:], rtol=1e-4, atol=1e-5)


def test_step_paths_and_state_stay_in_place():
    model = tiny("complex-mamba", "complex-mamba", pool=(4, 4))
    assert model.num_step_paths == 3
    assert [model.step_path(t) for t in range(32)] == ([0, 0, 0, 1] * 3 + [0, 0, 0, 2]) * 2
    cache = model.allocate_cache(2)
    before = [(t.data_ptr(), t.shape) for t in cache_tensors(cache)]
    with torch.no_grad():
        for t in range(20):
            model.step(torch.full((2,), 7), cache, model.step_path(t))
    assert [(t.data_ptr(), t.shape) for t in cache_tensors(cache)] == before  # CUDA graphs can replay on them
    assert all(t.abs().sum() > 0 for t in cache_tensors(cache) if t.is_floating_point() or t.is_complex())


@pytest.mark.parametrize("preset, paper_millions", [("sc09-mamba-6m", 6.1), ("sc09-mamba-24m", 24.3),
                                                     ("youtubemix-mamba-3.5m", 3.5)])
def test_presets_land_near_the_papers_sizes(preset, paper_millions):
    settings = yaml.safe_load(open(f"configs/audio/{preset}.yaml"))["model"]["unet"]
    with torch.device("meta"):
        parameters = Sashimi(SashimiConfig(**settings)).num_parameters()
    assert abs(parameters / 1e6 / paper_millions - 1) < 0.05


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="center must be one of mamba, complex-mamba"):
        SashimiConfig(center="transformer")
    with pytest.raises(ValueError, match="center only"):
        SashimiConfig(outer="attention+mlp")
