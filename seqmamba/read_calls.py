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

import os
from dataclasses import dataclass

import numpy as np
import torch

from seqmamba.training.checkpoints import load_checkpoint
from seqmamba.data.read_batches import encode_reads, length_batches, padded_batch
from seqmamba.errors import InputError
from seqmamba.nn import MambaLMConfig
from seqmamba.nn.classifier import SequenceClassifier


@dataclass
class LoadedClassifier:
    """A fine-tuned classifier with what labelling reads needs: class names and training length."""

    model: SequenceClassifier
    classes: list[str]
    seq_len: int
    temperature: float = 1.0


def load_classifier(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedClassifier:
    """Rebuild the classifier of a `seqmamba finetune` checkpoint, in eval mode on `device`."""
    checkpoint = load_checkpoint(path)
    hp = checkpoint.get("hyper_parameters", {})
    data_hp = checkpoint.get("datamodule_hyper_parameters", {})
    if not hp.get("classes") or "seq_len" not in data_hp:
        raise InputError(path, "not a species classifier checkpoint (no classes or seq_len); give "
                               "RUN_DIR/checkpoints/last.ckpt of a `seqmamba finetune` run")
    config = hp["backbone"] if isinstance(hp["backbone"], MambaLMConfig) else MambaLMConfig(**hp["backbone"])
    model = SequenceClassifier(config, len(hp["classes"]), hp.get("pooling", "mean"))
    weights = {key.removeprefix("classifier."): value for key, value in checkpoint["state_dict"].items()
               if key.startswith("classifier.")}
    model.load_state_dict(weights)
    temperature = float(checkpoint["state_dict"].get("temperature", 1.0))  # fitted on the validation split
    return LoadedClassifier(model.to(device).eval(), list(hp["classes"]), int(data_hp["seq_len"]), temperature)


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
