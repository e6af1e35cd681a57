"""Mixers of the paper's audio ablation besides Mamba: an MLP and causal self-attention with a KV cache.

Each has `forward` (B, L, D), `step` (B, D) and `allocate_cache` as `nn.Mamba` does, so a `Block` wraps
any of them and the U-Net steps them alike. Caches are fixed tensors updated in place (CUDA graphs).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MLP(nn.Module):
    """Position-wise feed-forward layer, D -> expand*D -> D with GELU: the "+MLP" of S4D+MLP blocks."""

    def __init__(self, d_model: int, expand: int = 2) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, expand * d_model)
        self.fc2 = nn.Linear(expand * d_model, d_model)

    def forward(self, x: torch.Tensor, cache: tuple = ()) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))

    def step(self, x: torch.Tensor, cache: tuple = ()) -> torch.Tensor:
        """One token: (B, D) -> (B, D); stateless."""
        return self.forward(x)

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> tuple:
        """No state."""
        return ()


AttentionCache = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # keys, values (B, heads, max_len, hd); position (1,)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention (no positional encoding: the causal mask and the U-Net carry order).

    Decoding keeps every key and value in a preallocated cache of `max_len` positions and a position
    counter on the device, so one step is the same kernels at every t.
    """

    def __init__(self, d_model: int, n_heads: int = 4) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., D) -> q, k, v each (..., heads, D/heads)."""
        return self.qkv(x).unflatten(-1, (3, self.n_heads, -1)).unbind(-3)

    def forward(self, x: torch.Tensor, cache: AttentionCache | None = None) -> torch.Tensor:
        """(B, L, D) -> (B, L, D); with a cache, stores the L keys and values and sets the position to L."""
        q, k, v = (t.transpose(1, 2) for t in self._heads(x))  # (B, heads, L, hd)
        if cache is not None:
            keys, values, position = cache
            keys[:, :, : x.shape[1]].copy_(k)
            values[:, :, : x.shape[1]].copy_(v)
            position.fill_(x.shape[1])
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out_proj(y.transpose(1, 2).flatten(2))

    def step(self, x: torch.Tensor, cache: AttentionCache) -> torch.Tensor:
        """One token: (B, D) -> (B, D), attending to every cached position up to and including this one."""
        keys, values, position = cache
        q, k, v = self._heads(x)  # (B, heads, hd)
        keys.index_copy_(2, position, k.unsqueeze(2).to(keys.dtype))
        values.index_copy_(2, position, v.unsqueeze(2).to(values.dtype))
        visible = (torch.arange(keys.shape[2], device=x.device) <= position).unsqueeze(0)  # (1, max_len)
        y = F.scaled_dot_product_attention(q.unsqueeze(2).to(keys.dtype), keys, values, attn_mask=visible)
        position.add_(1)
        return self.out_proj(y.squeeze(2).flatten(1).to(x.dtype))

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None,
                       max_len: int = 4096) -> AttentionCache:
        """Zeroed key and value buffers for `max_len` positions, position 0."""
        weight = self.qkv.weight
        shape = (batch_size, self.n_heads, max_len, weight.shape[1] // self.n_heads)
        keys = torch.zeros(shape, device=weight.device, dtype=dtype or weight.dtype)
        return keys, torch.zeros_like(keys), torch.zeros(1, dtype=torch.long, device=weight.device)
