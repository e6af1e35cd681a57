"""What `seqmamba classify` writes: per-read tables, Kraken-style outputs and reports, per-file summaries.

Each format is a list of (column, how a value is written) pairs, so the header, the order and the
number formats live in one place and a test can parse a file back by the same list.

- Kraken per-read output (`--kraken_output`): one line per read (a pair counts as one), tab-separated,
  no header: C or U, read id, label (`unclassified` for U), length (`len1|len2` for a pair),
  confidence (the calibrated probability of the top class).
- Kraken report (`--report`): Kraken 2's six columns, tab-separated, no header: percent of all reads
  in the clade (%6.2f), reads in the clade, reads assigned directly, rank code (U, R, S), id, name
  indented by two spaces per level. `U` unclassified comes first, then `R` root (every classified
  read), then one `S` line per class in the model's order. Ids: 0 unclassified, 1 root, 2, 3, ... the
  classes in manifest order; they are positions, not NCBI taxids.
- Abundance table (`<out>.abundance.tsv`): one row per class, one column per input file: the share
  of that file's classified reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

UNCLASSIFIED, EMPTY = "unclassified", "empty"

Column = tuple[str, Callable[[object], str]]
KRAKEN_OUTPUT_COLUMNS: list[Column] = [("status", str), ("read_id", str), ("label", str), ("length", str),
                                       ("confidence", "{:.4f}".format)]
KRAKEN_REPORT_COLUMNS: list[Column] = [("percent", "{:6.2f}".format), ("clade_reads", str), ("assigned_reads", str),
                                       ("rank", str), ("id", str), ("name", str)]


def format_rows(columns: list[Column], rows: Sequence[Sequence[object]]) -> list[str]:
    """Tab-separated lines, each value written by its column's formatter."""
    writers = [write for _, write in columns]
    return ["\t".join(write(value) for write, value in zip(writers, row)) for row in rows]


def call_reads(probs: np.ndarray, classes: list[str], min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(call, confidence) per read: the top class, `unclassified` below min_confidence, `empty` for NaN rows."""
    empty = np.isnan(probs).any(axis=1)
    safe = np.where(empty[:, None], 0.0, probs)
    best, confidence = safe.argmax(axis=1), safe.max(axis=1)
    labels = np.array([*classes, UNCLASSIFIED, EMPTY], dtype=object)
    index = np.where(empty, len(classes) + 1, np.where(confidence >= min_confidence, best, len(classes)))
    return labels[index], np.where(empty, 0.0, confidence)


def kraken_output_lines(read_ids: Sequence[str], calls: np.ndarray, lengths: Sequence[str],
                        confidence: np.ndarray) -> list[str]:
    """Kraken-style per-read lines: C/U, id, label, length, confidence (empty reads are U)."""
    unclassified = np.isin(calls, [UNCLASSIFIED, EMPTY])
    status = np.where(unclassified, "U", "C")
    labels = np.where(unclassified, UNCLASSIFIED, calls)
    return format_rows(KRAKEN_OUTPUT_COLUMNS, list(zip(status, read_ids, labels, lengths, confidence)))


def kraken_report_lines(counts: Counter, classes: list[str]) -> list[str]:
    """Kraken 2's six-column report of all reads counted: unclassified, root, then one species line per class."""
    total = sum(counts.values())
    unclassified = counts[UNCLASSIFIED] + counts[EMPTY]
    classified = total - unclassified
    percent = (lambda n: 100.0 * n / total) if total else (lambda n: 0.0)
    rows = [(percent(unclassified), unclassified, unclassified, "U", 0, UNCLASSIFIED),
            (percent(classified), classified, 0, "R", 1, "root")]
    rows += [(percent(counts[name]), counts[name], counts[name], "S", 2 + i, f"  {name}")
             for i, name in enumerate(classes)]
    return format_rows(KRAKEN_REPORT_COLUMNS, rows)


def summary_lines(counts: dict[str, Counter], calls: list[str]) -> list[str]:
    """summary.tsv lines: per file and call, reads and their fraction of the file's reads."""
    lines = ["file\tcall\treads\tfraction"]
    for name, counter in counts.items():
        total = max(sum(counter.values()), 1)
        lines += [f"{name}\t{call}\t{counter[call]}\t{counter[call] / total:.4f}" for call in calls]
    return lines


def abundance_lines(counts: dict[str, Counter], classes: list[str]) -> list[str]:
    """abundance.tsv lines: per class (rows) and file (columns), the share of the file's classified reads."""
    totals = {name: max(sum(counter[c] for c in classes), 1) for name, counter in counts.items()}
    lines = ["class\t" + "\t".join(counts)]
    lines += [f"{c}\t" + "\t".join(f"{counter[c] / totals[name]:.4f}" for name, counter in counts.items())
              for c in classes]
    return lines
