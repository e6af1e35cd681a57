"""Species probabilities for reads of any length from a fine-tuned checkpoint: what `seqmamba classify` runs.

Every read is classified whole. A read no longer than the training length `seq_len` takes one
pass (the model is causal, so a short read is simply a shorter sequence); a longer one is read in
chunks of `seq_len` with the SSM state carried from chunk to chunk and mean pooling accumulated
over all of them: the same answer as one pass over the whole read, in the memory of one chunk.
Reads are sorted by length and batched up to `batch_tokens` tokens, right-padded
(`seqmamba.data.read_batches`). Logits are divided by the checkpoint's fitted temperature, so a
probability of 0.9 means about 90% of such calls are right.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from seqmamba.data.read_batches import encode_reads, length_batches, padded_batch
from seqmamba.errors import InputError
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.training.model_loading import load_model


@dataclass
class LoadedClassifier:
    """A fine-tuned classifier with what labelling reads needs: class names and training length."""

    model: SequenceClassifier
    classes: list[str]
    seq_len: int
    temperature: float = 1.0


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedClassifier:
    """The classifier of a `seqmamba finetune` checkpoint, in eval mode on `device`, with its classes, seq_len and
    the temperature fitted on its validation split (1 for checkpoints written before calibration)."""
    loaded = load_model(path, "species", device)
    temperature = float(loaded.task_state.get("temperature", torch.tensor(1.0)))
    if not (math.isfinite(temperature) and temperature > 0):
        raise InputError(path, f"holds a temperature of {temperature}, which cannot scale probabilities; was it "
                               "edited? Use the checkpoint its run wrote")
    return LoadedClassifier(loaded.module, list(loaded.settings["classes"]), loaded.data["seq_len"], temperature)


@torch.no_grad()
def predict_logits(loaded: LoadedClassifier, reads: list[str], batch_tokens: int = 1 << 16) -> np.ndarray:
    """(N, C) float32 class logits per read (calibrated by the checkpoint's temperature); NaN rows for empty reads."""
    ids, offsets = encode_reads(reads)
    lengths = np.diff(offsets)
    device = next(loaded.model.parameters()).device
    logits = np.full((len(reads), len(loaded.classes)), np.nan, dtype=np.float32)
    for rows in length_batches(lengths, batch_tokens):
        rows = rows[lengths[rows] > 0]
        if not len(rows):
            continue
        batch, row_lengths = padded_batch(ids, offsets, rows)
        input_ids = torch.from_numpy(batch).to(device, non_blocking=True).long()  # (B, L)
        ragged = torch.from_numpy(row_lengths).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if batch.shape[1] > loaded.seq_len:  # longer than training: in chunks of seq_len, state carried
                out = loaded.model.forward_chunked(input_ids, ragged, loaded.seq_len)
            else:
                out = loaded.model(input_ids, None if row_lengths.min() == batch.shape[1] else ragged)
        logits[rows] = (out.float() / loaded.temperature).cpu().numpy()
    return logits


def predict_proba(loaded: LoadedClassifier, reads: list[str], batch_tokens: int = 1 << 16) -> np.ndarray:
    """(N, C) calibrated class probabilities per read; rows of empty reads are NaN."""
    logits = predict_logits(loaded, reads, batch_tokens)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)
