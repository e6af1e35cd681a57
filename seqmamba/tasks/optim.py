"""The one optimizer recipe of every seqmamba task: AdamW with selective decay, warmup, cosine decay.

Warm-up is a fraction of the run's own optimizer steps (`warmup_fraction`), so a recipe keeps its shape
on any data size: 100 fixed warm-up steps were more than a whole small run. An absolute `warmup_steps`
(older configs) is still honoured, but never past half the run.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decayed matrices, and undecayed norms, biases, embeddings and SSM parameters."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        skip = p.dim() < 2 or getattr(p, "_no_weight_decay", False) or "embedding" in name
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(warmup_steps: int, total_steps: int, min_lr_ratio: float):
    """lr factor per optimizer step: linear warmup to 1, then cosine decay to `min_lr_ratio` at `total_steps`."""
    total_steps = max(1, total_steps)

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return lr_factor


def warmup_length(total_steps: int, warmup_fraction: float, warmup_steps: int | None = None) -> int:
    """Warm-up steps of a run of total_steps: the fraction of it, or the given count capped at half of it."""
    total_steps = max(1, int(total_steps))
    if warmup_steps is not None:
        return min(warmup_steps, total_steps // 2)
    return max(1, round(warmup_fraction * total_steps)) if warmup_fraction > 0 else 0


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float,
                            warmup_steps: int | None, min_lr_ratio: float) -> dict:
    """Lightning's per-step scheduler entry: warm-up as a fraction of the run, then cosine to min_lr_ratio."""
    total_steps = max(1, int(total_steps))
    factor = warmup_cosine(warmup_length(total_steps, warmup_fraction, warmup_steps), total_steps, min_lr_ratio)
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}


def adamw_warmup_cosine(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                        total_steps: int, min_lr_ratio: float, warmup_fraction: float,
                        warmup_steps: int | None = None) -> dict:
    """Lightning's `configure_optimizers` answer: AdamW plus a per-step warmup-cosine schedule."""
    optimizer = torch.optim.AdamW(decay_groups(model, weight_decay), lr=lr, betas=betas)
    return {"optimizer": optimizer,
            "lr_scheduler": warmup_cosine_scheduler(optimizer, total_steps, warmup_fraction, warmup_steps, min_lr_ratio)}


def check_optimizer_settings(lr: float, weight_decay: float, betas: tuple[float, float], warmup_fraction: float,
                             warmup_steps: int | None, min_lr_ratio: float) -> None:
    """Refuse settings AdamW or the schedule cannot use, when the task is built (before a run directory exists)."""
    problems = []
    if not lr > 0:
        problems.append(f"lr must be positive, got {lr}")
    if not weight_decay >= 0:
        problems.append(f"weight_decay must be at least 0, got {weight_decay}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        problems.append(f"betas must be two numbers in [0, 1), got {list(betas)}")
    if not 0 <= warmup_fraction <= 1:
        problems.append(f"warmup_fraction must lie in [0, 1], got {warmup_fraction}")
    if warmup_steps is not None and warmup_steps < 0:
        problems.append(f"warmup_steps must be at least 0 or null, got {warmup_steps}")
    if not 0 <= min_lr_ratio <= 1:
        problems.append(f"min_lr_ratio must lie in [0, 1], got {min_lr_ratio}")
    if problems:
        raise ValueError("; ".join(problems))
