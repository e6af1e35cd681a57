"""`seqmamba classify`: label reads (FASTA/FASTQ, plain or gzip, files or stdin, single or paired) by species.

Writes predictions.tsv (file, read_id, length, call, p_<species>...) and, beside it,
predictions.summary.tsv (per file: reads and fraction per call) and predictions.abundance.tsv
(per class and file: share of the classified reads); prints the summary. `--report FILE` adds a
Kraken 2-style report, `--kraken-output FILE` Kraken-style per-read lines (formats in
`seqmamba.read_reports`). Reads below `--min-confidence` (a calibrated probability) are called
`unclassified`; empty reads are called `empty` and counted. A file named `-` is read from stdin.
`--paired R1 R2` classifies each pair as one: the mates' calibrated logits are summed (independent
evidence for one fragment). Every output is written to a temporary file and renamed at the end,
so a failed run leaves no half file and keeps earlier outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seqmamba.data.reads import STDIN, read_pairs, read_records
from seqmamba.errors import InputError
from seqmamba.outputs import replaced_on_success
from seqmamba.read_calls import LoadedClassifier, load_classifier, predict_logits
from seqmamba.read_reports import (
    EMPTY,
    UNCLASSIFIED,
    abundance_lines,
    call_reads,
    kraken_output_lines,
    kraken_report_lines,
    summary_lines,
)

CHUNK_READS = 1 << 16  # reads (or pairs) held in memory at once: several full GPU batches of short reads
Source = tuple[str, Iterator[tuple[str, tuple[str, ...]]]]  # (name, (read id, mates)) per input


def build_parser() -> argparse.ArgumentParser:
    """The command's flags."""
    parser = argparse.ArgumentParser(prog="seqmamba classify", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="FASTA or FASTQ files, plain or gzip; - reads stdin")
    parser.add_argument("--paired", nargs=2, action="append", type=Path, default=[], metavar=("R1", "R2"),
                        help="mate files of a paired-end run, classified pair by pair (repeatable)")
    parser.add_argument("--ckpt", required=True, type=Path, help="RUN_DIR/checkpoints/last.ckpt of `seqmamba finetune`")
    parser.add_argument("-o", "--out", type=Path, default=Path("predictions.tsv"))
    parser.add_argument("--report", type=Path, help="also write a Kraken 2-style report (six columns) here")
    parser.add_argument("--kraken-output", type=Path, help="also write Kraken-style per-read lines here")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="reads whose calibrated top probability is below this are called 'unclassified'")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="tokens per batch (default 2^20 on GPU, 2^15 on CPU)")
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:1 ...")
    return parser


def sources(files: list[Path], pairs: list[list[Path]]) -> list[Source]:
    """Each input as (name, records of (read id, (sequence,)) or (read id, (mate 1, mate 2)))."""
    singles = [(("stdin" if str(path) == STDIN else str(path)),
                ((read_id, (seq,)) for read_id, seq in read_records(path))) for path in files]
    paired = [(f"{first}|{second}", ((read_id, (seq1, seq2)) for read_id, seq1, seq2 in read_pairs(first, second)))
              for first, second in pairs]
    return singles + paired


