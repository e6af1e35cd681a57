"""Waveforms to integer codes and back: mu-law and linear, as state-spaces/s4 quantizes SaShiMi's audio.

Encoding follows s4 (`src/dataloaders/audio.py`) code for code: each clip is min-max scaled to
[-1, 1] over its last axis, mu-law compressed (mu = 2**bits - 1) or kept linear, mapped to [0, 1]
and cut into 2**bits levels as floor(y * (Q - 0.01) + 0.005). Decoding returns each level's centre,
so encode(decode(codes)) == codes exactly and |decode(encode(x)) - x| is about half a level at most
(x already in [-1, 1], 8 bits; s4's 0.01 guard widens levels by under 1%): 1.01 / Q for linear,
1.01 * ln(1 + mu) / (mu Q) * (1 + mu |x|) * (1 + mu)**(1/Q) for mu-law.
Functions take and return numpy arrays or torch tensors alike (returning what they were given).
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar, get_args

import numpy as np
import torch

Quantization = Literal["mu-law", "linear"]
QUANTIZATIONS = get_args(Quantization)
START_TOKEN = 128  # the code of silence at 8 bits: the first input of every autoregressive sequence
_EPSILON = 0.01  # s4's guard that keeps y = 1 inside the top level
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def start_token(bits: int = 8) -> int:
    """The code of 0.0 (silence) at any bit depth: 2**(bits - 1)."""
    return 1 << (bits - 1)


def minmax_scale(x: Array) -> Array:
    """Stretch each clip (last axis) to span [-1, 1] exactly, as s4 does before quantizing; constant clips -> 0."""
    t = _tensor(x).float()
    low, high = t.amin(dim=-1, keepdim=True), t.amax(dim=-1, keepdim=True)
    span = high - low
    scaled = torch.where(span > 0, 2 * (t - low) / span.clamp_min(1e-12) - 1, torch.zeros_like(t))
    return _like(x, scaled)


def mu_law_encode(x: Array, bits: int = 8, scale: bool = True) -> Array:
    """Mu-law codes (int64 in [0, 2**bits)) of a waveform; scale=False expects x already in [-1, 1]."""
    t = _tensor(minmax_scale(x) if scale else x).float().clamp(-1, 1)
    mu = (1 << bits) - 1
    compressed = torch.sign(t) * torch.log1p(mu * t.abs()) / math.log1p(mu)
    return _like(x, _levels((compressed + 1) / 2, bits))


def mu_law_decode(codes: Array, bits: int = 8) -> Array:
    """Waveform (float32 in [-1, 1]) at the centre of each mu-law code's level."""
    y = _centres(_tensor(codes), bits)
    mu = (1 << bits) - 1
    return _like(codes, torch.sign(y) * torch.expm1(y.abs() * math.log1p(mu)) / mu)


def linear_encode(x: Array, bits: int = 8, scale: bool = True) -> Array:
    """Linear codes (int64 in [0, 2**bits)) of a waveform; scale=False expects x already in [-1, 1]."""
    t = _tensor(minmax_scale(x) if scale else x).float().clamp(-1, 1)
    return _like(x, _levels((t + 1) / 2, bits))


def linear_decode(codes: Array, bits: int = 8) -> Array:
    """Waveform (float32 in [-1, 1]) at the centre of each linear code's level."""
    return _like(codes, _centres(_tensor(codes), bits))


def encode(x: Array, quantization: str = "mu-law", bits: int = 8, scale: bool = True) -> Array:
    """Codes of a waveform by the quantization's name (one of QUANTIZATIONS), as configs name it."""
    return _pick(quantization)[0](x, bits=bits, scale=scale)


def decode(codes: Array, quantization: str = "mu-law", bits: int = 8) -> Array:
    """Waveform of codes by the quantization's name (one of QUANTIZATIONS)."""
    return _pick(quantization)[1](codes, bits=bits)


def _pick(quantization: str):
    if quantization == "mu-law":
        return mu_law_encode, mu_law_decode
    if quantization == "linear":
        return linear_encode, linear_decode
    raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")


def _levels(unit: torch.Tensor, bits: int) -> torch.Tensor:
    """Values in [0, 1] -> integer levels, exactly as s4's `quantize`."""
    levels = 1 << bits
    return (unit * (levels - _EPSILON) + _EPSILON / 2).long().clamp(0, levels - 1)


def _centres(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer levels -> the centre of each level on [-1, 1]."""
    levels = 1 << bits
    return (codes.float() + 0.5) * (2 / levels) - 1


def _tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def _like(original: np.ndarray | torch.Tensor, result: torch.Tensor):
    return result if isinstance(original, torch.Tensor) else result.numpy()
