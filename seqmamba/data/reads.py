"""Reads: FASTA/FASTQ files (plain or gzip) read through Biopython, and simulated reads with sequencing errors.

Reading uses Biopython's light parsers (tuples, no SeqRecord objects) so millions of reads stay
fast; a record the parser rejects stops with the file name and the record number.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from Bio.SeqIO.FastaIO import SimpleFastaParser
from Bio.SeqIO.QualityIO import FastqGeneralIterator

from seqmamba.data.species import JoinedGenome, Region
from seqmamba.data.tokenizer import decode, encode, reverse_complement
from seqmamba.data.windows import MAX_DRAWS, n_fraction
from seqmamba.errors import InputError

_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def _sniff(path: Path) -> tuple[bool, str | None]:
    """(gzipped, "fasta" | "fastq" | None for no content) from the file's first bytes."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open if gzipped else open)(path, "rt", errors="replace") as text:
            for line in text:
                if line.strip():
                    first = line.lstrip()[0]
                    if first in ">@":
                        return gzipped, "fasta" if first == ">" else "fastq"
                    raise InputError(path, f"starts with {line.strip()[:30]!r}, neither FASTA ('>') nor FASTQ ('@'); "
                                           "give read files in FASTA or FASTQ, plain or gzip")
    except (EOFError, OSError, zlib.error) as error:
        raise InputError(path, f"cannot read it ({error}); the file is damaged or not gzip") from None
    return gzipped, None


def read_records(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """(read id, sequence) per record of a FASTA or FASTQ file, plain or gzip; empty reads are yielded too."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file; give FASTA or FASTQ read files")
    gzipped, kind = _sniff(path)
    if kind is None:
        return
    number = 0
    try:
        with (gzip.open if gzipped else open)(path, "rt", errors="replace") as handle:
            if kind == "fasta":
                for number, (title, seq) in enumerate(SimpleFastaParser(handle), start=1):
                    yield title.split(None, 1)[0] if title.strip() else f"record{number}", seq
            else:
                for number, (title, seq, _) in enumerate(FastqGeneralIterator(handle), start=1):
                    yield title.split(None, 1)[0] if title.strip() else f"record{number}", seq
    except ValueError as error:
        raise InputError(path, f"record {number + 1}: malformed {kind.upper()} ({error})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise InputError(path, f"record {number + 1}: compressed data breaks off ({error}); the file is truncated") \
            from None


def add_errors(seq: str, rate: float, rng: np.random.Generator, indel_fraction: float = 0.2) -> str:
    """A copy of a read with sequencing errors: each base is wrong with probability `rate`.

    An error is a substitution (to another base), or, with probability `indel_fraction`, an
    insertion of a random base before it or its deletion (half each).
    """
    bases = np.frombuffer(seq.encode("ascii"), dtype=np.uint8).copy()  # (n,)
    n = len(bases)
    error, kind = rng.random(n) < rate, rng.random(n)
    inserted = error & (kind < indel_fraction / 2)
    deleted = error & (kind >= indel_fraction / 2) & (kind < indel_fraction)
    substituted = error & (kind >= indel_fraction)
    codes = np.searchsorted(_BASES, bases[substituted]).clip(0, 3)  # N and others count as A
    bases[substituted] = _BASES[(codes + rng.integers(1, 4, size=len(codes))) % 4]
    new_bases = _BASES[rng.integers(0, 4, size=int(inserted.sum()))]
    order = np.concatenate([2 * np.flatnonzero(inserted), 2 * np.flatnonzero(~deleted) + 1])  # insert before base
    emitted = np.concatenate([new_bases, bases[~deleted]])
    return emitted[np.argsort(order, kind="stable")].tobytes().decode("ascii")


def simulate_reads(genomes: list[JoinedGenome], length: int, per_species: int, error_rate: float, seed: int,
                   indel_fraction: float = 0.2, regions: list[list[Region]] | None = None) -> list[tuple[int, str]]:
    """(species, read) pairs drawn anywhere in each genome, either strand, with errors: what `classify` users face.

    Positions are uniform over the joined genome, or over each species' `regions` that hold a read
    (a held-out split, say); a mostly-N draw is redrawn (up to MAX_DRAWS times).
    """
    rng = np.random.default_rng(seed)
    reads = []
    for species, genome in enumerate(genomes):
        spans = [(a, b) for a, b in (regions[species] if regions else [(0, len(genome))]) if b - a >= length]
        if not spans:
            raise ValueError(f"{genome.fasta}: no region holds a read of {length} bases")
        starts = np.cumsum([0] + [b - a - length + 1 for a, b in spans])  # read starts per span, counted
        for _ in range(per_species):
            for _ in range(MAX_DRAWS):
                k = int(rng.integers(starts[-1]))
                j = int(np.searchsorted(starts, k, side="right")) - 1
                start = spans[j][0] + k - int(starts[j])
                ids = encode(genome.fetch(start, start + length))
                if n_fraction(ids) <= 0.5:
                    break
            if rng.random() < 0.5:
                ids = reverse_complement(ids)
            reads.append((species, add_errors(decode(ids), error_rate, rng, indel_fraction)))
    return reads
