"""The SC09 protocol's digit classifier: a ResNeXt on log-mel images, trained on the SC09 train split.

Batches are {"waveforms": (B, T) float32 clips of the protocol's length, "labels": (B,) digits}; training
batches add "seeds" (B,) int64, drawn with the clips from (seed, epoch, index), whose first seeds the batch's
augmentation, so a resumed run augments as the uninterrupted one did. The mel front-end runs inside the model
(on the GPU when there is one), after augmentation; its settings are hyperparameters, so every checkpoint
says how its inputs were made.
"""

from __future__ import annotations

import math

import lightning
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping
from torch.utils.data import DataLoader, Dataset
from torchmetrics.aggregation import MeanMetric

from seqmamba.data.audio_datasets import SC09_LABELS, sc09_label, sc09_split_files, scan_audio_files
from seqmamba.errors import InputError
from seqmamba.metrics.mel_features import MelFeatures, MelSettings, load_clip
from seqmamba.nn.resnext import ResNeXt, ResNeXtConfig
from seqmamba.training.loaders import ignore_stop_signals, resumable_loader
from seqmamba.tasks.optim import warmup_cosine_scheduler


def augment(waveforms: torch.Tensor, max_shift: int, gain_db: float, noise_level: float,
            generator: torch.Generator) -> torch.Tensor:
    """Random time shift (zero fill, up to max_shift samples), gain (+-gain_db) and white noise, per clip.

    Every draw comes from `generator` (on the clips' device), never the global RNG: a resumed run redraws the same.
    """
    batch, length = waveforms.shape  # (B, T)
    draw = {"device": waveforms.device, "generator": generator}
    shifts = torch.randint(-max_shift, max_shift + 1, (batch, 1), **draw)
    source = torch.arange(length, device=waveforms.device) - shifts  # (B, T): where each output sample comes from
    shifted = torch.where((source >= 0) & (source < length), waveforms.gather(1, source.clamp(0, length - 1)), 0.0)
    gain = 10 ** ((torch.rand(batch, 1, **draw) * 2 - 1) * gain_db / 20)
    noise = torch.randn(waveforms.shape, dtype=waveforms.dtype, **draw) * torch.rand(batch, 1, **draw) * noise_level
    return (shifted * gain + noise).clamp(-1, 1)


def change_speed(waveforms: torch.Tensor, max_change: float, generator: torch.Generator) -> torch.Tensor:
    """Play each clip faster or slower by a random factor in [1 / (1 + max_change), 1 + max_change] about its
    centre (linear interpolation, zero fill): pitch, formants and tempo move together, as between speakers.

    The factors come from `generator` (on the clips' device), never the global RNG: a resumed run redraws the same.
    """
    batch, length = waveforms.shape  # (B, T)
    device = waveforms.device
    log_range = math.log1p(max_change)
    factors = torch.exp((torch.rand(batch, 1, device=device, generator=generator) * 2 - 1) * log_range)  # (B, 1)
    centre = (length - 1) / 2
    source = (torch.arange(length, device=device) - centre) * factors + centre  # (B, T)
    left = source.floor().long()
    weight = source - left
    inside = lambda i: (i >= 0) & (i < length)  # noqa: E731
    pick = lambda i: torch.where(inside(i), waveforms.gather(1, i.clamp(0, length - 1)), 0.0)  # noqa: E731
    return pick(left) * (1 - weight) + pick(left + 1) * weight


def check_training_settings(lr: float, momentum: float, weight_decay: float, warmup_fraction: float,
                            warmup_steps: int | None, min_lr_ratio: float, max_shift_ms: float, gain_db: float,
                            noise_level: float, patience: int, speed_change: float = 0.0) -> None:
    """Refuse settings SGD, the schedule or the augmentation cannot use, before a run directory exists."""
    problems = [f"{name} {rule}, got {value}" for name, value, ok, rule in (
        ("lr", lr, lr > 0, "must be positive"),
        ("momentum", momentum, 0 <= momentum < 1, "must lie in [0, 1)"),
        ("weight_decay", weight_decay, weight_decay >= 0, "must be at least 0"),
        ("warmup_fraction", warmup_fraction, 0 <= warmup_fraction <= 1, "must lie in [0, 1]"),
        ("warmup_steps", warmup_steps, warmup_steps is None or warmup_steps >= 0, "must be at least 0 or null"),
        ("min_lr_ratio", min_lr_ratio, 0 <= min_lr_ratio <= 1, "must lie in [0, 1]"),
        ("max_shift_ms", max_shift_ms, 0 <= max_shift_ms < 1000, "must lie in [0, 1000)"),
        ("gain_db", gain_db, gain_db >= 0, "must be at least 0"),
        ("noise_level", noise_level, 0 <= noise_level <= 1, "must lie in [0, 1]"),
        ("speed_change", speed_change, 0 <= speed_change < 1, "must lie in [0, 1)"),
        ("early_stopping_patience", patience, patience >= 1, "must be at least 1")) if not ok]
    if problems:
        raise ValueError("; ".join(problems))


