"""A training DataLoader that can start mid-epoch, so a resumed run sees exactly the batches it had left.

Lightning saves the `state_dict` of any stateful train loader in the checkpoint and calls `load_state_dict`
before iterating on resume; the run machinery records how many batches of the epoch were trained just before
it saves. Skipping happens on indices, so skipped batches are never loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized

from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler


class SkippableBatchSampler(BatchSampler):
    """BatchSampler whose next iteration drops its first `skip` batches (then forgets the skip)."""

    skip = 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        for number, batch in enumerate(super().__iter__()):
            if number >= skip:
                yield batch


class ResumableLoader(DataLoader):
    """DataLoader with Lightning's stateful-loader interface: the state is the number of batches trained."""

    batches_done = 0

    def state_dict(self) -> dict[str, int]:
        return {"batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.batch_sampler, SkippableBatchSampler):
            self.batch_sampler.skip = int(state.get("batches_done", 0))


def resumable_loader(dataset: Dataset, batch_size: int, *, drop_last: bool = True, collate_fn: Callable | None = None,
                     num_workers: int = 0, **kwargs) -> ResumableLoader:
    """The train loader every data module uses: in order (the dataset draws its own seeded randomness), resumable."""
    assert isinstance(dataset, Sized)
    sampler = SkippableBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)
    return ResumableLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=num_workers, **kwargs)
