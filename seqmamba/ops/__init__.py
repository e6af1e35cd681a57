"""Selective scan and causal conv: mamba-ssm's CUDA kernels when present, portable PyTorch otherwise."""

from seqmamba.ops.backend import current_backend, force_backend, fused_layer_step, kernels_available, use_kernels
from seqmamba.ops.conv import causal_conv1d, causal_conv1d_update
from seqmamba.ops.norm import rms_norm
from seqmamba.ops.portable_scan import pairs_to_complex, selective_scan_portable, selective_state_update_portable
from seqmamba.ops.scan import (
    mamba_inner,
    selective_scan,
    selective_state_update,
    split_projection,
)

__all__ = [
    "causal_conv1d",
    "causal_conv1d_update",
    "current_backend",
    "force_backend",
    "fused_layer_step",
    "kernels_available",
    "mamba_inner",
    "pairs_to_complex",
    "rms_norm",
    "selective_scan",
    "selective_scan_portable",
    "selective_state_update",
    "selective_state_update_portable",
    "split_projection",
    "use_kernels",
]
