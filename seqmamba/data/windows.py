"""Fixed-length token windows over genome intervals: random ones to train on, tiled ones to evaluate on.

Both datasets hold the FASTA path (not an open handle), so they work in DataLoader workers,
forked or spawned. Items are int64 tensors of `length` token ids (see `seqmamba.data.tokenizer`).
"""

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from seqmamba.data.genome import GenomeReader
from seqmamba.data.intervals import Interval
from seqmamba.data.tokenizer import UNK, N, encode, reverse_complement
from seqmamba.errors import InputError

MAX_DRAWS = 10  # random positions tried per item before a mostly-N window is accepted anyway


def n_fraction(ids: np.ndarray) -> float:
    """Share of N or UNK tokens, the measure of how little a window says about the genome."""
    return float(np.count_nonzero((ids == N) | (ids == UNK))) / max(len(ids), 1)


def _long_enough(fasta: str, intervals: list[Interval], length: int) -> list[Interval]:
    usable = [interval for interval in intervals if len(interval) >= length]
    if not usable:
        longest = max((len(interval) for interval in intervals), default=0)
        raise InputError(fasta, f"no interval is long enough for a window of {length} tokens: the longest of "
                                f"{len(intervals)} intervals has {longest} bases; use a shorter seq_len or longer intervals")
    return usable


class _Windows(Dataset):
    """Windows indexed through a cumulative count per interval, so a genome-wide index costs no memory."""

    def __init__(self, fasta: str | os.PathLike, intervals: list[Interval], length: int, per_interval: np.ndarray,
                 max_n_fraction: float) -> None:
        self.reader = GenomeReader(fasta)
        self.intervals = intervals
        self.length = length
        self.max_n_fraction = max_n_fraction
        self._ends = np.cumsum(per_interval)  # (I,) windows up to and including each interval

    def _nth(self, k: int, stride: int) -> Interval:
        j = int(np.searchsorted(self._ends, k, side="right"))
        start = self.intervals[j].start + (k - int(self._ends[j - 1] if j else 0)) * stride
        return Interval(self.intervals[j].contig, start, start + self.length)

    def _read(self, window: Interval) -> np.ndarray:
        return encode(self.reader.fetch(window.contig, window.start, window.end))


class RandomWindows(_Windows):
    """Uniformly placed training windows, reproducible per (seed, epoch, item) so a resumed run sees the same data.

    A window with more than `max_n_fraction` N/UNK tokens is redrawn, up to MAX_DRAWS times; the
    last draw is then kept, so an epoch never fails on a mostly-N genome (filter those with a BED).
    With probability `rc_prob` the window is reverse-complemented (the strand coin is drawn first,
    so positions do not depend on rc_prob).
    """

    def __init__(self, fasta: str | os.PathLike, intervals: list[Interval], length: int, num_samples: int,
                 seed: int, rc_prob: float = 0.5, max_n_fraction: float = 0.5) -> None:
        usable = _long_enough(str(fasta), intervals, length)
        super().__init__(fasta, usable, length, np.array([len(i) - length + 1 for i in usable]), max_n_fraction)
        self.num_samples = num_samples
        self.seed = seed
        self.rc_prob = rc_prob
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose windows to draw, so every epoch sees new ones."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def _draw(self, i: int) -> tuple[Interval, bool, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        reverse = bool(rng.random() < self.rc_prob)
        for _ in range(MAX_DRAWS):
            window = self._nth(int(rng.integers(self._ends[-1])), stride=1)
            ids = self._read(window)
            if n_fraction(ids) <= self.max_n_fraction:
                break
        return window, reverse, reverse_complement(ids) if reverse else ids

    def locate(self, i: int) -> tuple[Interval, bool]:
        """Where item i comes from and whether it is reverse-complemented, for checks and debugging."""
        window, reverse, _ = self._draw(i)
        return window, reverse

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self._draw(i)[2].astype(np.int64))  # (length,)


class TiledWindows(_Windows):
    """Evaluation windows at a fixed stride, so every evaluated base is counted once and runs compare.

    The default stride `length - 1` makes the next-token labels (window[1:]) of consecutive windows
    tile each interval exactly, apart from its first base and a tail shorter than a stride. Windows
    with more than `max_n_fraction` N/UNK tokens are skipped. With `max_windows`, the tiling is cut
    into that many equal runs and the first usable window of each is kept (deterministic, spread out).
    Building reads each candidate window once, to test it for N.
    """

    def __init__(self, fasta: str | os.PathLike, intervals: list[Interval], length: int, stride: int | None = None,
                 max_windows: int | None = None, max_n_fraction: float = 0.5) -> None:
        self.stride = length - 1 if stride is None else stride
        if self.stride < 1:
            raise ValueError(f"stride must be positive, got {self.stride} (window length {length})")
        usable = _long_enough(str(fasta), intervals, length)
        super().__init__(fasta, usable, length, np.array([(len(i) - length) // self.stride + 1 for i in usable]),
                         max_n_fraction)
        total = int(self._ends[-1])
        runs = np.linspace(0, total, min(max_windows or total, total) + 1).astype(int)
        self.windows: list[Interval] = []
        for first, stop in zip(runs[:-1], runs[1:]):
            for k in range(first, stop):
                window = self._nth(k, self.stride)
                if n_fraction(self._read(window)) <= max_n_fraction:
                    self.windows.append(window)
                    break
        if not self.windows:
            raise InputError(fasta, f"every window of {length} tokens has more than {max_n_fraction:.0%} N; "
                                    f"choose intervals with sequence or raise max_n_fraction")

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self._read(self.windows[i]).astype(np.int64))  # (length,)
