"""Sequence classification as a LightningModule: cross-entropy, accuracy, per-class accuracy, confusion matrix.

The classes come from the data (the manifest's species): the head is built in `configure_model`,
once the datamodule is known, and the class names go into the checkpoint's hyperparameters,
which is all `seqmamba classify` needs to label reads. Every validation also fits a temperature
to the validation logits (`seqmamba.metrics.calibration`); it is a buffer, so checkpoints carry it
(state_dict key `temperature`) and `classify` divides logits by it: its probabilities are calibrated.
"""

from __future__ import annotations

import lightning
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.aggregation import MeanMetric

from seqmamba.errors import InputError
from seqmamba.metrics.calibration import fit_temperature
from seqmamba.nn import MambaLMConfig
from seqmamba.nn.classifier import Pooling, SequenceClassifier
from seqmamba.tasks.optim import adamw_warmup_cosine, check_optimizer_settings
from seqmamba.training.model_loading import pretrained_backbone


def accuracies(confusion: torch.Tensor) -> tuple[float, list[float]]:
    """(overall accuracy, per-class accuracy) of a confusion matrix whose rows are true classes."""
    confusion = confusion.double()
    per_class = confusion.diagonal() / confusion.sum(dim=1).clamp(min=1)
    return float(confusion.diagonal().sum() / confusion.sum().clamp(min=1)), per_class.tolist()


class ClassifierTask(lightning.LightningModule):
    """Fine-tunes a Mamba backbone (fresh, or from `init_from`, a `seqmamba pretrain` checkpoint) to classify.

    Logs train/loss per step; val/loss and val/accuracy per validation; test/loss and
    test/accuracy, leaving the test confusion matrix (rows: true class) in `test_confusion`.
    Optimizer and schedule are the LM's (AdamW, warmup, cosine).

    Args:
        backbone: Mamba LM sizes: a preset YAML (configs/models/) or --model.backbone.FIELD
        pooling: how positions become one vector: mean or last
        init_from: `seqmamba pretrain` checkpoint whose backbone is loaded (the head is new)
        classes: species names (set from the data's manifest)
        lr: peak learning rate of AdamW
        weight_decay: AdamW weight decay
        betas: AdamW betas
        warmup_steps: optimizer steps of linear warmup
        min_lr_ratio: the cosine decay ends at this share of lr
    """

    def __init__(self, backbone: MambaLMConfig | None = None, pooling: Pooling = "mean", init_from: str | None = None,
                 classes: list[str] | None = None, lr: float = 2e-3, weight_decay: float = 0.1,
                 betas: tuple[float, float] = (0.9, 0.95), warmup_fraction: float = 0.05, min_lr_ratio: float = 0.1,
                 warmup_steps: int | None = None) -> None:
        super().__init__()
        check_optimizer_settings(lr, weight_decay, betas, warmup_fraction, warmup_steps, min_lr_ratio)
        backbone = backbone or MambaLMConfig()
        self.save_hyperparameters()
        self.backbone_config = backbone  # hparams may hold it as a dict (LightningCLI records what it parsed)
        self.classifier: SequenceClassifier | None = None
        self.test_confusion: torch.Tensor | None = None
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.register_buffer("temperature", torch.ones(()))  # fitted on the validation split, saved with the weights
        self._heldout: list[tuple[torch.Tensor, torch.Tensor]] = []  # this evaluation's (logits, labels) batches
        self.test_logits: tuple[np.ndarray, np.ndarray] | None = None  # raw test logits (N, C) and labels (N,)
        if classes is not None:
            self._build(classes)

    def _build(self, classes: list[str]) -> None:
        hp = self.hparams
        self.classifier = SequenceClassifier(self.backbone_config, len(classes), hp.pooling)
        if hp.init_from:
            self.classifier.backbone.load_state_dict(pretrained_backbone(hp.init_from, self.backbone_config))
        self.register_buffer("confusion", torch.zeros(len(classes), len(classes), dtype=torch.long), persistent=False)

    def set_classes(self, classes: list[str]) -> None:
        """Size the head by the data's classes (once), recording them for checkpoints."""
        if self.classifier is None:
            self.hparams.classes = list(classes)
            self._build(self.hparams.classes)
        elif list(classes) != list(self.hparams.classes):
            raise InputError("config", f"model.classes {self.hparams.classes} differ from the manifest's species "
                                       f"{list(classes)}; leave model.classes unset")

    def configure_model(self) -> None:
        """Lightning's hook before weights are restored: the head must exist by then."""
        classes = getattr(self.trainer.datamodule, "classes", None)
        if classes is not None:
            self.set_classes(classes)
        elif self.classifier is None:
            raise InputError("config", "model.classes is unset and the data gives no classes; use the species "
                                       "data module (data.manifest)")

    def forward(self, input_ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.classifier(input_ids, lengths)  # (B, C)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self(batch["input_ids"]).float(), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _evaluate(self, batch: dict[str, torch.Tensor], loss_metric: MeanMetric) -> None:
        logits = self(batch["input_ids"]).float()
        labels = batch["labels"]
        loss_metric.update(F.cross_entropy(logits, labels), weight=len(labels))
        self._heldout.append((logits.detach().cpu(), labels.cpu()))
        n = self.confusion.shape[0]
        self.confusion += torch.bincount(labels * n + logits.argmax(dim=1), minlength=n * n).view(n, n)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_loss)

    def _log_heldout(self, split: str, loss_metric: MeanMetric) -> torch.Tensor:
        confusion = self.all_gather(self.confusion).clone()
        confusion = confusion.sum(dim=0) if confusion.dim() == 3 else confusion  # summed over processes
        self.log_dict({f"{split}/loss": loss_metric.compute(), f"{split}/accuracy": accuracies(confusion)[0]},
                      prog_bar=(split == "val"), sync_dist=False)
        loss_metric.reset()
        self.confusion.zero_()
        return confusion.cpu()

    def _collected(self) -> tuple[np.ndarray, np.ndarray]:
        logits, labels = (torch.cat(parts).numpy() for parts in zip(*self._heldout))
        self._heldout = []
        return logits, labels

    def on_validation_epoch_start(self) -> None:
        self.confusion.zero_()
        self._heldout = []

    def on_test_epoch_start(self) -> None:
        self.confusion.zero_()
        self._heldout = []

    def on_validation_epoch_end(self) -> None:
        self._log_heldout("val", self.val_loss)
        logits, labels = self._collected()
        if not self.trainer.sanity_checking:  # each process fits its share; the mean is the model's temperature
            fitted = torch.tensor(fit_temperature(logits, labels), device=self.temperature.device)
            self.temperature.fill_(self.all_gather(fitted).float().mean())
            self.log("val/temperature", self.temperature, sync_dist=False)

    def on_test_epoch_end(self) -> None:
        self.test_confusion = self._log_heldout("test", self.test_loss)
        self.test_logits = self._collected()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints from before calibration hold no temperature: they load as uncalibrated (T = 1)."""
        checkpoint["state_dict"].setdefault("temperature", torch.ones(()))

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(self.classifier, hp.lr, hp.weight_decay, hp.betas,
                                   self.trainer.estimated_stepping_batches, hp.min_lr_ratio, hp.warmup_fraction,
                                   hp.warmup_steps)
