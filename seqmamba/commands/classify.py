"""`seqmamba classify`: label reads (FASTA/FASTQ, plain or gzip) with a fine-tuned species model.

Writes predictions.tsv (file, read_id, length, call, p_<species>...) and, beside it,
predictions.summary.tsv (per file: reads and fraction per call); prints the summary. Reads below
`--min_confidence` are called `unclassified`; empty reads are called `empty` and counted. The
length rule for reads shorter or longer than the training length is in `seqmamba.read_calls`.
Output is written to a temporary file and renamed at the end, so a failed run leaves no half file. `--out` (and the
summary beside it) never replaces an input or the checkpoint, and replaces an existing file only when it is an
earlier predictions table (or summary) of this command.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seqmamba.data.reads import read_records
from seqmamba.devices import resolve_device
from seqmamba.errors import InputError
from seqmamba.outputs import check_output_file, written_atomically
from seqmamba.read_calls import LoadedClassifier, load_classifier, predict_proba

CHUNK_READS = 8192  # reads held in memory at once
TABLE_HEADER = "file\tread_id\tlength\tcall\t"  # how every predictions table starts (then p_<species> columns)
SUMMARY_HEADER = "file\tcall\treads\tfraction\n"


def call_reads(probs: np.ndarray, lengths: list[int], classes: list[str], min_confidence: float) -> list[str]:
    """A species per read, 'unclassified' below the confidence threshold, 'empty' for reads with no bases."""
    calls = []
    for row, length in zip(probs, lengths):
        if length == 0:
            calls.append("empty")
        else:
            best = int(row.argmax())
            calls.append(classes[best] if row[best] >= min_confidence else "unclassified")
    return calls


def check_finite(probs: np.ndarray, lengths: list[int], ckpt: str | Path, path: Path, read_id: list[str]) -> None:
    """A model that yields NaN or infinite probabilities for a read with bases is broken: stop, naming it."""
    bad = [i for i, (row, length) in enumerate(zip(probs, lengths)) if length and not np.isfinite(row).all()]
    if bad:
        raise InputError(ckpt, f"the model gives NaN or infinite probabilities for {len(bad)} of {len(probs)} reads "
                               f"(first {read_id[bad[0]]!r} of {path}); its weights are broken: use another checkpoint "
                               "(e.g. best.ckpt) or train again")


def summary_lines(counts: dict[str, Counter], calls: list[str]) -> list[str]:
    """summary.tsv lines: per file and call, reads and their fraction of the file's reads."""
    lines = [SUMMARY_HEADER.rstrip("\n")]
    for name, counter in counts.items():
        total = max(sum(counter.values()), 1)
        lines += [f"{name}\t{call}\t{counter[call]}\t{counter[call] / total:.4f}" for call in calls]
    return lines


def classify_files(loaded: LoadedClassifier, files: list[Path], out: Path, min_confidence: float,
                   batch_tokens: int, ckpt: str | Path = "--ckpt") -> dict[str, Counter]:
    """Label every read of every file into `out` (atomically); returns call counts per file."""
    header = TABLE_HEADER + "\t".join(f"p_{name}" for name in loaded.classes)
    counts: dict[str, Counter] = {}
    with written_atomically(out) as tmp:
        with open(tmp, "w") as table, tqdm(unit=" reads", disable=None) as progress:
            table.write(header + "\n")
            for path in files:
                counts[str(path)] = Counter()
                records = read_records(path)
                while chunk := list(itertools.islice(records, CHUNK_READS)):
                    probs = predict_proba(loaded, [seq for _, seq in chunk], batch_tokens)
                    lengths = [len(seq) for _, seq in chunk]
                    check_finite(probs, lengths, ckpt, path, [read_id for read_id, _ in chunk])
                    calls = call_reads(probs, lengths, loaded.classes, min_confidence)
                    counts[str(path)].update(calls)
                    for (read_id, seq), call, row in zip(chunk, calls, probs):
                        cells = ["NA"] * len(row) if call == "empty" else [f"{p:.4f}" for p in row]
                        table.write("\t".join([str(path), read_id, str(len(seq)), call, *cells]) + "\n")
                    progress.update(len(chunk))
    return counts


def classify(files: list[Path], *, ckpt: Path, out: Path = Path("predictions.tsv"), min_confidence: float = 0.0,
             batch_tokens: int | None = None, device: str = "auto") -> dict:
    """Label reads (FASTA/FASTQ, plain or gzip) with a fine-tuned species model.

    Args:
        files: FASTA or FASTQ files, plain or gzip
        ckpt: RUN/checkpoints/last.ckpt of `seqmamba finetune`
        out: the predictions table; its .summary.tsv lands beside it
        min_confidence: reads whose top probability is below this are called 'unclassified', in [0, 1]
        batch_tokens: tokens per batch (default 2^20 on GPU, 2^15 on CPU)
        device: auto (the GPU when there is one), cpu, cuda or cuda:N
    """
    if not 0 <= min_confidence <= 1:
        raise InputError("--min_confidence", f"must lie in [0, 1], got {min_confidence}")
    device = resolve_device(device)
    batch_tokens = batch_tokens or (1 << 20 if device.type == "cuda" else 1 << 15)
    files, out = [Path(path) for path in files], Path(out)
    for k, path in enumerate(files):
        if not path.is_file():
            raise InputError(path, "no such read file; give FASTA or FASTQ files, plain or gzip")
        if twin := next((p for p in files[:k] if p.resolve() == path.resolve()), None):
            raise InputError(path, f"given twice (also as {twin}); its reads would be counted twice: "
                                   "give each file once")
    if not out.parent.is_dir():
        raise InputError(out, "its folder does not exist; create it or choose another --out path")
    summary_path = out.with_name(out.stem + ".summary.tsv")
    for path, header in ((out, TABLE_HEADER), (summary_path, SUMMARY_HEADER)):
        check_output_file(path, "--out", [*files, ckpt], header)
    loaded = load_classifier(ckpt, device)
    counts = classify_files(loaded, files, out, min_confidence, batch_tokens, ckpt)
    lines = summary_lines(counts, [*loaded.classes, "unclassified", "empty"])
    with written_atomically(summary_path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for name, counter in counts.items():
        if not sum(counter.values()):
            print(f"warning: {name} holds no reads (an empty file); its rows in {summary_path} are all 0",
                  file=sys.stderr)
    print(f"predictions: {out}; summary: {summary_path}")
    return {str(path): dict(counter) for path, counter in counts.items()}
