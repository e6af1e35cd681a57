"""Next-token pretraining data on a FASTA genome (HyenaDNA/HG38-style), for LightningCLI.

Batches are {"input_ids": (B, L), "labels": (B, L)} int64, cut from windows of L + 1 tokens.
Training windows are fresh each epoch, so run the Trainer with `reload_dataloaders_every_n_epochs: 1`
(enforced); that is also what lets the sequence-length warmup change L and B between epochs.
"""

import math
import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import Literal, TypeVar, get_args

import lightning
import numpy as np
import torch
from torch.utils.data import DataLoader  # evaluation loaders

from seqmamba.data.genome import contig_lengths, open_genome
from seqmamba.data.intervals import (
    SPLITS,
    Interval,
    check_split_fractions,
    read_bed_splits,
    split_by_contig,
    split_by_fraction,
)
from seqmamba.data.tokenizer import VOCAB_SIZE
from seqmamba.data.windows import RandomWindows, TiledWindows
from seqmamba.errors import InputError
from seqmamba.training.loaders import ignore_stop_signals, resumable_loader

SplitMode = Literal["bed", "contig", "fraction"]
SPLIT_MODES = get_args(SplitMode)
LETTER_SAMPLE_CHUNKS, LETTER_CHUNK = 256, 4096  # spread over the train split: the alphabet check reads 1 Mb
DNA_LETTERS = frozenset(b"ACGTUNRYSWKMBDHVacgtunryswkmbdhv")
UNIGRAM_SAMPLE_WINDOWS = 1024  # train windows, spread over the split, whose bases set the unigram baseline
_Built = TypeVar("_Built")


