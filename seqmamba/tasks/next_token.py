"""What the DNA LM and the audio U-Net share: next-token cross-entropy and held-out NLL per labelled token.

Labels of -100 (audio padding) are ignored; held-out NLL is weighted by labelled tokens over every process.
"""

from __future__ import annotations

import math

import lightning
import torch
import torch.nn.functional as F
from torchmetrics.aggregation import MeanMetric

IGNORE_INDEX = -100


class NextTokenTask(lightning.LightningModule):
    """Base of the next-token tasks: subclasses set `self.model` and `unit` (the name in bits_per_<unit>)."""

    unit = "token"

    def __init__(self) -> None:
        super().__init__()
        self.val_nll = MeanMetric()
        self.test_nll = MeanMetric()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids)

    def nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean NLL (nats) over the labelled tokens of a batch, and how many there were."""
        logits = self.model(batch["input_ids"])  # (B, L, vocab)
        labels = batch["labels"]
        loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
        return loss, (labels != IGNORE_INDEX).sum()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, tokens = self.nll(batch)
        self.val_nll.update(loss, weight=tokens)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, tokens = self.nll(batch)
        self.test_nll.update(loss, weight=tokens)

    def _log_heldout(self, split: str, metric: MeanMetric) -> None:
        nll = metric.compute()  # token-weighted over every process (DDP-synced)
        self.log_dict({f"{split}/loss": nll, f"{split}/ppl": torch.exp(nll),
                       f"{split}/bits_per_{self.unit}": nll / math.log(2)}, prog_bar=(split == "val"))
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_heldout("val", self.val_nll)

    def on_test_epoch_end(self) -> None:
        self._log_heldout("test", self.test_nll)
