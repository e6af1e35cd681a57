"""Species windows for fine-tuning, for LightningCLI: balanced random training windows, fixed held-out ones.

Batches are {"input_ids": (B, L), "labels": (B,)} int64; labels index `classes` (manifest order).
The split is by alignment block shared across species, or by fraction of each genome (see
`seqmamba.data.species`). Training windows vary in length, log-uniform from `min_len` to `seq_len`,
one length per batch (so one model classifies reads of every length in between); the test split
is evaluated at each of `test_lengths` in turn (`eval_length` picks the one the test loader serves).
"""

from __future__ import annotations

import lightning
import torch
from torch.utils.data import DataLoader  # evaluation loaders

from seqmamba.data.intervals import check_split_fractions
from seqmamba.data.species import (
    BalancedWindows,
    FixedWindows,
    JoinedGenome,
    Region,
    intersect,
    read_manifest,
    read_usable_regions,
    shared_splits,
)
from seqmamba.training.loaders import ignore_stop_signals, resumable_loader


def labelled_batch(items: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """Stack (window, label) items into a classification batch, cut to the shortest window.

    A batch's windows share one length already; the cut only matters where a distributed sampler
    regroups items drawn for different batches.
    """
    windows, labels = zip(*items)
    length = min(len(window) for window in windows)
    return {"input_ids": torch.stack([window[:length] for window in windows]),
            "labels": torch.tensor(labels, dtype=torch.long)}  # (B, L), (B,)


def read_lengths(seq_len: int) -> list[int]:
    """Read lengths the test split is scored at: 150 bp, 1 kb, then 4 kb, 16 kb, ... below seq_len, and seq_len."""
    lengths, length = [150, 1000], 4096
    while length < seq_len:
        lengths.append(length)
        length *= 4
    return [length for length in lengths if length < seq_len] + [seq_len]


class SpeciesDataModule(lightning.LightningDataModule):
    """Reads a species manifest, splits every genome by the same blocks, serves windows of `seq_len`.

    `split_chunks` cuts the genomes into that many parts, each split train | valid | test, so the
    held-out regions are spread out (fewer chunks: longer held-out stretches, for long windows).
    `val_windows` / `test_windows` are per species, evenly spaced over the split, fixed.

    Args:
        manifest: species manifest (TSV: species, FASTA path), e.g. `seqmamba data apes`'s species.tsv
        seq_len: bases per window
        batch_size: windows per batch
        samples_per_epoch: training windows drawn per epoch
        valid_fraction: share of every chunk held out for validation
        test_fraction: share of every chunk held out for testing
        split_chunks: parts each genome is cut into before splitting
        val_windows: validation windows per species
        test_windows: test windows per species
        rc_prob: chance a training window is reverse-complemented
        max_n_fraction: windows with more N bases than this share are skipped
        seed: random seed of the window draws
        num_workers: data loader worker processes
    """

    def __init__(self, manifest: str, seq_len: int = 1024, batch_size: int = 16, samples_per_epoch: int = 4096,
                 valid_fraction: float = 0.1, test_fraction: float = 0.1, split_chunks: int = 1,
                 val_windows: int = 64, test_windows: int = 256, rc_prob: float = 0.5, max_n_fraction: float = 0.5,
                 seed: int = 0, num_workers: int = 0, min_len: int = 100,
                 test_lengths: list[int] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.entries = read_manifest(manifest)
        self.classes = [entry.name for entry in self.entries]
        for name in ("seq_len", "batch_size", "samples_per_epoch", "split_chunks", "val_windows", "test_windows",
                     "min_len"):
            if self.hparams[name] < 1:
                raise ValueError(f"{name} must be at least 1, got {self.hparams[name]}")
        check_split_fractions(valid_fraction, test_fraction)
        for name in ("rc_prob", "max_n_fraction"):
            if not 0 <= self.hparams[name] <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {self.hparams[name]}")
        bad = [length for length in test_lengths or () if not 1 <= length <= seq_len]
        if bad:
            raise ValueError(f"test_lengths {bad} lie outside 1..seq_len ({seq_len})")
        self.test_lengths = sorted(set(test_lengths or read_lengths(seq_len)) | {seq_len})  # seq_len last
        self.eval_length = seq_len  # the length the test loader serves; `report` sets each of test_lengths
        self.genomes: list[JoinedGenome] | None = None
        self.regions: list[dict[str, list[Region]]] | None = None
        self._fixed: dict[tuple[str, int], FixedWindows] = {}

    def setup(self, stage: str | None = None) -> None:
        """Open the genomes and split them, failing early on any split that cannot hold a window."""
        if self.genomes is None:
            hp = self.hparams
            self.genomes = [JoinedGenome(entry.fasta) for entry in self.entries]
            self.regions = shared_splits(self.genomes, hp.valid_fraction, hp.test_fraction, hp.split_chunks)
            for entry, genome, regions in zip(self.entries, self.genomes, self.regions):
                if entry.bed is not None:
                    usable = read_usable_regions(entry.bed, genome)
                    for split in regions:
                        regions[split] = intersect(regions[split], usable)
        needed = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",)}.get(stage, ())
        for split in needed:
            self.train_windows() if split == "train" else self.fixed_windows(split, self.eval_length
                                                                               if split == "test" else None)

    def split_regions(self, split: str) -> list[list[Region]]:
        """Per species, the joined-coordinate regions of a split."""
        return [regions[split] for regions in self.regions]

    def train_windows(self) -> BalancedWindows:
        """This run's balanced training windows (set_epoch picks the epoch's draw)."""
        hp = self.hparams
        return BalancedWindows(self.genomes, self.split_regions("train"), hp.seq_len, hp.samples_per_epoch, hp.seed,
                               hp.rc_prob, hp.max_n_fraction, hp.min_len, hp.batch_size)

    def fixed_windows(self, split: str, length: int | None = None) -> FixedWindows:
        """The fixed evaluation windows of "valid" or "test" (of `length` bases, default seq_len), built once."""
        hp = self.hparams
        length = length or hp.seq_len
        if (split, length) not in self._fixed:
            count = hp.val_windows if split == "valid" else hp.test_windows
            self._fixed[split, length] = FixedWindows(self.genomes, self.split_regions(split), length, count, split,
                                                      hp.max_n_fraction)
        return self._fixed[split, length]

    def train_dataloader(self) -> DataLoader:
        """Fresh balanced windows each epoch (when dataloaders are reloaded every epoch)."""
        windows = self.train_windows()
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        windows.set_epoch(epoch)
        return resumable_loader(windows, self.hparams.batch_size, epoch, num_workers=self.hparams.num_workers,
                                collate_fn=labelled_batch)

    def _fixed_loader(self, split: str, length: int | None = None) -> DataLoader:
        return DataLoader(self.fixed_windows(split, length), batch_size=self.hparams.batch_size,
                          num_workers=self.hparams.num_workers, collate_fn=labelled_batch,
                          worker_init_fn=ignore_stop_signals)

    def val_dataloader(self) -> DataLoader:
        return self._fixed_loader("valid")

    def test_dataloader(self) -> DataLoader:
        return self._fixed_loader("test", self.eval_length)
