"""Quantization: exact code round trips, stated reconstruction bounds, s4's per-clip scaling."""

import math

import numpy as np
import pytest
import torch

from seqmamba.data.quantize import (
    START_TOKEN,
    decode,
    encode,
    linear_decode,
    linear_encode,
    minmax_scale,
    mu_law_decode,
    mu_law_encode,
    start_token,
)

GRID = np.linspace(-1, 1, 200_001, dtype=np.float32)


@pytest.mark.parametrize("bits", [4, 8, 10])
def test_codes_survive_decode_then_encode_exactly(bits):
    codes = np.arange(1 << bits)
    assert np.array_equal(mu_law_encode(mu_law_decode(codes, bits), bits, scale=False), codes)
    assert np.array_equal(linear_encode(linear_decode(codes, bits), bits, scale=False), codes)


def test_linear_error_is_half_a_level():
    levels = 256
    error = np.abs(linear_decode(linear_encode(GRID, scale=False)) - GRID)
    assert error.max() <= 1.01 / levels


def test_mu_law_error_is_half_a_level_of_the_companded_scale():
    levels, mu = 256, 255
    error = np.abs(mu_law_decode(mu_law_encode(GRID, scale=False)) - GRID)
    bound = 1.01 * math.log1p(mu) / (mu * levels) * (1 + mu * np.abs(GRID)) * (1 + mu) ** (1 / levels)
    assert np.all(error <= bound)
    quiet = np.abs(GRID) < 0.01  # mu-law spends its levels on quiet samples: far finer than linear there
    assert error[quiet].max() < 0.2 / levels


def test_codes_span_the_range_and_silence_is_the_start_token():
    assert START_TOKEN == start_token(8) == 128
    codes = mu_law_encode(GRID, scale=False)
    assert codes.dtype == np.int64 and codes.min() == 0 and codes.max() == 255
    assert mu_law_encode(np.zeros(4, np.float32), scale=False).tolist() == [128] * 4
    assert linear_encode(np.zeros(4, np.float32), scale=False).tolist() == [128] * 4


def test_each_clip_is_min_max_scaled_on_its_own():
    rng = np.random.default_rng(0)
    clip = rng.normal(size=1000).astype(np.float32)
    assert np.array_equal(mu_law_encode(clip), mu_law_encode(0.01 * clip + 0.3))  # gain and offset do not matter
    batch = torch.from_numpy(np.stack([clip, 5 * clip]))
    codes = mu_law_encode(batch)
    assert isinstance(codes, torch.Tensor) and torch.equal(codes[0], codes[1])
    scaled = minmax_scale(clip)
    assert scaled.min() == -1 and scaled.max() == 1
    assert np.all(minmax_scale(np.full(5, 0.7, np.float32)) == 0)  # a constant clip is silence, not NaN


def test_names_pick_the_quantizer():
    codes = np.array([0, 100, 255])
    assert np.array_equal(decode(codes, "linear"), linear_decode(codes))
    assert np.array_equal(encode(GRID, "mu-law"), mu_law_encode(GRID))
    with pytest.raises(ValueError, match="quantization"):
        encode(GRID, "a-law")
