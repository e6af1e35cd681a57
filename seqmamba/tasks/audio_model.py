"""Autoregressive waveform modeling as a LightningModule: a SaShiMi U-Net over quantized samples.

Loss is the next-sample NLL; held-out splits report it in bits per sample (the paper's metric).
The optimizer is the paper's audio recipe: AdamW (0.9, 0.95), lr 0.002, weight decay 0.1, 10% warmup,
then cosine decay (gradient clipping at 0.1 is a trainer setting, in the presets).
"""

from __future__ import annotations

import math

import torch

from seqmamba.nn.sashimi import Sashimi, SashimiConfig
from seqmamba.tasks.next_token import NextTokenTask
from seqmamba.tasks.optim import adamw_warmup_cosine, check_optimizer_settings


class AudioModelTask(NextTokenTask):
    """Trains a U-Net on {"input_ids", "labels"} (B, L) batches; labels of padding are -100 and ignored.

    Args:
        unet: SaShiMi U-Net sizes and blocks: a preset YAML or --model.unet.FIELD
        lr: peak learning rate of AdamW
        weight_decay: AdamW weight decay
        betas: AdamW betas
        warmup_fraction: share of the run's steps spent in linear warmup, in [0, 1]
        min_lr_ratio: the cosine decay ends at this share of lr
        warmup_steps: optimizer steps of linear warmup instead of the fraction (capped at half the run)
    """

    unit = "sample"

    def __init__(self, unet: SashimiConfig | None = None, lr: float = 0.002, weight_decay: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.95), warmup_fraction: float = 0.1,
                 min_lr_ratio: float = 0.0, warmup_steps: int | None = None) -> None:
        super().__init__()
        check_optimizer_settings(lr, weight_decay, betas, warmup_fraction, warmup_steps, min_lr_ratio)
        unet = unet or SashimiConfig()
        self.save_hyperparameters()
        self.model = Sashimi(unet)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self.nll(batch)
        samples = batch["labels"].numel()
        self.log("train/loss", loss, prog_bar=True, batch_size=samples)
        self.log("train/bits_per_sample", loss / math.log(2), batch_size=samples)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(self.model, hp.lr, hp.weight_decay, hp.betas, self.trainer.estimated_stepping_batches,
                                   hp.min_lr_ratio, hp.warmup_fraction, hp.warmup_steps)
