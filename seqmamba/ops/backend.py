"""The one place that decides between mamba-ssm's CUDA kernels, the numba CPU scan and plain PyTorch.

Models never test for CUDA themselves: they call `seqmamba.ops`, which asks `use_kernels` (GPU)
and `use_numba` (CPU) here. The choice can be forced (tests, benchmarks, debugging) with
`force_backend` or the environment variable SEQMAMBA_BACKEND:
  auto      CUDA kernels on GPU tensors; elsewhere the portable scan, compiled by numba (forward and backward)
  portable  never the CUDA kernels; the numba scan still runs where it applies
  pytorch   plain PyTorch everywhere: the reference the others are checked against
  cuda      CUDA kernels, an error where they cannot run
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import torch

BACKENDS = ("auto", "portable", "pytorch", "cuda")


def _load_kernels() -> SimpleNamespace | None:
    """Import mamba-ssm and causal-conv1d once; None where they are not installed or do not load."""
    try:
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
        from mamba_ssm.ops.selective_scan_interface import mamba_inner_fn, selective_scan_fn
        from mamba_ssm.ops.triton.layer_norm import rms_norm_fn
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update

        from seqmamba.ops.complex_state_update import complex_state_update  # ours: mamba-ssm's step is real-only
        from seqmamba.ops.mamba_step import MAX_WIDTH as mamba_layer_step_max_width
        from seqmamba.ops.mamba_step import mamba_layer_step  # ours: a whole layer's decoding step, one kernel
        from seqmamba.ops.triton_norm import MAX_WIDTH as rms_norm_fused_max_width  # ours: rows per program
        from seqmamba.ops.triton_norm import rms_norm_fused
    except Exception:  # ImportError, or an extension built for another torch (OSError, RuntimeError)
        return None
    return SimpleNamespace(
        causal_conv1d_fn=causal_conv1d_fn,
        causal_conv1d_update=causal_conv1d_update,
        mamba_inner_fn=mamba_inner_fn,
        selective_scan_fn=selective_scan_fn,
        rms_norm_fn=rms_norm_fn,
        rms_norm_fused=rms_norm_fused,
        rms_norm_fused_max_width=rms_norm_fused_max_width,
        selective_state_update=selective_state_update,
        complex_state_update=complex_state_update,
        mamba_layer_step=mamba_layer_step,
        mamba_layer_step_max_width=mamba_layer_step_max_width,
    )


def _load_numba_scan() -> tuple[Callable | None, Callable | None]:
    """The numba-compiled CPU scan: its forward, and its forward with a compiled backward; None where numba
    is not installed or does not load."""
    try:
        from seqmamba.ops.numba_scan import selective_scan_numba, selective_scan_numba_grad
    except Exception:  # ImportError, or numba built for another numpy
        return None, None
    return selective_scan_numba, selective_scan_numba_grad


KERNELS = _load_kernels()
NUMBA_SCAN, NUMBA_SCAN_GRAD = _load_numba_scan()
_forced = os.environ.get("SEQMAMBA_BACKEND", "auto")
if _forced not in BACKENDS:
    raise ValueError(f"SEQMAMBA_BACKEND={_forced!r}: expected one of {', '.join(BACKENDS)}")


def kernels_available() -> bool:
    """Whether mamba-ssm's and causal-conv1d's CUDA kernels are importable here."""
    return KERNELS is not None


def current_backend() -> str:
    """The forced backend, or 'auto'."""
    return _forced


def use_kernels(*tensors: torch.Tensor | None) -> bool:
    """True where the CUDA kernels should run on these tensors (all on a CUDA device, kernels present)."""
    if _forced in ("portable", "pytorch"):
        return False
    ok = KERNELS is not None and all(t.is_cuda for t in tensors if t is not None)
    if _forced == "cuda" and not ok:
        raise RuntimeError("backend forced to 'cuda' but mamba-ssm's kernels are missing or the tensors are not on a GPU")
    return ok


def use_numba(*tensors: torch.Tensor | None) -> bool:
    """True where the numba scan forward should run: numba present, all tensors on the CPU, not forced off."""
    on_cpu = all(t.device.type == "cpu" for t in tensors if t is not None)
    return NUMBA_SCAN is not None and _forced != "pytorch" and on_cpu


def fused_layer_step(x: torch.Tensor, *tensors: torch.Tensor | None) -> Callable | None:
    """The one-kernel Mamba layer step (`mamba_step`) where the CUDA kernels apply and x (B, d_model) is
    narrow enough to gain from it; None where the layer steps op by op."""
    if not use_kernels(x, *tensors) or x.shape[-1] > KERNELS.mamba_layer_step_max_width:
        return None
    return KERNELS.mamba_layer_step


@contextlib.contextmanager
def force_backend(name: str) -> Iterator[None]:
    """Run a block with the backend forced to 'portable', 'pytorch' or 'cuda' ('auto' restores the default)."""
    global _forced
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")
    previous, _forced = _forced, name
    try:
        yield
    finally:
        _forced = previous
