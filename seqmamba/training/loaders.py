"""Training batches that can start mid-epoch, so a resumed run sees exactly the batches it had left.

Every train loader is built for one epoch and draws nothing at iteration time: its order and its samples are
functions of (seed, epoch, index), so any number of iterators over it (Lightning makes one while configuring
optimizers and may discard it; DataLoader workers prefetch as soon as an iterator exists) yield the same batches.
The run machinery records in every checkpoint how many batches of the current epoch were trained; on resume it
calls `resume_mid_epoch(epoch, n)` before Lightning builds the train loader, and every iteration of that epoch's
loader then drops its first n batches. Skipping happens on indices, so skipped batches are never loaded.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterable, Iterator, Sized

from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

_resume_point: tuple[int, int] | None = None  # (epoch, batches of it already trained) of the checkpoint resumed


def resume_mid_epoch(epoch: int, batches_done: int) -> None:
    """Make every train loader of `epoch` built in this process start after its first `batches_done` batches."""
    global _resume_point
    _resume_point = (epoch, batches_done)


def forget_resume_point() -> None:
    """The run is over: nothing pending leaks into another run in this process."""
    global _resume_point
    _resume_point = None


class SkippableBatchSampler(BatchSampler):
    """BatchSampler of one epoch whose every iteration drops the batches a resumed run had already trained."""

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool, epoch: int) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = _resume_point or (None, 0)
        skip = skip if epoch == self.epoch else 0
        for number, batch in enumerate(super().__iter__()):
            if number >= skip:
                yield batch


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader workers leave SIGTERM / SIGINT to the main process, which saves a checkpoint and stops them.

    A scheduler signals the whole process group; workers that died on it would crash the run before it saves.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def resumable_loader(dataset: Dataset, batch_size: int, epoch: int, *, drop_last: bool = True,
                     collate_fn: Callable | None = None, num_workers: int = 0, **kwargs) -> DataLoader:
    """The train loader of one epoch: in order (the dataset draws its seeded randomness per item), resumable."""
    assert isinstance(dataset, Sized)
    sampler = SkippableBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last, epoch=epoch)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=num_workers,
                      worker_init_fn=ignore_stop_signals, **kwargs)
