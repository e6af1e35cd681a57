"""Genome intervals and the three ways to split a genome into train / valid / test.

Every split function returns {"train": [...], "valid": [...], "test": [...]} (lists may be empty),
with 0-based half-open intervals checked against the FASTA's contig lengths.
"""

import os
from dataclasses import dataclass

from seqmamba.errors import InputError

SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}
_BED_SKIP_PREFIXES = ("#", "track", "browser")


@dataclass(frozen=True)
class Interval:
    """A stretch of one contig, 0-based half-open like BED, so lengths are end - start."""

    contig: str
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start


def _some_contigs(contig_lengths: dict[str, int], limit: int = 5) -> str:
    names = list(contig_lengths)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _missing_contig_problem(contig: str, contig_lengths: dict[str, int]) -> str:
    problem = f"contig {contig!r} is not in the FASTA, whose contigs are {_some_contigs(contig_lengths)}"
    for other in (contig.removeprefix("chr"), "chr" + contig):
        if other != contig and other in contig_lengths:
            problem += f" (did you mean {other!r}? the FASTA and the BED must name contigs alike)"
    return problem


def _parse_bed_line(fields: list[str], contig_lengths: dict[str, int]) -> tuple[str, Interval]:
    if len(fields) < 4:
        raise ValueError(f"expected 4 tab-separated columns (chrom, start, end, split), found {len(fields)}")
    contig, start_text, end_text, split_text = fields[:4]
    try:
        start, end = int(start_text), int(end_text)
    except ValueError:
        raise ValueError(f"start and end must be integers, found {start_text!r} and {end_text!r}") from None
    if contig not in contig_lengths:
        raise ValueError(_missing_contig_problem(contig, contig_lengths))
    if not 0 <= start < end:
        raise ValueError(f"need 0 <= start < end, found start={start} end={end}")
    if end > contig_lengths[contig]:
        raise ValueError(f"end {end} is past the end of {contig} (length {contig_lengths[contig]}); "
                         f"is the BED for another assembly than the FASTA?")
    split = _SPLIT_ALIASES.get(split_text.lower())
    if split is None:
        raise ValueError(f"unknown split {split_text!r}; use train, valid (or validation) or test")
    return split, Interval(contig, start, end)


def read_bed_splits(bed_path: str | os.PathLike, contig_lengths: dict[str, int]) -> dict[str, list[Interval]]:
    """Read a HyenaDNA-style `human-sequences.bed` (chrom, start, end, split), so a published split is reused."""
    splits: dict[str, list[Interval]] = {name: [] for name in SPLITS}
    line_of: dict[Interval, int] = {}
    try:
        with open(bed_path) as bed:
            for number, line in enumerate(bed, start=1):
                if not line.strip() or line.startswith(_BED_SKIP_PREFIXES):
                    continue
                try:
                    split, interval = _parse_bed_line(line.rstrip("\n\r").split("\t"), contig_lengths)
                except ValueError as error:
                    raise InputError(bed_path, f"line {number}: {error}") from None
                splits[split].append(interval)
                line_of.setdefault(interval, number)
    except OSError as error:
        raise InputError(bed_path, f"cannot read the BED file ({error.strerror}); check the bed: path") from None
    _refuse_overlaps(bed_path, splits, line_of)
    return splits


def _refuse_overlaps(bed_path: str | os.PathLike, splits: dict[str, list[Interval]], line_of: dict[Interval, int]) -> None:
    """Intervals of two different splits must not share a base: that would train on held-out sequence."""
    tagged = sorted((i.contig, i.start, i.end, split, i) for split, intervals in splits.items() for i in intervals)
    reach: dict[str, tuple[int, str, Interval]] = {}  # contig -> furthest end so far, its split and interval
    for contig, start, end, split, interval in tagged:
        far_end, far_split, far = reach.get(contig, (-1, split, interval))
        if start < far_end and split != far_split:
            raise InputError(bed_path, f"lines {line_of[far]} and {line_of[interval]}: a {far_split} interval and a "
                                       f"{split} interval overlap on {contig} ({max(start, far.start)}-"
                                       f"{min(end, far_end)}): held-out bases would be trained on; make the splits disjoint")
        if end > far_end:
            reach[contig] = (end, split, interval)


def split_by_contig(contig_lengths: dict[str, int], valid_contigs: list[str], test_contigs: list[str],
                    genome_name: str = "genome") -> dict[str, list[Interval]]:
    """Hold out whole contigs (e.g. a chromosome), so evaluation never shares a contig with training."""
    for contig in [*valid_contigs, *test_contigs]:
        if contig not in contig_lengths:
            raise InputError(genome_name, f"valid_contigs/test_contigs: {_missing_contig_problem(contig, contig_lengths)}")
    both = set(valid_contigs) & set(test_contigs)
    if both:
        raise InputError(genome_name, f"contigs {sorted(both)} are in both valid_contigs and test_contigs; "
                                      f"name each in one only")
    held_out = set(valid_contigs) | set(test_contigs)
    whole = {name: Interval(name, 0, length) for name, length in contig_lengths.items()}
    return {
        "train": [interval for name, interval in whole.items() if name not in held_out],
        "valid": [whole[name] for name in dict.fromkeys(valid_contigs)],
        "test": [whole[name] for name in dict.fromkeys(test_contigs)],
    }


def check_split_fractions(valid_fraction: float, test_fraction: float) -> None:
    """Held-out fractions that leave a training split: each >= 0, together below 1."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"valid_fraction and test_fraction must be >= 0 and sum to less than 1, got {valid_fraction} "
                         f"and {test_fraction}")


def split_by_fraction(contig_lengths: dict[str, int], valid_fraction: float, test_fraction: float,
                      min_part: int = 1) -> dict[str, list[Interval]]:
    """Hold out the tail of every contig (train | valid | test), so a one-contig genome still has all splits.

    A contig whose held-out parts (those with a fraction > 0) would be shorter than `min_part`
    bases goes wholly to train: pass the window length so that no held-out base is wasted.
    """
    check_split_fractions(valid_fraction, test_fraction)
    splits: dict[str, list[Interval]] = {name: [] for name in SPLITS}
    for contig, length in contig_lengths.items():
        n_valid, n_test = int(length * valid_fraction), int(length * test_fraction)
        parts = [(n, f) for n, f in ((n_valid, valid_fraction), (n_test, test_fraction)) if f > 0]
        if any(n < max(min_part, 1) for n, _ in parts):
            splits["train"].append(Interval(contig, 0, length))
            continue
        valid_start, test_start = length - n_valid - n_test, length - n_test
        splits["train"].append(Interval(contig, 0, valid_start))
        if n_valid:
            splits["valid"].append(Interval(contig, valid_start, test_start))
        if n_test:
            splits["test"].append(Interval(contig, test_start, length))
    return splits
