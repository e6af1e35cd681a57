"""Training batches that can start mid-epoch, so a resumed run sees exactly the batches it had left.

The run machinery records in every checkpoint how many batches of the current epoch were trained, and on
resume calls `resume_mid_epoch(n)` before Lightning builds the train loader (Lightning restores callbacks
first, then draws the first batch while configuring optimizers). The next epoch to be iterated then drops
its first n batches. Skipping happens on indices, so skipped batches are never loaded.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sized

from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

_pending_skip = 0  # batches the next train epoch must drop: set on resume, consumed once


def resume_mid_epoch(batches_done: int) -> None:
    """Make the next train epoch iterated in this process start after its first `batches_done` batches."""
    global _pending_skip
    _pending_skip = batches_done


class SkippableBatchSampler(BatchSampler):
    """BatchSampler whose first iteration after a mid-epoch resume drops the batches already trained."""

    def __iter__(self) -> Iterator[list[int]]:
        global _pending_skip
        skip, _pending_skip = _pending_skip, 0
        for number, batch in enumerate(super().__iter__()):
            if number >= skip:
                yield batch


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM / SIGINT to the main process, which saves a checkpoint and stops them.

    A scheduler signals the whole process group; workers that died on it would crash the run before it saves.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def resumable_loader(dataset: Dataset, batch_size: int, *, drop_last: bool = True, collate_fn: Callable | None = None,
                     num_workers: int = 0, **kwargs) -> DataLoader:
    """The train loader every data module uses: in order (the dataset draws its own seeded randomness), resumable."""
    assert isinstance(dataset, Sized)
    sampler = SkippableBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=num_workers,
                      worker_init_fn=ignore_stop_signals, **kwargs)
