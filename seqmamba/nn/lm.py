"""Mamba language model: embedding, N residual Mamba blocks, final norm, tied head.

Module names follow `mamba_ssm.models.mixer_seq_simple.MambaLMHeadModel` (backbone.embedding,
backbone.layers.i.{mixer,norm}, backbone.norm_f, lm_head), so checkpoints move between the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from seqmamba.nn.block import Block
from seqmamba.nn.mamba import ComplexMamba, Mamba, MixerCache
from seqmamba.nn.norm import RMSNorm


@dataclass
class MambaLMConfig:
    """Size and shape of a Mamba LM; the YAML presets in configs/models/ are instances of it."""

    d_model: int = 128
    n_layer: int = 12
    vocab_size: int = 9
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    complex_ssm: bool = False
    residual_in_fp32: bool = True
    pad_vocab_size_multiple: int = 8
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    activation_checkpointing: bool = False  # training only: blocks recomputed in backward; same results, less memory

    def __post_init__(self) -> None:
        """Sizes a Mamba LM cannot have, each named by its field."""
        for name in ("d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand", "pad_vocab_size_multiple"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be positive, got {self.norm_eps}")

    @property
    def padded_vocab_size(self) -> int:
        """Vocabulary rounded up as mamba-ssm does, so the head's matmul is aligned."""
        m = self.pad_vocab_size_multiple
        return math.ceil(self.vocab_size / m) * m


class MixerModel(nn.Module):
    """The backbone: token ids (B, L) -> normalised hidden states (B, L, d_model)."""

    def __init__(self, config: MambaLMConfig) -> None:
        super().__init__()
        self.config = config
        mixer_cls = ComplexMamba if config.complex_ssm else Mamba
        self.embedding = nn.Embedding(config.padded_vocab_size, config.d_model)
        self.layers = nn.ModuleList(
            Block(config.d_model,
                  mixer_cls(config.d_model, d_state=config.d_state, d_conv=config.d_conv, expand=config.expand),
                  residual_in_fp32=config.residual_in_fp32, eps=config.norm_eps)
            for _ in range(config.n_layer)
        )
        self.norm_f = RMSNorm(config.d_model, config.norm_eps)

    def forward(self, input_ids: torch.Tensor, cache: list[MixerCache] | None = None,
                carry: bool = False) -> torch.Tensor:
        """ids (B, L) -> hidden (B, L, D); with `carry`, continuing from the cache's states (one chunk of many)."""
        hidden_states, residual = self.embedding(input_ids), None
        recompute = (self.config.activation_checkpointing and self.training and cache is None
                     and torch.is_grad_enabled())
        for i, layer in enumerate(self.layers):
            if recompute:  # keep only each block's inputs; its activations are rebuilt in backward
                hidden_states, residual = checkpoint(layer, hidden_states, residual, use_reentrant=False)
            else:
                hidden_states, residual = layer(hidden_states, residual, None if cache is None else cache[i], carry)
        return self.norm_f(hidden_states, residual, residual_in_fp32=self.config.residual_in_fp32)

    def step(self, input_ids: torch.Tensor, cache: list[MixerCache]) -> torch.Tensor:
        """One token per sequence: ids (B,) -> hidden (B, d_model)."""
        hidden_states, residual = self.embedding(input_ids), None
        for layer, layer_cache in zip(self.layers, cache):
            hidden_states, residual = layer.decode_step(hidden_states, residual, layer_cache)
        return self.norm_f(hidden_states, residual, residual_in_fp32=self.config.residual_in_fp32)


class MambaLMHeadModel(nn.Module):
    """Backbone plus a (tied) linear head over the vocabulary: next-token logits."""

    def __init__(self, config: MambaLMConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = MixerModel(config)
        self.lm_head = nn.Linear(config.d_model, config.padded_vocab_size, bias=False)
        self.apply(self._init_weights)
        if config.tie_embeddings:
            self.lm_head.weight = self.backbone.embedding.weight

    def _init_weights(self, module: nn.Module) -> None:
        """mamba-ssm's init: small embeddings, zero biases, out_proj scaled by 1/sqrt(n_layer) (GPT-2)."""
        if isinstance(module, nn.Linear) and module.bias is not None and not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, Mamba):
            nn.init.kaiming_uniform_(module.out_proj.weight, a=math.sqrt(5))
            with torch.no_grad():
                module.out_proj.weight /= math.sqrt(self.config.n_layer)

    def forward(self, input_ids: torch.Tensor, cache: list[MixerCache] | None = None) -> torch.Tensor:
        """ids (B, L) -> logits (B, L, padded vocab); with a cache, leaves the final states in it."""
        return self.lm_head(self.backbone(input_ids, cache))

    def step(self, input_ids: torch.Tensor, cache: list[MixerCache]) -> torch.Tensor:
        """ids (B,) -> logits (B, padded vocab) for the next token, advancing the cache."""
        return self.lm_head(self.backbone.step(input_ids, cache))

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> list[MixerCache]:
        """One (conv_state, ssm_state) per layer, zeroed: the whole recurrent state of the model."""
        return [layer.mixer.allocate_cache(batch_size, dtype) for layer in self.backbone.layers]

    def num_parameters(self) -> int:
        """Distinct parameters (the tied head counted once)."""
        return sum(p.numel() for p in self.parameters())