def mate_probabilities(loaded: LoadedClassifier, mates: list[tuple[str, ...]], batch_tokens: int) -> np.ndarray:
    """(N, C) probabilities of reads or pairs: a pair's calibrated logits summed; NaN where every mate is empty."""
    total = None
    for column in zip(*mates):
        logits = predict_logits(loaded, list(column), batch_tokens)
        total = logits if total is None else np.where(np.isnan(total), logits,
                                                      np.where(np.isnan(logits), total, total + logits))
    probs = np.exp(total - total.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


def classify_sources(loaded: LoadedClassifier, inputs: list[Source], table, kraken, min_confidence: float,
                     batch_tokens: int) -> dict[str, Counter]:
    """Label every read (or pair) of every input into open text files; returns call counts per input."""
    table.write("\t".join(["file", "read_id", "length", "call", *(f"p_{name}" for name in loaded.classes)]) + "\n")
    counts: dict[str, Counter] = {}
    with tqdm(unit=" reads", disable=None) as progress:
        for name, records in inputs:
            counts[name] = Counter()
            while chunk := list(itertools.islice(records, CHUNK_READS)):
                probs = mate_probabilities(loaded, [mates for _, mates in chunk], batch_tokens)
                calls, confidence = call_reads(probs, loaded.classes, min_confidence)
                counts[name].update(calls.tolist())
                ids = [read_id for read_id, _ in chunk]
                lengths = ["|".join(str(len(seq)) for seq in mates) for _, mates in chunk]
                cells = np.char.mod("%.4f", np.nan_to_num(probs, nan=-1.0)).astype(object)
                cells[np.isnan(probs)] = "NA"
                table.writelines(f"{name}\t{read_id}\t{length}\t{call}\t" + "\t".join(row) + "\n"
                                 for read_id, length, call, row in zip(ids, lengths, calls, cells))
                if kraken is not None:
                    kraken.writelines(line + "\n" for line in kraken_output_lines(ids, calls, lengths, confidence))
                progress.update(len(chunk))
            if name == "stdin" and not counts[name]:
                raise InputError("stdin", "no reads came in; pipe FASTA or FASTQ into `seqmamba classify -`")
    return counts


def check_outputs(args: argparse.Namespace) -> list[Path]:
    """The files this run writes, refused before any work where one is a folder or its folder is missing."""
    summary = args.out.with_name(args.out.stem + ".summary.tsv")
    abundance = args.out.with_name(args.out.stem + ".abundance.tsv")
    named = [("-o", args.out), ("--report", args.report), ("--kraken-output", args.kraken_output)]
    inputs = {path.resolve() for path in [*args.files, *itertools.chain(*args.paired)] if str(path) != STDIN}
    for flag, path in named:
        if path is None:
            continue
        if path.is_dir():
            raise InputError(path, f"{flag} names a folder; give a file path, e.g. {path / 'report.txt'}")
        if not path.parent.is_dir():
            raise InputError(path, f"{flag}: its folder does not exist; create it or choose another path")
        if path.resolve() in inputs:
            raise InputError(path, f"{flag} names an input file; outputs never replace inputs, choose another path")
    return [args.out, summary, abundance, *(path for path in (args.report, args.kraken_output) if path)]


def main(argv: list[str]) -> dict:
    """Parse, load the model, label the reads, write the outputs and print the per-file summary."""
    args = build_parser().parse_args(argv)
    if not 0 <= args.min_confidence <= 1:
        raise InputError("--min-confidence", f"must lie in [0, 1], got {args.min_confidence}")
    if not args.files and not args.paired:
        raise InputError("classify", "no reads given; name FASTA/FASTQ files, - for stdin, or --paired R1 R2")
    if sum(str(path) == STDIN for path in args.files) > 1:
        raise InputError("stdin", "- is given more than once; stdin can be read once")
    for path in [*args.files, *itertools.chain(*args.paired)]:
        if str(path) != STDIN and not path.is_file():
            raise InputError(path, "no such read file; give FASTA or FASTQ files, plain or gzip")
    outputs = check_outputs(args)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    batch_tokens = args.batch_tokens or (1 << 20 if device.type == "cuda" else 1 << 15)
    loaded = load_classifier(args.ckpt, device)
    with replaced_on_success(outputs) as tmps:
        with open(tmps[0], "w") as table, open(tmps[-1], "w") if args.kraken_output \
                else contextlib.nullcontext() as kraken:
            counts = classify_sources(loaded, sources(args.files, args.paired), table, kraken, args.min_confidence,
                                      batch_tokens)
        lines = summary_lines(counts, [*loaded.classes, UNCLASSIFIED, EMPTY])
        tmps[1].write_text("\n".join(lines) + "\n")
        tmps[2].write_text("\n".join(abundance_lines(counts, loaded.classes)) + "\n")
        if args.report:
            tmps[3].write_text("\n".join(kraken_report_lines(sum(counts.values(), Counter()), loaded.classes)) + "\n")
    print("\n".join(lines))
    print(f"predictions: {args.out}; summary: {outputs[1]}; abundance: {outputs[2]}"
          + "".join(f"; {label}: {path}" for label, path in (("report", args.report),
                                                             ("kraken output", args.kraken_output)) if path))
    return {name: dict(counter) for name, counter in counts.items()}

