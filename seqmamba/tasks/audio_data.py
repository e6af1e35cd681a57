"""Quantized waveform data (SC09 or YouTubeMix layout) for autoregressive training, for LightningCLI.

Batches are {"input_ids": (B, L), "labels": (B, L)} int64: labels are the codes of a segment (padding
IGNORE_INDEX), input_ids the same shifted right by one behind the start token. SC09 gives one
segment per clip; YouTubeMix cuts each recording into consecutive segments of seq_len (s4's
chunking). The training order is drawn from (seed, epoch), so the runner's per-epoch reload
gives a new order each epoch and a resumed run skips exactly the batches it had trained.
"""

from __future__ import annotations

from typing import Literal, get_args

import lightning
import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler, Subset

from seqmamba.data.audio_datasets import (
    AudioFile,
    QuantizedSegments,
    Segment,
    clip_segments,
    sc09_split_files,
    scan_audio_files,
    tiled_segments,
    youtubemix_split_files,
)
from seqmamba.data.intervals import SPLITS
from seqmamba.data.quantize import QUANTIZATIONS, Quantization
from seqmamba.errors import InputError
from seqmamba.training.loaders import ignore_stop_signals, resumable_loader

Layout = Literal["sc09", "youtubemix"]
LAYOUTS = get_args(Layout)
MAX_BITS = 16
EPOCH_SEED_STRIDE = 1_000_003  # seeds of (seed, epoch) pairs never collide for runs under a million epochs


class AudioDataModule(lightning.LightningDataModule):
    """Splits an audio folder by its layout, drops unusable files, and serves quantized segments.

    samples_per_epoch: training segments per epoch (drawn at random, with replacement only when more
    than the split holds); None = every training segment once. val_max_clips caps the validation
    segments (spread evenly over the split) to keep validation quick.

    Args:
        root: the audio folder
        layout: how the folder is split: sc09 (digit folders or train/valid/test) or youtubemix (one folder)
        seq_len: samples per training segment (16000 = 1 s)
        batch_size: segments per batch
        quantization: how samples become codes: mu-law or linear
        bits: bits per sample code (8: 256 codes)
        samples_per_epoch: training segments per epoch (null: every segment once)
        num_workers: data loader worker processes
        seed: random seed of the segment draws
        val_max_clips: validation segments at most (null: all)
    """

    def __init__(self, root: str, layout: Layout = "sc09", seq_len: int = 16000, batch_size: int = 16,
                 quantization: Quantization = "mu-law", bits: int = 8, samples_per_epoch: int | None = None,
                 num_workers: int = 0, seed: int = 0, val_max_clips: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.root, self.layout, self.seq_len, self.batch_size = root, layout, seq_len, batch_size
        self.quantization, self.bits, self.samples_per_epoch = quantization, bits, samples_per_epoch
        self.num_workers, self.seed, self.val_max_clips = num_workers, seed, val_max_clips
        self._check_config()
        self.split_files: dict[str, list] | None = None
        self.usable: dict[str, list[AudioFile]] = {}
        self.skipped: dict[str, list[str]] = {}

    def _check_config(self) -> None:
        problems = []
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.quantization not in QUANTIZATIONS:
            problems.append(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {self.quantization!r}")
        if not 2 <= self.bits <= MAX_BITS:
            problems.append(f"bits must lie in [2, {MAX_BITS}], got {self.bits}")
        for name in ("seq_len", "batch_size"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("samples_per_epoch", "val_max_clips"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1 or null, got {getattr(self, name)}")
        if self.num_workers < 0:
            problems.append(f"num_workers must be at least 0, got {self.num_workers}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def num_classes(self) -> int:
        """Size of the code vocabulary the model predicts: 2**bits."""
        return 1 << self.bits

    def setup(self, stage: str | None = None) -> None:
        """Split the folder and scan the files a stage needs, failing early on an empty split."""
        if self.split_files is None:
            split_files = sc09_split_files if self.layout == "sc09" else youtubemix_split_files
            self.split_files = split_files(self.root)
        needed = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",), "predict": ()}
        for split in needed.get(stage, SPLITS):
            self.files(split)

    def files(self, split: str) -> list[AudioFile]:
        """The usable files of a split, scanned once (bad ones reported on stderr and kept in self.skipped)."""
        if split not in self.usable:
            if self.split_files is None:
                raise RuntimeError("call setup() before files()")
            usable, skipped = scan_audio_files(self.split_files[split], f"{self.root} {split} split")
            if not usable:
                raise InputError(self.root, f"the {split} split has no usable audio file ({len(skipped)} skipped, "
                                            f"{len(self.split_files[split])} listed); check the {self.layout} layout")
            self.usable[split], self.skipped[split] = usable, skipped
        return self.usable[split]

    def segments(self, split: str) -> list[Segment]:
        """The split's sequences: one per clip (sc09) or consecutive seq_len tiles (youtubemix)."""
        cut = clip_segments if self.layout == "sc09" else tiled_segments
        segments = cut(self.files(split), self.seq_len)
        if split == "valid" and self.val_max_clips is not None and len(segments) > self.val_max_clips:
            keep = np.linspace(0, len(segments) - 1, self.val_max_clips).round().astype(int)
            segments = [segments[i] for i in keep]
        return segments

    def dataset(self, split: str) -> QuantizedSegments:
        """Quantized autoregressive pairs of a split's segments."""
        return QuantizedSegments(self.segments(split), self.seq_len, self.quantization, self.bits)

    def train_dataloader(self) -> DataLoader:
        """Training segments in a seeded order of their own each epoch (or samples_per_epoch random draws),
        resumable mid-epoch: the order depends only on seed and epoch."""
        dataset = self.dataset("train")
        draws = self.samples_per_epoch or len(dataset)
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        generator = torch.Generator().manual_seed(self.seed * EPOCH_SEED_STRIDE + epoch)
        order = list(RandomSampler(dataset, replacement=draws > len(dataset), num_samples=draws, generator=generator))
        return resumable_loader(Subset(dataset, order), self.batch_size, epoch, drop_last=draws >= self.batch_size,
                                num_workers=self.num_workers)  # order drawn now: every iterator sees the same

    def _evaluation_loader(self, split: str) -> DataLoader:
        return DataLoader(self.dataset(split), batch_size=self.batch_size, num_workers=self.num_workers,
                          worker_init_fn=ignore_stop_signals)

    def val_dataloader(self) -> DataLoader:
        """Validation segments in a fixed order (at most val_max_clips)."""
        return self._evaluation_loader("valid")

    def test_dataloader(self) -> DataLoader:
        """Every test segment, in a fixed order."""
        return self._evaluation_loader("test")
