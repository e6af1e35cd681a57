"""Sequence classifier: the Mamba LM backbone, a pooling over positions, and a linear head over classes.

The backbone is causal, so a right-padded batch gives every read exactly its unpadded hidden
states: pooling then reads only each read's own positions (mean over them, or its last one).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn as nn

from seqmamba.nn.lm import MambaLMConfig, MambaLMHeadModel

Pooling = Literal["mean", "last"]


def pool(hidden: torch.Tensor, lengths: torch.Tensor | None, pooling: Pooling) -> torch.Tensor:
    """(B, L, D) hidden states -> (B, D): mean over each sequence's first `lengths` positions, or its last one."""
    if lengths is None:
        return hidden.mean(dim=1) if pooling == "mean" else hidden[:, -1]
    if pooling == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths - 1]
    mask = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]  # (B, L)
    return (hidden * mask[..., None]).sum(dim=1) / lengths[:, None].to(hidden.dtype)


class SequenceClassifier(nn.Module):
    """Token ids (B, L) -> class logits (B, C), from a Mamba backbone initialised as the LM's."""

    def __init__(self, config: MambaLMConfig, num_classes: int, pooling: Pooling = "mean") -> None:
        super().__init__()
        if pooling not in get_args(Pooling):
            raise ValueError(f"pooling must be one of {', '.join(get_args(Pooling))}, got {pooling!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
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

