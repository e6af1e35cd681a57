"""`seqmamba classify`: label reads (FASTA/FASTQ, plain or gzip) with a fine-tuned species model.

Writes predictions.tsv (file, read_id, length, call, p_<species>...) and, beside it,
predictions.summary.tsv (per file: reads and fraction per call); prints the summary. Reads below
`--min-confidence` are called `unclassified`; empty reads are called `empty` and counted. The
length rule for reads shorter or longer than the training length is in `seqmamba.read_calls`.
Output is written to a temporary file and renamed at the end, so a failed run leaves no half file.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seqmamba.data.reads import read_records
from seqmamba.errors import InputError
from seqmamba.read_calls import LoadedClassifier, load_classifier, predict_proba

CHUNK_READS = 8192  # reads held in memory at once


def build_parser() -> argparse.ArgumentParser:
    """The command's flags."""
    parser = argparse.ArgumentParser(prog="seqmamba classify", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="FASTA or FASTQ files, plain or gzip")
    parser.add_argument("--ckpt", required=True, type=Path, help="RUN_DIR/checkpoints/last.ckpt of `seqmamba finetune`")
    parser.add_argument("-o", "--out", type=Path, default=Path("predictions.tsv"))
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="reads whose top probability is below this are called 'unclassified'")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="tokens per batch (default 2^20 on GPU, 2^15 on CPU)")
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ...")
    return parser


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
    lines = ["file\tcall\treads\tfraction"]
    for name, counter in counts.items():
        total = max(sum(counter.values()), 1)
        lines += [f"{name}\t{call}\t{counter[call]}\t{counter[call] / total:.4f}" for call in calls]
    return lines


def classify_files(loaded: LoadedClassifier, files: list[Path], out: Path, min_confidence: float,
                   batch_tokens: int, ckpt: str | Path = "--ckpt") -> dict[str, Counter]:
    """Label every read of every file into `out` (atomically); returns call counts per file."""
    header = ["file", "read_id", "length", "call", *(f"p_{name}" for name in loaded.classes)]
    counts: dict[str, Counter] = {}
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "w") as table, tqdm(unit=" reads", disable=None) as progress:
            table.write("\t".join(header) + "\n")
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
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return counts


def main(argv: list[str]) -> dict:
    """Parse, load the model, label the reads, write and print the per-file summary."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.min_confidence <= 1:
        raise InputError("--min-confidence", f"must lie in [0, 1], got {args.min_confidence}")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    batch_tokens = args.batch_tokens or (1 << 20 if device.type == "cuda" else 1 << 15)
    for k, path in enumerate(args.files):
        if not path.is_file():
            raise InputError(path, "no such read file; give FASTA or FASTQ files, plain or gzip")
        if twin := next((p for p in args.files[:k] if p.resolve() == path.resolve()), None):
            raise InputError(path, f"given twice (also as {twin}); its reads would be counted twice: "
                                   "give each file once")
    if not args.out.parent.is_dir():
        raise InputError(args.out, "its folder does not exist; create it or choose another -o path")
    loaded = load_classifier(args.ckpt, device)
    counts = classify_files(loaded, args.files, args.out, args.min_confidence, batch_tokens, args.ckpt)
    lines = summary_lines(counts, [*loaded.classes, "unclassified", "empty"])
    summary_path = args.out.with_name(args.out.stem + ".summary.tsv")
    tmp = summary_path.with_name(f".{summary_path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(summary_path)
    print("\n".join(lines))
    for name, counter in counts.items():
        if not sum(counter.values()):
            print(f"warning: {name} holds no reads (an empty file); its rows in {summary_path} are all 0",
                  file=sys.stderr)
    print(f"predictions: {args.out}; summary: {summary_path}")
    return {str(path): dict(counter) for path, counter in counts.items()}
