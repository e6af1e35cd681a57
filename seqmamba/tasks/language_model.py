"""Next-token language modeling as a LightningModule: loss, held-out perplexity, optimizer, schedule.

Used for DNA pretraining now; nothing in it is DNA-specific, so audio reuses it.
"""

from __future__ import annotations

import math

import lightning
import torch
import torch.nn.functional as F
from torchmetrics.aggregation import MeanMetric

from seqmamba.nn import MambaLMConfig, MambaLMHeadModel
from seqmamba.tasks.optim import adamw_warmup_cosine, check_optimizer_settings


class LanguageModelTask(lightning.LightningModule):
    """Trains a Mamba LM on {"input_ids", "labels"} batches; reports loss, perplexity and bits per token.

    AdamW (no decay on norms, biases, embeddings, A and D), linear warmup then cosine decay to
    `min_lr_ratio * lr` over the run's optimizer steps.
    """

    def __init__(self, backbone: MambaLMConfig | None = None, lr: float = 8e-3, weight_decay: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.95), warmup_steps: int = 100,
                 min_lr_ratio: float = 0.1) -> None:
        super().__init__()
        check_optimizer_settings(lr, weight_decay, betas, warmup_steps, min_lr_ratio)
        backbone = backbone or MambaLMConfig()
        self.save_hyperparameters()
        self.model = MambaLMHeadModel(backbone)
        self.val_nll = MeanMetric()
        self.test_nll = MeanMetric()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    def _nll(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean negative log-likelihood (nats) of the labels."""
        logits = self.model(batch["input_ids"])
        return F.cross_entropy(logits.float().flatten(0, 1), batch["labels"].flatten())

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._nll(batch)
        tokens = batch["labels"].numel()
        self.log("train/loss", loss, prog_bar=True, batch_size=tokens)
        self.log("train/seq_len", float(batch["labels"].shape[1]), batch_size=tokens)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.val_nll.update(self._nll(batch), weight=batch["labels"].numel())

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.test_nll.update(self._nll(batch), weight=batch["labels"].numel())

    def _log_heldout(self, split: str, metric: MeanMetric) -> None:
        nll = metric.compute()  # token-weighted over every process (DDP-synced)
        self.log_dict({f"{split}/loss": nll, f"{split}/ppl": torch.exp(nll),
                       f"{split}/bits_per_token": nll / math.log(2)}, prog_bar=(split == "val"))
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_heldout("val", self.val_nll)

    def on_test_epoch_end(self) -> None:
        self._log_heldout("test", self.test_nll)

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(self.model, hp.lr, hp.weight_decay, hp.betas, hp.warmup_steps,
                                   self.trainer.estimated_stepping_batches, hp.min_lr_ratio)
