"""Next-token language modeling as a LightningModule: loss, held-out perplexity, optimizer, schedule.

Used for DNA pretraining; the audio task shares its loss and held-out metrics (`next_token.py`).
"""

from __future__ import annotations

import torch

from seqmamba.nn import MambaLMConfig, MambaLMHeadModel
from seqmamba.tasks.next_token import NextTokenTask
from seqmamba.tasks.optim import adamw_warmup_cosine, check_optimizer_settings


class LanguageModelTask(NextTokenTask):
    """Trains a Mamba LM on {"input_ids", "labels"} batches; reports loss, perplexity and bits per token.

    AdamW (no decay on norms, biases, embeddings, A and D), linear warmup over `warmup_fraction` of the
    run's optimizer steps (or `warmup_steps`, capped at half the run), then cosine decay to `min_lr_ratio * lr`.

    Args:
        backbone: Mamba LM sizes: a preset YAML (configs/models/) or --model.backbone.FIELD
        lr: peak learning rate of AdamW
        weight_decay: AdamW weight decay (not on norms, biases, embeddings, A and D)
        betas: AdamW betas
        warmup_fraction: share of the run's steps spent in linear warmup, in [0, 1]
        min_lr_ratio: the cosine decay ends at this share of lr
        warmup_steps: optimizer steps of linear warmup instead of the fraction (capped at half the run)
    """

    def __init__(self, backbone: MambaLMConfig | None = None, lr: float = 8e-3, weight_decay: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.95), warmup_fraction: float = 0.05,
                 min_lr_ratio: float = 0.1, warmup_steps: int | None = None) -> None:
        super().__init__()
        check_optimizer_settings(lr, weight_decay, betas, warmup_fraction, warmup_steps, min_lr_ratio)
        backbone = backbone or MambaLMConfig()
        self.save_hyperparameters()
        self.model = MambaLMHeadModel(backbone)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, _ = self.nll(batch)
        tokens = batch["labels"].numel()
        self.log("train/loss", loss, prog_bar=True, batch_size=tokens)
        self.log("train/seq_len", float(batch["labels"].shape[1]), batch_size=tokens)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(self.model, hp.lr, hp.weight_decay, hp.betas, self.trainer.estimated_stepping_batches,
                                   hp.min_lr_ratio, hp.warmup_fraction, hp.warmup_steps)
