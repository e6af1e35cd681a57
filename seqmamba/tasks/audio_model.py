"""Autoregressive waveform modeling as a LightningModule: a SaShiMi U-Net over quantized samples.

Loss is the next-sample NLL; held-out splits report it in bits per sample (the paper's metric).
The optimizer is the paper's audio recipe: AdamW (0.9, 0.95), lr 0.002, weight decay 0.1, 10% warmup,
then cosine decay (gradient clipping at 0.1 is a trainer setting, in the presets).
"""

from __future__ import annotations

import math

import lightning
import torch
import torch.nn.functional as F
from torchmetrics.aggregation import MeanMetric

from seqmamba.nn.sashimi import Sashimi, SashimiConfig
from seqmamba.tasks.optim import adamw_warmup_cosine


class AudioModelTask(lightning.LightningModule):
    """Trains a U-Net on {"input_ids", "labels"} (B, L) batches; labels of padding are -100 and ignored."""

    def __init__(self, unet: SashimiConfig | None = None, lr: float = 0.002, weight_decay: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.95), warmup_fraction: float = 0.1,
                 min_lr_ratio: float = 0.0) -> None:
        super().__init__()
        unet = unet or SashimiConfig()
        self.save_hyperparameters()
        self.model = Sashimi(unet)
        self.val_nll = MeanMetric()
        self.test_nll = MeanMetric()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    def _nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Mean NLL (nats) over the labelled samples, and how many there were."""
        logits = self.model(batch["input_ids"])  # (B, L, vocab)
        labels = batch["labels"]
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten()), int((labels != -100).sum())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, samples = self._nll(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=samples)
        self.log("train/bits_per_sample", loss / math.log(2), batch_size=samples)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, samples = self._nll(batch)
        self.val_nll.update(loss, weight=samples)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, samples = self._nll(batch)
        self.test_nll.update(loss, weight=samples)

    def _log_heldout(self, split: str, metric: MeanMetric) -> None:
        nll = metric.compute()  # sample-weighted over every process (DDP-synced)
        self.log_dict({f"{split}/loss": nll, f"{split}/bits_per_sample": nll / math.log(2)},
                      prog_bar=(split == "val"))
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_heldout("val", self.val_nll)

    def on_test_epoch_end(self) -> None:
        self._log_heldout("test", self.test_nll)

    def configure_optimizers(self):
        hp = self.hparams
        total = self.trainer.estimated_stepping_batches
        return adamw_warmup_cosine(self.model, hp.lr, hp.weight_decay, hp.betas,
                                   max(1, round(hp.warmup_fraction * total)), total, hp.min_lr_ratio)
