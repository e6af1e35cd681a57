"""Random access to a FASTA genome (plain or bgzip) through pyfaidx, with errors a user can act on.

Contig names are the first word of each `>` header (pyfaidx's rule). Opening writes the index
`X.fai` (and `X.gzi` for bgzip) beside the FASTA on first use; in a read-only directory that
fails with an InputError saying to copy the FASTA somewhere writable or to build the index
there with `samtools faidx X`.
"""

import os
import struct
import zlib
from pathlib import Path

import pyfaidx
from Bio import bgzf

from seqmamba.errors import InputError

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_SUFFIXES = (".gz", ".bgz")


def _is_bgzf(head: bytes) -> bool:
    # BGZF = gzip member with FEXTRA whose first extra subfield is 'BC' (SAM/BAM spec, section 4.1).
    return head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def _check_compression(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(18)
    compressed = head[:2] == _GZIP_MAGIC
    named_gzip = path.name.lower().endswith(_GZIP_SUFFIXES)
    if compressed and not _is_bgzf(head):
        raise InputError(path, f"gzip-compressed but not bgzip (BGZF), which random access needs; recompress it "
                               f"with `zcat {path} | bgzip > {path.with_suffix('.bgz')}` or decompress it with gunzip")
    if compressed and not named_gzip:
        raise InputError(path, "bgzip-compressed but its name does not end in .gz or .bgz, which pyfaidx needs "
                               "to read it as compressed; rename it")
    if named_gzip and not compressed:
        raise InputError(path, "named as gzip (.gz/.bgz) but not compressed; rename it to .fa, or compress it with bgzip")
    return compressed


def _check_first_line(path: Path, compressed: bool) -> None:
    handle = bgzf.BgzfReader(str(path), "rb") if compressed else open(path, "rb")
    with handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if text.startswith(b">"):
                return
            if text and not text.startswith(b";"):
                shown = text[:40].decode("ascii", "replace")
                raise InputError(path, f"line {number}: no FASTA header: expected a line starting with '>' "
                                       f"before any sequence, found {shown!r}; is this a FASTA file?")
    raise InputError(path, "no FASTA records: the file holds no '>' header line; point fasta: at a genome FASTA")


def _has_crlf(path: Path, compressed: bool) -> bool:
    """Whether the file's lines end in CR LF (written on Windows), from its first megabyte."""
    handle = bgzf.BgzfReader(str(path), "rb") if compressed else open(path, "rb")
    with handle:
        return b"\r\n" in handle.read(1 << 20)


def _check_index_file(path: Path) -> None:
    """An existing .fai must parse as one (name, length, offset, bases per line, bytes per line) row per record."""
    index = Path(f"{path}.fai")
    if not index.exists():
        return
    for number, line in enumerate(index.read_bytes().splitlines(), start=1):
        fields = line.split(b"\t")
        if len(fields) not in (5, 6) or not all(field.strip().isdigit() for field in fields[1:]):
            raise InputError(index, f"line {number}: not a FASTA index row (name, length, offset, line bases, line "
                                    f"bytes); delete {index.name} and it is rebuilt from the FASTA")


def _check_index_fits(path: Path, genome: pyfaidx.Fasta, compressed: bool) -> None:
    """A .fai built before the FASTA was shortened points past its end: refuse it rather than read garbage."""
    if compressed:
        return
    size = path.stat().st_size
    for name, record in genome.faidx.index.items():
        if record.bend > size:
            raise InputError(f"{path}.fai", f"does not match {path.name}: record {name!r} ends at byte {record.bend}, "
                                            f"past the end of the file ({size} bytes), so the FASTA changed after "
                                            f"the index was built; delete {path.name}.fai and it is rebuilt")


def open_genome(path: str | os.PathLike) -> pyfaidx.Fasta:
    """Open a genome for random access, rejecting files that would fail later with an obscure error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file; check the fasta: path in the config")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file; expected a FASTA genome (plain or bgzip-compressed)")
    compressed = _check_compression(path)
    try:
        _check_first_line(path, compressed)
        _check_index_file(path)
        genome = pyfaidx.Fasta(str(path), as_raw=True)
    except (struct.error, EOFError, zlib.error) as error:  # a bgzip block cut short
        raise InputError(path, f"the compressed data breaks off ({error}); the file is truncated or damaged: "
                               "download or compress it again") from None
    except pyfaidx.FastaIndexingError as error:
        if "Bad sequence name" in str(error):
            raise InputError(path, f"a header line has no name ({error}); write a name right after every '>'") from None
        if _has_crlf(path, compressed):
            raise InputError(path, "has Windows line ends (CRLF), which the FASTA index cannot use; convert it "
                                   f"with `dos2unix {path}` (or `sed -i 's/\\r$//' {path}`)") from None
        raise InputError(path, f"cannot index it: {error} Rewrap the sequence lines to one width "
                               f"(e.g. `seqkit seq -w 60`).") from None
    except pyfaidx.UnsupportedCompressionFormat as error:
        raise InputError(path, f"{error}") from None
    except ValueError as error:  # duplicate contig names
        raise InputError(path, f"{error}: contig names (first word of each header) must be unique") from None
    except OSError as error:
        raise InputError(path, f"{error} If the index cannot be written beside the FASTA, copy the FASTA to a "
                               f"writable directory or build the index there with `samtools faidx {path}`.") from None
    _check_index_fits(path, genome, compressed)
    if not any(length > 0 for length in contig_lengths(genome).values()):
        raise InputError(path, "no sequence: every record is empty; point fasta: at a genome FASTA")
    return genome


def contig_lengths(genome: pyfaidx.Fasta) -> dict[str, int]:
    """Length of every non-empty contig in file order, the map that intervals are checked against."""
    return {name: record.rlen for name, record in genome.faidx.index.items() if record.rlen > 0}


class GenomeReader:
    """A FASTA path that opens itself once per process, since DataLoader workers must not share a file offset."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self._genome: pyfaidx.Fasta | None = None
        self._pid = -1

    def fetch(self, contig: str, start: int, end: int) -> str:
        """Bases [start, end) (0-based) of a contig, reopening the file after a fork or unpickling."""
        if self._pid != os.getpid():
            self._genome, self._pid = open_genome(self.path), os.getpid()
        return self._genome[contig][start:end]

    def __getstate__(self) -> dict:
        return {"path": self.path, "_genome": None, "_pid": -1}
