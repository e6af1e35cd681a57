"""Sequence classifier: the Mamba LM backbone, a pooling over positions, and a linear head over classes.

The backbone is causal, so a right-padded batch gives every read exactly its unpadded hidden
states: pooling then reads only each read's own positions (mean over them, or its last one).
"""

from __future__ import annotations

import os
from dataclasses import asdict, is_dataclass

import torch
import torch.nn as nn

from seqmamba.training.checkpoints import load_checkpoint
from seqmamba.errors import InputError
from seqmamba.nn.lm import MambaLMConfig, MambaLMHeadModel

POOLINGS = ("mean", "last")
_SHAPE_FIELDS = ("d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand", "complex_ssm")


def pool(hidden: torch.Tensor, lengths: torch.Tensor | None, pooling: str) -> torch.Tensor:
    """(B, L, D) hidden states -> (B, D): mean over each sequence's first `lengths` positions, or its last one."""
    if lengths is None:
        return hidden.mean(dim=1) if pooling == "mean" else hidden[:, -1]
    if pooling == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths - 1]
    mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]  # (B, L)
    return (hidden * mask[..., None]).sum(dim=1) / lengths[:, None].to(hidden.dtype)


class SequenceClassifier(nn.Module):
    """Token ids (B, L) -> class logits (B, C), from a Mamba backbone initialised as the LM's."""

    def __init__(self, config: MambaLMConfig, num_classes: int, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise InputError("config", f"model.pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.config, self.pooling = config, pooling
        self.backbone = MambaLMHeadModel(config).backbone  # the LM's init, without its head
        self.head = nn.Linear(config.d_model, num_classes)

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """lengths (B,): real length of each right-padded row; None when no row is padded."""
        hidden = self.backbone(input_ids)  # (B, L, D)
        return self.head(pool(hidden, lengths, self.pooling).to(self.head.weight.dtype))  # (B, C)

    def forward_chunked(self, input_ids: torch.Tensor, lengths: torch.Tensor, chunk_len: int) -> torch.Tensor:
        """As `forward`, reading `chunk_len` positions at a time with the SSM state carried: memory of one chunk.

        The same logits as one pass (up to rounding): the state carries everything a later position
        sees, and pooling accumulates over chunks (a mean over each row's first `lengths` positions,
        or its last one). Rows are right-padded; padding comes after a row's end, so it changes nothing.
        """
        batch = input_ids.shape[0]
        cache = [layer.mixer.allocate_cache(batch) for layer in self.backbone.layers]
        pooled = torch.zeros(batch, self.config.d_model, device=input_ids.device)  # (B, D) float32
        for start in range(0, input_ids.shape[1], chunk_len):
            hidden = self.backbone(input_ids[:, start : start + chunk_len], cache, carry=True).float()  # (B, l, D)
            positions = start + torch.arange(hidden.shape[1], device=hidden.device)  # (l,)
            if self.pooling == "mean":
                pooled += (hidden * (positions[None, :] < lengths[:, None])[..., None]).sum(dim=1)
            else:
                ends = (positions[None, :] == lengths[:, None] - 1)[..., None]  # (B, l, 1): each row's last position
                pooled += (hidden * ends).sum(dim=1)
        if self.pooling == "mean":
            pooled = pooled / lengths[:, None].to(pooled.dtype)
        return self.head(pooled.to(self.head.weight.dtype))  # (B, C)


def _config_dict(config: object) -> dict:
    return asdict(config) if is_dataclass(config) else dict(config or {})


def load_pretrained_backbone(backbone: nn.Module, config: MambaLMConfig, path: str | os.PathLike) -> None:
    """Copy a pretraining checkpoint's backbone weights in; a clear error if its shape differs from `config`."""
    checkpoint = load_checkpoint(path)
    theirs = _config_dict(checkpoint.get("hyper_parameters", {}).get("backbone"))
    ours = asdict(config)
    differ = [f"{key} {theirs[key]} there, {ours[key]} here" for key in _SHAPE_FIELDS
              if key in theirs and theirs[key] != ours[key]]
    if differ:
        raise InputError(path, f"the pretrained backbone does not fit this model: {'; '.join(differ)}; set "
                               f"model.backbone to the pretraining run's (its config.yaml)")
    state = checkpoint.get("state_dict", {})
    prefix = next((key[: -len("embedding.weight")] for key in state if key.endswith("backbone.embedding.weight")), None)
    if prefix is None:
        raise InputError(path, "holds no Mamba backbone (no '...backbone.embedding.weight'); give a checkpoint "
                               "written by `seqmamba pretrain` (RUN_DIR/checkpoints/last.ckpt)")
    weights = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    missing, unexpected = backbone.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise InputError(path, f"the pretrained backbone does not fit this model: missing {missing[:3]}, "
                               f"unexpected {unexpected[:3]}; set model.backbone to the pretraining run's")