class DigitClassifierTask(lightning.LightningModule):
    """ResNeXt digit classifier: SGD with (Nesterov) momentum, warmup (a fraction of the run) then cosine,
    early stopping on val/loss.

    Logs train/loss per step; val/loss and val/accuracy per validation; test/loss and test/accuracy.

    Args:
        resnext: ResNeXt sizes (a preset YAML, or --model.resnext.FIELD)
        features: mel front-end settings
        lr: peak learning rate of SGD
        momentum: Nesterov momentum, in [0, 1)
        weight_decay: L2 weight decay
        warmup_fraction: share of the run's steps spent in linear warmup, in [0, 1]
        min_lr_ratio: the cosine decay ends at this share of lr
        max_shift_ms: augmentation: random time shift up to this many ms
        gain_db: augmentation: random gain within +- this many dB
        noise_level: augmentation: white noise up to this level
        early_stopping_patience: validations without a better val/loss before stopping
        warmup_steps: optimizer steps of linear warmup instead of the fraction (capped at half the run)
        speed_change: augmentation: play clips up to this share faster or slower, in [0, 1)
    """

    def __init__(self, resnext: ResNeXtConfig | None = None, features: MelSettings | None = None, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 5e-4, warmup_fraction: float = 0.1,
                 min_lr_ratio: float = 0.01, max_shift_ms: float = 100.0, gain_db: float = 6.0, noise_level: float = 0.01,
                 early_stopping_patience: int = 5, warmup_steps: int | None = None, speed_change: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        resnext = self.hparams.resnext = resnext or ResNeXtConfig()  # LightningCLI saves the given None: store the real one
        features = self.hparams.features = features or MelSettings()
        check_training_settings(lr, momentum, weight_decay, warmup_fraction, warmup_steps, min_lr_ratio, max_shift_ms,
                                gain_db, noise_level, early_stopping_patience, speed_change)
        self.mel = MelFeatures(features)
        self.classifier = ResNeXt(resnext)
        self.val_loss, self.val_accuracy = MeanMetric(), MeanMetric()
        self.test_loss, self.test_accuracy = MeanMetric(), MeanMetric()

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.mel(waveforms))  # (B, classes) logits

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        max_shift = int(hp.max_shift_ms * hp.features.sample_rate / 1000)
        generator = torch.Generator(self.device).manual_seed(int(batch["seeds"][0]))  # the batch's own draws
        waveforms = augment(batch["waveforms"], max_shift, hp.gain_db, hp.noise_level, generator)
        if hp.speed_change > 0:
            waveforms = change_speed(waveforms, hp.speed_change, generator)
        loss = F.cross_entropy(self(waveforms).float(), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(waveforms))
        return loss

    def _evaluate(self, split: str, batch: dict[str, torch.Tensor]) -> None:
        logits, labels = self(batch["waveforms"]).float(), batch["labels"]
        loss, accuracy = getattr(self, f"{split}_loss"), getattr(self, f"{split}_accuracy")
        loss.update(F.cross_entropy(logits, labels), weight=len(labels))
        accuracy.update((logits.argmax(dim=1) == labels).float())

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _log_heldout(self, split: str) -> None:
        loss, accuracy = getattr(self, f"{split}_loss"), getattr(self, f"{split}_accuracy")
        self.log_dict({f"{split}/loss": loss.compute(), f"{split}/accuracy": accuracy.compute()},
                      prog_bar=(split == "val"))
        loss.reset()
        accuracy.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_heldout("val")

    def on_test_epoch_end(self) -> None:
        self._log_heldout("test")

    def configure_callbacks(self) -> list:
        return [EarlyStopping(monitor="val/loss", patience=self.hparams.early_stopping_patience, mode="min")]

    def configure_optimizers(self):
        hp = self.hparams
        decay = [p for p in self.classifier.parameters() if p.dim() > 1]  # conv and linear weights, not BN or biases
        no_decay = [p for p in self.classifier.parameters() if p.dim() <= 1]
        optimizer = torch.optim.SGD([{"params": decay, "weight_decay": hp.weight_decay},
                                     {"params": no_decay, "weight_decay": 0.0}],
                                    lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0)
        return {"optimizer": optimizer,
                "lr_scheduler": warmup_cosine_scheduler(optimizer, self.trainer.estimated_stepping_batches,
                                                        hp.warmup_fraction, hp.warmup_steps, hp.min_lr_ratio)}