def next_token_batch(windows: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stack windows of L + 1 tokens into inputs and their next-token labels."""
    tokens = torch.stack(windows)  # (B, L + 1)
    return {"input_ids": tokens[:, :-1], "labels": tokens[:, 1:]}


class DNADataModule(lightning.LightningDataModule):
    """Splits a genome, then serves random training windows and fixed evaluation windows of it.

    split: "bed" (a HyenaDNA `human-sequences.bed` at `bed`), "contig" (whole `valid_contigs` /
    `test_contigs` held out) or "fraction" (the last `valid_fraction` then `test_fraction` of every
    contig held out). `samples_per_epoch` counts windows of `seq_len`; warmup stages draw the same
    number of tokens and steps. Warmup keeps tokens per step constant when each stage length
    divides `batch_size * seq_len`.

    Args:
        fasta: the genome, FASTA (plain, gzip or bgzip)
        bed: BED file with a split column (train/valid/test), for split bed
        split: how held-out data is chosen: bed, contig or fraction
        valid_contigs: contigs held out for validation, for split contig
        test_contigs: contigs held out for testing, for split contig
        valid_fraction: share of every contig's end held out for validation, for split fraction
        test_fraction: share of every contig's end held out for testing, for split fraction
        seq_len: tokens per training window
        batch_size: windows per batch
        samples_per_epoch: training windows drawn per epoch
        val_max_windows: evaluation windows per split at most (null: all)
        rc_prob: chance a training window is reverse-complemented
        max_n_fraction: windows with more N bases than this share are skipped
        seed: random seed of the window draws
        num_workers: data loader worker processes
        warmup_seq_lens: sequence-length warmup: shorter lengths trained first, one stage each
        warmup_epochs_per_stage: epochs per warmup stage
    """

    def __init__(self, fasta: str, bed: str | None = None, split: SplitMode = "fraction",
                 valid_contigs: list[str] | None = None, test_contigs: list[str] | None = None,
                 valid_fraction: float = 0.05, test_fraction: float = 0.05, seq_len: int = 1024,
                 batch_size: int = 8, samples_per_epoch: int = 4096, val_max_windows: int | None = 256,
                 rc_prob: float = 0.5, max_n_fraction: float = 0.5, seed: int = 0, num_workers: int = 0,
                 warmup_seq_lens: list[int] | None = None, warmup_epochs_per_stage: int = 1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.fasta, self.bed, self.split = fasta, bed, split
        self.valid_contigs, self.test_contigs = valid_contigs or [], test_contigs or []
        self.valid_fraction, self.test_fraction = valid_fraction, test_fraction
        self.seq_len, self.batch_size, self.samples_per_epoch = seq_len, batch_size, samples_per_epoch
        self.val_max_windows, self.rc_prob, self.max_n_fraction = val_max_windows, rc_prob, max_n_fraction
        self.seed, self.num_workers = seed, num_workers
        self.warmup_seq_lens, self.warmup_epochs_per_stage = warmup_seq_lens or [], warmup_epochs_per_stage
        self._check_config()
        self.splits: dict[str, list[Interval]] | None = None
        self._eval_windows: dict[str, TiledWindows] = {}

    def _check_config(self) -> None:
        problems = []
        if self.split not in SPLIT_MODES:
            problems.append(f"split must be one of {', '.join(SPLIT_MODES)}, got {self.split!r}")
        if self.split == "bed" and not self.bed:
            problems.append("split: bed needs bed: the path of a BED file with a split column")
        if self.split == "contig" and not self.valid_contigs:
            problems.append("split: contig needs valid_contigs (and usually test_contigs)")
        for name in ("seq_len", "batch_size", "samples_per_epoch", "warmup_epochs_per_stage"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.val_max_windows is not None and self.val_max_windows < 1:
            problems.append(f"val_max_windows must be at least 1 or null, got {self.val_max_windows}")
        for name in ("rc_prob", "max_n_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                problems.append(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        lens = self.warmup_seq_lens
        if any(n < 1 or n > self.seq_len for n in lens) or any(a >= b for a, b in zip(lens, lens[1:])):
            problems.append(f"warmup_seq_lens must ascend strictly, each in [1, seq_len={self.seq_len}], got {lens}")
        if problems:
            raise ValueError("; ".join(problems))
        check_split_fractions(self.valid_fraction, self.test_fraction)

    def stage_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(seq_len, batch_size) to train with at an epoch: shorter, wider batches first (HyenaDNA warmup)."""
        stage = epoch // self.warmup_epochs_per_stage
        if stage < len(self.warmup_seq_lens):
            seq_len = self.warmup_seq_lens[stage]
            return seq_len, self.batch_size * self.seq_len // seq_len
        return self.seq_len, self.batch_size

    def _make_splits(self) -> dict[str, list[Interval]]:
        lengths = contig_lengths(open_genome(self.fasta))
        if self.split == "bed":
            return read_bed_splits(self.bed, lengths)
        if self.split == "contig":
            return split_by_contig(lengths, self.valid_contigs, self.test_contigs, genome_name=self.fasta)
        return split_by_fraction(lengths, self.valid_fraction, self.test_fraction, min_part=self.seq_len + 1)

    def _intervals(self, split: str) -> list[Interval]:
        intervals = self.splits[split]
        if not intervals:
            hints = {"bed": f"add lines whose split column is {split} to the BED file",
                     "contig": "valid_contigs and test_contigs name the held-out contigs; train gets every other one",
                     "fraction": f"raise {split}_fraction, or lower seq_len so a contig's held-out tail holds a window"}
            source = self.bed if self.split == "bed" else self.fasta
            raise InputError(source, f"the {split} split is empty (split: {self.split}); {hints[self.split]}")
        return intervals

    def _checked(self, split: str, build: Callable[[list[Interval]], _Built]) -> _Built:
        intervals = self._intervals(split)
        try:
            return build(intervals)
        except InputError as error:
            raise InputError(error.path, f"{split} split: {error.problem}") from None

    def evaluation_windows(self, split: str) -> TiledWindows:
        """The fixed windows a split is evaluated on (train: a spread sample), built once and kept."""
        if split not in self._eval_windows:
            cap = UNIGRAM_SAMPLE_WINDOWS if split == "train" else self.val_max_windows
            self._eval_windows[split] = self._checked(split, lambda intervals: TiledWindows(
                self.fasta, intervals, self.seq_len + 1, max_windows=cap, max_n_fraction=self.max_n_fraction))
        return self._eval_windows[split]

    def setup(self, stage: str | None = None) -> None:
        """Open the genome and build the splits a stage needs, failing early on any that cannot serve windows."""
        if self.splits is None:
            self.splits = self._make_splits()
            if stage == "fit" and int(os.environ.get("LOCAL_RANK", 0)) == 0:
                self.warn_unusual_letters()
        needed = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",), "predict": ()}
        for split in needed.get(stage, SPLITS):
            if split == "train":
                self._train_windows(self.seq_len)  # fails now if no interval holds a full-length window
            else:
                self.evaluation_windows(split)

    def unusual_letters(self) -> tuple[Counter, int]:
        """Letters outside ACGT/U, N and the IUPAC codes, counted over chunks spread across the train split."""
        genome, counts, total = open_genome(self.fasta), Counter(), 0
        intervals = self._intervals("train")
        step = max(1, sum(len(i) for i in intervals) // LETTER_SAMPLE_CHUNKS)
        offset = 0
        for interval in intervals:
            for start in range(interval.start + (-offset % step), interval.end, step):
                text = genome[interval.contig][start : min(start + LETTER_CHUNK, interval.end)].encode("ascii", "replace")
                total += len(text)
                counts.update(byte for byte in text if byte not in DNA_LETTERS)
            offset += len(interval)
        return Counter({chr(k): v for k, v in counts.items()}), total

    def warn_unusual_letters(self) -> None:
        """Say how much of the genome will read as UNK: a protein or text file trains silently otherwise."""
        counts, total = self.unusual_letters()
        if counts and total:
            shown = ", ".join(f"{letter!r} {n}" for letter, n in counts.most_common(6))
            print(f"warning: {self.fasta}: {sum(counts.values()) / total:.1%} of {total} sampled bases are not DNA "
                  f"letters and read as UNK ({shown}); is this a DNA FASTA?", file=sys.stderr)

    def _train_windows(self, seq_len: int) -> RandomWindows:
        num_samples = self.samples_per_epoch * self.seq_len // seq_len
        return self._checked("train", lambda intervals: RandomWindows(
            self.fasta, intervals, seq_len + 1, num_samples, self.seed, self.rc_prob, self.max_n_fraction))

    def _current_epoch(self) -> int:
        if self.trainer is None:
            return 0
        if self.trainer.reload_dataloaders_every_n_epochs != 1:
            raise InputError("config", "the DNA data module draws new training windows every epoch: "
                                       "set trainer: reload_dataloaders_every_n_epochs: 1")
        return self.trainer.current_epoch

    def train_dataloader(self) -> DataLoader:
        """Random windows of this epoch's warmup stage, drawn afresh each epoch."""
        epoch = self._current_epoch()
        seq_len, batch_size = self.stage_for_epoch(epoch)
        windows = self._train_windows(seq_len)
        windows.set_epoch(epoch)
        return resumable_loader(windows, batch_size, epoch, num_workers=self.num_workers, collate_fn=next_token_batch)

    def _evaluation_loader(self, split: str) -> DataLoader:
        return DataLoader(self.evaluation_windows(split), batch_size=self.batch_size,
                          num_workers=self.num_workers, collate_fn=next_token_batch,
                          worker_init_fn=ignore_stop_signals)

    def val_dataloader(self) -> DataLoader:
        """Tiled windows of the valid split at full seq_len, the same every epoch."""
        return self._evaluation_loader("valid")

    def test_dataloader(self) -> DataLoader:
        """Tiled windows of the test split at full seq_len."""
        return self._evaluation_loader("test")

    def _label_counts(self, split: str) -> np.ndarray:
        counts = np.zeros(VOCAB_SIZE, dtype=np.int64)
        for window in self.evaluation_windows(split):
            counts += np.bincount(window[1:].numpy(), minlength=VOCAB_SIZE)
        return counts

    def unigram_perplexity(self, split: str = "valid") -> float:
        """Perplexity of add-one-smoothed train base frequencies on a split's labels: the baseline to beat.

        Frequencies come from up to UNIGRAM_SAMPLE_WINDOWS train windows spread over the split, smoothed
        over all VOCAB_SIZE tokens; the mean runs over every label token of the split's evaluation
        windows, as a model's per-token perplexity on the same loader does.
        """
        if self.splits is None:
            raise RuntimeError("call setup() before unigram_perplexity()")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        train = self._label_counts("train")
        log_p = np.log((train + 1) / (train.sum() + VOCAB_SIZE))
        labels = self._label_counts(split)
        return math.exp(-float((labels * log_p).sum()) / labels.sum())
