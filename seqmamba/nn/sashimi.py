"""SaShiMi's U-Net (Goel et al. 2022) for waveforms, with Mamba, complex Mamba, S4D+MLP or attention+MLP blocks.

Stages run at lengths L, L/p1, L/(p1 p2), ...; each doubles the width (expand). Down-pooling folds p
steps into channels and maps them linearly; up-pooling maps linearly, shifts by one coarse step and
unfolds, so no output sees its own or a later input. Blocks run on the way down, in the center and on
the way up; the input of each down-path layer is added after its mirrored up-path layer.

Decoding steps the whole U-Net one sample at a time with constant memory: the pooling layers keep
ring buffers of p steps. A step takes one of len(pool)+1 paths (how many down-pools complete a
window at this sample); within a path nothing depends on data or t, so each path can be captured
once in a CUDA graph (see `seqmamba.generate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from seqmamba.training.checkpoints import allow_in_checkpoints
from seqmamba.errors import InputError
from seqmamba.nn.audio_blocks import MLP, CausalSelfAttention
from seqmamba.nn.block import Block
from seqmamba.nn.mamba import ComplexMamba, Mamba
from seqmamba.nn.norm import RMSNorm
from seqmamba.nn.s4d import S4D
from seqmamba.nn.sizes import check_sizes

BLOCK_KINDS = ("mamba", "complex-mamba", "s4d+mlp", "attention+mlp")


@allow_in_checkpoints
@dataclass
class SashimiConfig:
    """Size and shape of a SaShiMi U-Net; the presets in configs/audio/ are instances of it."""

    d_model: int = 64  # width of the outermost stage
    n_layers: int = 8  # blocks per stage on the way down, in the center, and per stage on the way up
    pool: list[int] = field(default_factory=lambda: [4, 4])
    expand: int = 2  # width factor per stage
    outer: str = "complex-mamba"  # block kind of the stages around the center
    center: str = "complex-mamba"
    vocab_size: int = 256  # 2**bits quantization levels
    d_state: int = 16  # Mamba's SSM state size
    s4d_state: int = 64  # S4D's state size (N/2 complex modes)
    mlp_expand: int = 2
    n_heads: int = 4  # attention heads of attention+mlp

    def __post_init__(self) -> None:
        check_sizes(self)


def check_config(config: SashimiConfig) -> None:
    """Settings a U-Net cannot be built from, reported as the config keys a user sets."""
    for setting, kind in (("model.unet.outer", config.outer), ("model.unet.center", config.center)):
        if kind not in BLOCK_KINDS:
            raise InputError(setting, f"unknown block kind {kind!r}; use one of {', '.join(BLOCK_KINDS)}")
    if config.outer == "attention+mlp":
        raise InputError("model.unet.outer", "attention+mlp runs in the center only; pick another outer block kind")
    if not config.pool or min(config.pool) < 1:
        raise InputError("model.unet.pool", f"{config.pool}: give one pooling factor >= 1 per stage, e.g. [4, 4]")


def residual_layers(kind: str, dim: int, n_blocks: int, config: SashimiConfig) -> nn.ModuleList:
    """n_blocks of one kind as prenorm residual layers (an X+MLP block is two layers, X then MLP)."""
    def mixers():
        if kind == "mamba":
            return [Mamba(dim, d_state=config.d_state)]
        if kind == "complex-mamba":
            return [ComplexMamba(dim, d_state=config.d_state)]
        first = S4D(dim, config.s4d_state) if kind == "s4d+mlp" else CausalSelfAttention(dim, config.n_heads)
        return [first, MLP(dim, config.mlp_expand)]

    return nn.ModuleList(Block(dim, mixer, residual_in_fp32=False) for _ in range(n_blocks) for mixer in mixers())


def residual(layer: Block, x: torch.Tensor, cache=None) -> torch.Tensor:
    """x + mixer(norm(x)) over a sequence (B, L, D)."""
    hidden, skip = layer(x, None, cache)
    return hidden + skip


class DownPool(nn.Module):
    """(B, L, D) -> (B, L/p, expand D): fold p steps into channels, then a linear map."""

    def __init__(self, dim: int, expand: int, pool: int) -> None:
        super().__init__()
        self.pool = pool
        self.linear = nn.Linear(dim * pool, dim * expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.unflatten(1, (-1, self.pool)).flatten(2))  # (B, L/p, p D) -> (B, L/p, e D)

    def push(self, x: torch.Tensor, window: torch.Tensor) -> None:
        """Append one step (B, D) to the window (B, p, D) of the latest p inputs, dropping the oldest."""
        window.copy_(torch.cat([window[:, 1:], x.unsqueeze(1)], dim=1))

    def emit(self, window: torch.Tensor) -> torch.Tensor:
        """The coarse step (B, expand D) of a full window."""
        return self.linear(window.flatten(1))

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The window (B, p, D)."""
        w = self.linear.weight
        return torch.zeros(batch_size, self.pool, w.shape[1] // self.pool, device=w.device, dtype=dtype or w.dtype)


class UpPool(nn.Module):
    """(B, L, D) -> (B, L p, D/expand): a linear map, a shift by one coarse step, then unfold."""

    def __init__(self, dim: int, expand: int, pool: int) -> None:
        super().__init__()
        self.pool = pool
        self.linear = nn.Linear(dim, dim // expand * pool)

    def forward(self, x: torch.Tensor, pending: torch.Tensor | None = None) -> torch.Tensor:
        """With `pending`, also leaves there the p outputs the last coarse step feeds to the next p steps."""
        y = self.linear(x).unflatten(-1, (self.pool, -1))  # (B, L, p, D')
        if pending is not None:
            pending.copy_(y[:, -1])
        return F.pad(y[:, :-1], (0, 0, 0, 0, 1, 0)).flatten(1, 2)  # coarse step l feeds fine steps of l + 1

    def pop(self, pending: torch.Tensor) -> torch.Tensor:
        """The next output (B, D') from the pending outputs (B, p, D'), which move up by one."""
        out = pending[:, 0].clone()
        pending.copy_(torch.roll(pending, -1, dims=1))
        return out

    def refill(self, x: torch.Tensor, pending: torch.Tensor) -> None:
        """A coarse step (B, D) becomes the next p outputs."""
        pending.copy_(self.linear(x).unflatten(-1, (self.pool, -1)))

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Pending outputs (B, p, D'), zero: the first window sees no coarse input, as the shift's padding."""
        w = self.linear.weight
        return torch.zeros(batch_size, self.pool, w.shape[0] // self.pool, device=w.device, dtype=dtype or w.dtype)


@dataclass
class SashimiCache:
    """Every piece of decoding state, preallocated: mixer caches per residual layer, pooling buffers per stage."""

    down: list[list]
    center: list
    up: list[list]
    windows: list[torch.Tensor]  # per stage: latest inputs of its down-pool (B, p, D)
    pending: list[torch.Tensor]  # per stage: outputs its up-pool has still to give (B, p, D)


class Sashimi(nn.Module):
    """Quantized waveform ids (B, L) -> next-sample logits (B, L, vocab)."""

    def __init__(self, config: SashimiConfig) -> None:
        super().__init__()
        check_config(config)
        self.config = config
        dims = [config.d_model * config.expand**i for i in range(len(config.pool) + 1)]
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.down = nn.ModuleList(residual_layers(config.outer, d, config.n_layers, config) for d in dims[:-1])
        self.down_pools = nn.ModuleList(DownPool(d, config.expand, p) for d, p in zip(dims, config.pool))
        self.center = residual_layers(config.center, dims[-1], config.n_layers, config)
        self.up_pools = nn.ModuleList(UpPool(d, config.expand, p) for d, p in zip(dims[1:], config.pool))
        self.up = nn.ModuleList(residual_layers(config.outer, d, config.n_layers, config) for d in dims[:-1])
        self.norm_f = RMSNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size)

    @property
    def total_pool(self) -> int:
        """Samples per center step."""
        return math.prod(self.config.pool)

    @property
    def num_step_paths(self) -> int:
        """How many distinct computations a step can be: one per depth a sample reaches."""
        return len(self.config.pool) + 1

    def step_path(self, t: int) -> int:
        """The path of the step that reads sample t: how many down-pools complete a window with it."""
        depth, period = 0, 1
        for p in self.config.pool:
            period *= p
            if (t + 1) % period:
                break
            depth += 1
        return depth

    def forward(self, input_ids: torch.Tensor, cache: SashimiCache | None = None) -> torch.Tensor:
        """ids (B, L) -> logits (B, L, vocab). Any L (the tail is padded); a cache needs L a multiple of the pool."""
        length = input_ids.shape[1]
        padded = -length % self.total_pool
        if padded and cache is not None:
            raise ValueError(f"prefill length {length} is not a multiple of {self.total_pool}")
        x = F.pad(self.embedding(input_ids), (0, 0, 0, padded))  # (B, L', D); causal, so the pad is never seen
        get = (lambda caches, j: None) if cache is None else (lambda caches, j: caches[j])  # noqa: E731
        skips = []
        for i, (layers, pool) in enumerate(zip(self.down, self.down_pools)):
            for j, layer in enumerate(layers):
                skips.append(x)
                x = residual(layer, x, get(cache and cache.down[i], j))
            skips.append(x)
            x = pool(x)
        center_in = x
        for j, layer in enumerate(self.center):
            x = residual(layer, x, get(cache and cache.center, j))
        x = x + center_in
        for i in reversed(range(len(self.up))):
            x = self.up_pools[i](x, None if cache is None else cache.pending[i]) + skips.pop()
            for j, layer in enumerate(self.up[i]):
                x = residual(layer, x, get(cache and cache.up[i], j)) + skips.pop()
        return self.lm_head(self.norm_f(x[:, :length]))

    def step(self, input_ids: torch.Tensor, cache: SashimiCache, path: int) -> torch.Tensor:
        """One sample per sequence: ids (B,) -> logits (B, vocab) for the next; `path` = step_path(t)."""
        stages = len(self.down)
        x = self.embedding(input_ids)  # (B, D)
        skips = []
        for i in range(min(path + 1, stages)):
            for layer, layer_cache in zip(self.down[i], cache.down[i]):
                skips.append(x)
                x = layer.residual_step(x, layer_cache)
            skips.append(x)
            self.down_pools[i].push(x, cache.windows[i])
            if i < path:
                x = self.down_pools[i].emit(cache.windows[i])
        if path == stages:
            center_in = x
            for layer, layer_cache in zip(self.center, cache.center):
                x = layer.residual_step(x, layer_cache)
            x = x + center_in
        for i in reversed(range(min(path + 1, stages))):
            coarse, x = x, self.up_pools[i].pop(cache.pending[i]) + skips.pop()
            if i < path:  # the stage below finished a coarse step just now: its next p outputs
                self.up_pools[i].refill(coarse, cache.pending[i])
            for layer, layer_cache in zip(self.up[i], cache.up[i]):
                x = layer.residual_step(x, layer_cache, skips.pop())
        return self.lm_head(self.norm_f(x))

    def prefill(self, input_ids: torch.Tensor, cache: SashimiCache) -> torch.Tensor:
        """Read a prompt (B, K) into the cache; logits (B, vocab) for sample K. Whole windows in parallel."""
        whole = input_ids.shape[1] - input_ids.shape[1] % self.total_pool
        logits = self.forward(input_ids[:, :whole], cache)[:, -1] if whole else None
        for t in range(whole, input_ids.shape[1]):
            logits = self.step(input_ids[:, t], cache, self.step_path(t))
        return logits

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None,
                       max_len: int = 16000) -> SashimiCache:
        """Zeroed state for decoding up to `max_len` samples (attention keeps every center step)."""
        def layer_caches(layers: nn.ModuleList) -> list:
            return [layer.mixer.allocate_cache(batch_size, dtype, max_len // self.total_pool + 1)
                    if isinstance(layer.mixer, CausalSelfAttention) else layer.mixer.allocate_cache(batch_size, dtype)
                    for layer in layers]

        return SashimiCache(down=[layer_caches(layers) for layers in self.down],
                            center=layer_caches(self.center),
                            up=[layer_caches(layers) for layers in self.up],
                            windows=[pool.allocate_cache(batch_size, dtype) for pool in self.down_pools],
                            pending=[pool.allocate_cache(batch_size, dtype) for pool in self.up_pools])

    def num_parameters(self) -> int:
        """All parameters."""
        return sum(p.numel() for p in self.parameters())