class Clips(Dataset):
    """Clips held in memory as one (N, T) array, with their digits."""

    def __init__(self, waveforms: np.ndarray, labels: np.ndarray) -> None:
        self.waveforms, self.labels = torch.from_numpy(waveforms), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"waveforms": self.waveforms[index], "labels": self.labels[index]}


class BalancedClips(Dataset):
    """One epoch of training draws: item i is a clip of a class drawn uniformly (every digit equally often), and
    the seed of its batch's augmentation, both drawn from (seed, epoch, i) so a resumed run redraws the same."""

    def __init__(self, clips: Clips, seed: int, epoch: int) -> None:
        self.clips, self.seed, self.epoch = clips, seed, epoch
        labels = clips.labels.numpy()
        self.by_class = [np.flatnonzero(labels == label) for label in np.unique(labels)]

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        members = self.by_class[rng.integers(len(self.by_class))]
        return {**self.clips[int(members[rng.integers(len(members))])], "seeds": torch.tensor(rng.integers(2**62))}


class DigitDataModule(lightning.LightningDataModule):
    """SC09 splits (Speech Commands or WaveGAN layout, or `seqmamba data make-digits` output) as 1 s clips.

    Unreadable or silent files are reported by name and skipped. Training draws classes equally
    often; validation and test go through every clip once, in order.

    Args:
        root: the SC09 folder (digit folders, train/valid/test, or `seqmamba data make-digits` output)
        batch_size: clips per batch
        num_workers: data loader worker processes
        seed: random seed of the balanced sampler
        features: mel front-end settings (must match the model's)
    """

    def __init__(self, root: str, batch_size: int = 128, num_workers: int = 0, seed: int = 0,
                 features: MelSettings | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.features = self.hparams.features = features or MelSettings()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.root, self.batch_size, self.num_workers, self.seed = root, batch_size, num_workers, seed
        self.clips: dict[str, Clips] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.clips:
            return
        for split, files in sc09_split_files(self.root).items():
            usable, _ = scan_audio_files(files, f"{self.root} {split}", self.features.sample_rate)
            if not usable:
                raise InputError(self.root, f"the {split} split has no readable clip; every digit folder needs "
                                            f"clips, and {split} ones listed (see seqmamba data make-digits)")
            labels = np.array([sc09_label(f.path) for f in usable], dtype=np.int64)
            waveforms = np.stack([load_clip(f.path, self.features) for f in usable])  # (N, T)
            self.clips[split] = Clips(waveforms, labels)
        missing = sorted(set(range(len(SC09_LABELS))) - set(self.clips["train"].labels.tolist()))
        if missing:
            raise InputError(self.root, f"the train split has no clip of {', '.join(SC09_LABELS[i] for i in missing)}; "
                                        "the classifier needs every digit")

    def train_dataloader(self) -> DataLoader:
        clips = self.clips["train"]
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return resumable_loader(BalancedClips(clips, self.seed, epoch), self.batch_size, epoch,
                                drop_last=len(clips) >= self.batch_size, num_workers=self.num_workers)

    def _in_order(self, split: str) -> DataLoader:
        return DataLoader(self.clips[split], batch_size=self.batch_size, num_workers=self.num_workers,
                          worker_init_fn=ignore_stop_signals)

    def val_dataloader(self) -> DataLoader:
        return self._in_order("valid")

    def test_dataloader(self) -> DataLoader:
        return self._in_order("test")


def check_same_features(model: DigitClassifierTask, data: DigitDataModule) -> None:
    """The clips the data cuts and the mel images the model makes must agree (sample rate, length)."""
    if data.features != model.hparams.features:
        raise ValueError(f"features differ between the model ({model.hparams.features}) and the data "
                         f"({data.features}); give model.features and data.features the same settings")
