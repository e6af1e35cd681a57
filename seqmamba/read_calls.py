"""Species probabilities for reads of any length from a fine-tuned checkpoint: what `seqmamba classify` runs.

Length rule: a read no longer than the training length `seq_len` is classified whole (the model
is causal, so a short read is simply a shorter sequence); a longer read is cut into
ceil(length / seq_len) pieces of `seq_len` bases, consecutive from its start, the last one
ending at the read's end, and its probabilities are the mean of its pieces'. Pieces are sorted
by length and batched up to `batch_tokens` tokens, right-padded, so equal-length reads share a batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from seqmamba.data.tokenizer import PAD, encode
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.training.model_loading import load_model


@dataclass
class LoadedClassifier:
    """A fine-tuned classifier with what labelling reads needs: class names and training length."""

    model: SequenceClassifier
    classes: list[str]
    seq_len: int


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedClassifier:
    """The classifier of a `seqmamba finetune` checkpoint, in eval mode on `device`, with its classes and seq_len."""
    loaded = load_model(path, "species", device)
    return LoadedClassifier(loaded.module, list(loaded.settings["classes"]), loaded.data["seq_len"])


def read_pieces(seq: str, seq_len: int) -> list[np.ndarray]:
    """Token ids of the pieces a read is classified by (the module's length rule); none for an empty read."""
    ids = encode(seq)
    if len(ids) <= seq_len:
        return [ids] if len(ids) else []
    starts = [*range(0, len(ids) - seq_len, seq_len), len(ids) - seq_len]
    return [ids[s : s + seq_len] for s in starts]


@torch.no_grad()
def predict_proba(loaded: LoadedClassifier, reads: list[str], batch_tokens: int = 1 << 16) -> np.ndarray:
    """(N, C) class probabilities per read; rows of empty reads are NaN."""
    pieces = [(i, ids) for i, seq in enumerate(reads) for ids in read_pieces(seq, loaded.seq_len)]
    pieces.sort(key=lambda piece: len(piece[1]))
    device = next(loaded.model.parameters()).device
    sums = np.zeros((len(reads), len(loaded.classes)))
    counts = np.zeros(len(reads))
    start = 0
    while start < len(pieces):
        stop = start + 1
        while stop < len(pieces) and (stop - start + 1) * len(pieces[stop][1]) <= batch_tokens:
            stop += 1
        longest = len(pieces[stop - 1][1])
        batch = np.full((stop - start, longest), PAD, dtype=np.int64)  # (B, L) right-padded
        lengths = np.array([len(ids) for _, ids in pieces[start:stop]])
        for row, (_, ids) in enumerate(pieces[start:stop]):
            batch[row, : len(ids)] = ids
        input_ids = torch.from_numpy(batch).to(device)
        ragged = None if lengths.min() == longest else torch.from_numpy(lengths).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            probs = torch.softmax(loaded.model(input_ids, ragged).float(), dim=1).cpu().numpy()  # (B, C)
        owners = np.array([i for i, _ in pieces[start:stop]])
        np.add.at(sums, owners, probs)
        np.add.at(counts, owners, 1)
        start = stop
    with np.errstate(invalid="ignore"):
        return sums / counts[:, None]
