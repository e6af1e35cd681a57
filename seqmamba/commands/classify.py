"""`seqmamba classify`: label reads (FASTA/FASTQ, plain or gzip, files or stdin) with a fine-tuned species model.

Writes predictions.tsv (file, read_id, length, call, p_<species>...) and, beside it,
predictions.summary.tsv (per file: reads and fraction per call) and predictions.abundance.tsv
(per class and file: share of the classified reads); prints the summary. `--report FILE` adds a
Kraken 2-style report, `--kraken_output FILE` Kraken-style per-read lines (formats in
`seqmamba.read_reports`). Reads below `--min_confidence` (a calibrated probability) are called
`unclassified`; empty reads are called `empty` and counted. A file named `-` is read from stdin.
`--paired R1 R2` classifies each pair as one: the mates' calibrated logits are summed (independent
evidence for one fragment). Every output is written to a temporary file and renamed at the end,
so a failed run leaves no half file and keeps earlier outputs; no output replaces an input, the
checkpoint, or a file this command did not write.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seqmamba.data.reads import STDIN, read_pairs, read_records
from seqmamba.devices import resolve_device
from seqmamba.errors import InputError
from seqmamba.outputs import check_output_file, written_atomically
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

TABLE_HEADER = "file\tread_id\tlength\tcall\t"  # how every predictions table starts (then p_<species> columns)
SUMMARY_HEADER = "file\tcall\treads\tfraction"
KRAKEN_REPORT_START = re.compile(r"\s*\d+\.\d+\t\d+\t\d+\tU\t")  # a report of ours begins with its unclassified line
KRAKEN_OUTPUT_START = re.compile(r"[CU]\t")
CHUNK_READS = 1 << 16  # reads (or pairs) held in memory at once: several full GPU batches of short reads
Source = tuple[str, Iterator[tuple[str, tuple[str, ...]]]]  # (name, (read id, mates)) per input


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
    with np.errstate(invalid="ignore", over="ignore"):  # a broken model's inf/NaN rows are caught by check_finite
        probs = np.exp(total - total.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True)


def check_finite(probs: np.ndarray, mates: list[tuple[str, ...]], ckpt: Path, name: str, ids: list[str]) -> None:
    """A model that yields NaN or infinite probabilities for a read with bases is broken: stop, naming it."""
    not_finite = np.flatnonzero(~np.isfinite(probs).all(axis=1))  # empty reads too: only those are looked at
    bad = [i for i in not_finite if any(mates[i])]
    if bad:
        raise InputError(ckpt, f"the model gives NaN or infinite probabilities for {len(bad)} of {len(probs)} reads "
                               f"(first {ids[bad[0]]!r} of {name}); its weights are broken: use another checkpoint "
                               "(e.g. best.ckpt) or train again")


def classify_sources(loaded: LoadedClassifier, inputs: list[Source], table, kraken, min_confidence: float,
                     batch_tokens: int, ckpt: Path) -> dict[str, Counter]:
    """Label every read (or pair) of every input into open text files; returns call counts per input."""
    table.write(TABLE_HEADER + "\t".join(f"p_{name}" for name in loaded.classes) + "\n")
    counts: dict[str, Counter] = {}
    with tqdm(unit=" reads", disable=None) as progress:
        for name, records in inputs:
            counts[name] = Counter()
            while chunk := list(itertools.islice(records, CHUNK_READS)):
                probs = mate_probabilities(loaded, [mates for _, mates in chunk], batch_tokens)
                check_finite(probs, [mates for _, mates in chunk], ckpt, name, [read_id for read_id, _ in chunk])
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


def check_outputs(out: Path, report: Path | None, kraken_output: Path | None, inputs: list[Path],
                  ckpt: Path) -> list[Path]:
    """The files this run writes, refused before any work where one is a folder, its folder is missing, it names an
    input or the checkpoint, or it is an existing file this command did not write."""
    summary = out.with_name(out.stem + ".summary.tsv")
    abundance = out.with_name(out.stem + ".abundance.tsv")
    named = [("--out", out, TABLE_HEADER), ("--out", summary, SUMMARY_HEADER), ("--out", abundance, "class\t"),
             ("--report", report, KRAKEN_REPORT_START), ("--kraken_output", kraken_output, KRAKEN_OUTPUT_START)]
    for flag, path, header in named:
        if path is None:
            continue
        if path.is_dir():
            raise InputError(path, f"{flag} names a folder; give a file path, e.g. {path / 'report.txt'}")
        if not path.parent.is_dir():
            raise InputError(path, f"{flag}: its folder does not exist; create it or choose another path")
        check_output_file(path, flag, [*inputs, ckpt], header)
    return [out, summary, abundance, *(path for path in (report, kraken_output) if path)]


def check_inputs(files: list[Path], paired: list[tuple[Path, Path]]) -> list[Path]:
    """Read files that exist, each given once (a file given twice would be counted twice); stdin at most once."""
    if not files and not paired:
        raise InputError("classify", "no reads given; name FASTA/FASTQ files, - for stdin, or --paired R1 R2")
    if sum(str(path) == STDIN for path in files) > 1:
        raise InputError("stdin", "- is given more than once; stdin can be read once")
    named = [path for path in [*files, *itertools.chain(*paired)] if str(path) != STDIN]
    for k, path in enumerate(named):
        if not path.is_file():
            raise InputError(path, "no such read file; give FASTA or FASTQ files, plain or gzip")
        if twin := next((p for p in named[:k] if p.resolve() == path.resolve()), None):
            raise InputError(path, f"given twice (also as {twin}); its reads would be counted twice: give each file once")
    return named


def classify(files: list[Path] = (), *, ckpt: Path, paired: list[tuple[Path, Path]] = (),
             out: Path = Path("predictions.tsv"), report: Path | None = None, kraken_output: Path | None = None,
             min_confidence: float = 0.0, batch_tokens: int | None = None, device: str = "auto") -> dict:
    """Label reads (FASTA/FASTQ, plain or gzip, or - for stdin) with a fine-tuned species model.

    Args:
        files: FASTA or FASTQ files, plain or gzip; - reads stdin
        ckpt: RUN/checkpoints/last.ckpt of `seqmamba finetune`
        paired: mate files of a paired-end run, classified pair by pair (repeatable)
        out: the predictions table; its .summary.tsv and .abundance.tsv land beside it
        report: also write a Kraken 2-style report (six columns) here
        kraken_output: also write Kraken-style per-read lines (C/U, id, label, length, confidence) here
        min_confidence: reads whose calibrated top probability is below this are called 'unclassified', in [0, 1]
        batch_tokens: tokens per batch (default 2^20 on GPU, 2^15 on CPU)
        device: auto (the GPU when there is one), cpu, cuda or cuda:N
    """
    if not 0 <= min_confidence <= 1:
        raise InputError("--min_confidence", f"must lie in [0, 1], got {min_confidence}")
    files, paired = [Path(path) for path in files], [(Path(a), Path(b)) for a, b in paired]
    out = Path(out)
    report, kraken_output = (None if path is None else Path(path) for path in (report, kraken_output))
    device = resolve_device(device)
    inputs = check_inputs(files, paired)
    outputs = check_outputs(out, report, kraken_output, inputs, Path(ckpt))
    batch_tokens = batch_tokens or (1 << 20 if device.type == "cuda" else 1 << 15)
    loaded = load_classifier(ckpt, device)
    with contextlib.ExitStack() as outputs_written:  # each renamed into place only if the whole run succeeds,
        # the predictions table first (contexts exit in reverse)
        tmps = [outputs_written.enter_context(written_atomically(path)) for path in reversed(outputs)][::-1]
        with open(tmps[0], "w") as table, open(tmps[-1], "w") if kraken_output \
                else contextlib.nullcontext() as kraken:
            counts = classify_sources(loaded, sources(files, paired), table, kraken, min_confidence, batch_tokens,
                                      Path(ckpt))
        lines = summary_lines(counts, [*loaded.classes, UNCLASSIFIED, EMPTY])
        tmps[1].write_text("\n".join(lines) + "\n")
        tmps[2].write_text("\n".join(abundance_lines(counts, loaded.classes)) + "\n")
        if report:
            tmps[3].write_text("\n".join(kraken_report_lines(sum(counts.values(), Counter()), loaded.classes)) + "\n")
    print("\n".join(lines))
    for name, counter in counts.items():
        if not sum(counter.values()):
            print(f"warning: {name} holds no reads (an empty file); its rows in {outputs[1]} are all 0", file=sys.stderr)
    print(f"predictions: {out}; summary: {outputs[1]}; abundance: {outputs[2]}"
          + "".join(f"; {label}: {path}" for label, path in (("report", report), ("kraken output", kraken_output))
                    if path))
    return {name: dict(counter) for name, counter in counts.items()}
