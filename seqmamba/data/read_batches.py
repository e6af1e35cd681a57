"""Many reads as length-sorted, right-padded token batches, built with array operations (no per-read Python).

Reads are encoded in one table lookup over their concatenation, sorted by length, and cut into
batches of at most `batch_tokens` padded tokens, so reads of one length share a batch and padding
stays small. A read longer than the batch budget gets a batch of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from seqmamba.data.tokenizer import PAD, encode


def encode_reads(seqs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(token ids of all reads end to end (T,) uint8, offsets (N + 1,)): one lookup for the whole list."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    return encode("".join(seqs)), np.concatenate([[0], np.cumsum(lengths)])


def length_batches(lengths: np.ndarray, batch_tokens: int) -> Iterator[np.ndarray]:
    """Indices of reads per batch, shortest reads first; rows x longest row <= batch_tokens (or one row)."""
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    start = 0
    while start < len(order):
        stop = start + max(1, batch_tokens // max(int(sorted_lengths[start]), 1))
        stop = min(stop, len(order))
        while stop - start > 1 and (stop - start) * int(sorted_lengths[stop - 1]) > batch_tokens:
            stop = start + max(1, batch_tokens // int(sorted_lengths[stop - 1]))  # the longest row sets the size
        yield order[start:stop]
        start = stop


def padded_batch(ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reads `rows` right-padded with PAD: ((B, longest) uint8 ids, (B,) lengths)."""
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    longest = int(lengths.max()) if len(rows) else 0
    batch = np.full((len(rows), longest), PAD, dtype=np.uint8)
    row = np.repeat(np.arange(len(rows)), lengths)  # (T_batch,) each token's row
    column = np.arange(len(row)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # position within its read
    batch[row, column] = ids[np.repeat(starts, lengths) + column]
    return batch, lengths
