"""Reads: FASTA/FASTQ files (plain or gzip) read through Biopython, and simulated reads with sequencing errors.

Reading uses Biopython's light parsers (tuples, no SeqRecord objects) so millions of reads stay
fast; a record the parser rejects stops with the file name and the record number.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
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

STDIN = "-"  # the read file name that means standard input
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def _open_reads(source: str | os.PathLike) -> io.BufferedReader:
    """A buffered binary stream of a read file, or of standard input for "-", gzip undone where the bytes say so."""
    raw = sys.stdin.buffer if str(source) == STDIN else open(source, "rb")
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=raw), buffer_size=1 << 16)
    return raw


def _kind(name: str, stream: io.BufferedReader) -> str | None:
    """"fasta" | "fastq" from the first byte that is not white space; None for a stream with no content."""
    try:
        head = stream.peek(1 << 12).lstrip()
    except EOFError as error:
        raise InputError(name, f"record 1: compressed data breaks off ({error}); the file is truncated") from None
    except (OSError, zlib.error) as error:
        raise InputError(name, f"cannot read it ({error}); the file is damaged or not gzip") from None
    if not head:
        return None
    if head[:1] in (b">", b"@"):
        return "fasta" if head[:1] == b">" else "fastq"
    shown = head.split(b"\n", 1)[0][:30].decode("ascii", "replace")
    raise InputError(name, f"starts with {shown!r}, neither FASTA ('>') nor FASTQ ('@'); "
                           "give read files in FASTA or FASTQ, plain or gzip")


def read_records(source: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """(read id, sequence) per record of a FASTA or FASTQ file (or stdin for "-"), plain or gzip; empty reads too."""
    name = "stdin" if str(source) == STDIN else str(source)
    if name != "stdin" and not Path(source).is_file():
        raise InputError(source, "no such file; give FASTA or FASTQ read files")
    stream = _open_reads(source)
    try:
        kind = _kind(name, stream)
        if kind is not None:
            yield from _parse(name, kind, io.TextIOWrapper(stream, encoding="ascii", errors="replace"))
    finally:
        if name != "stdin":
            stream.close()


def _parse(name: str, kind: str, handle: io.TextIOWrapper) -> Iterator[tuple[str, str]]:
    """Records of an opened FASTA or FASTQ text stream; a malformed or cut record stops with its number."""
    number = 0
    parser = SimpleFastaParser(handle) if kind == "fasta" else FastqGeneralIterator(handle)
    try:
        for number, (title, seq, *_) in enumerate(parser, start=1):
            read_id = title.split(None, 1)[0] if title.strip() else f"record{number}"
            if "\0" in seq or "\0" in title:
                raise InputError(name, f"record {number} ({read_id[:40]!r}) holds NUL bytes: the file is binary or "
                                       "damaged, not a read file; check how it was written")
            yield read_id, seq
    except InputError:
        raise
    except ValueError as error:
        raise InputError(name, f"record {number + 1}: malformed {kind.upper()} ({error})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise InputError(name, f"record {number + 1}: compressed data breaks off ({error}); the file is truncated") \
            from None


def _mate_id(read_id: str) -> str:
    """A read id without its /1 or /2 mate suffix."""
    return read_id[:-2] if read_id.endswith(("/1", "/2")) else read_id


def read_pairs(first: str | os.PathLike, second: str | os.PathLike) -> Iterator[tuple[str, str, str]]:
    """(read id, mate 1, mate 2) of two mate files in step; unequal counts or ids stop with both files named."""
    mates1, mates2 = read_records(first), read_records(second)
    number = 0
    while True:
        mate1, mate2 = next(mates1, None), next(mates2, None)
        if mate1 is None and mate2 is None:
            return
        if mate1 is None or mate2 is None:
            longer, shorter = (first, second) if mate2 is None else (second, first)
            raise InputError(longer, f"holds more reads than {shorter} ({number}); mate files must hold the same "
                                     "reads in the same order")
        number += 1
        if _mate_id(mate1[0]) != _mate_id(mate2[0]):
            raise InputError(second, f"record {number}: read id {mate2[0]!r} is not the mate of {mate1[0]!r} in "
                                     f"{first}; give the two files of one paired-end run, in the same order")
        yield _mate_id(mate1[0]), mate1[1], mate2[1]


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
