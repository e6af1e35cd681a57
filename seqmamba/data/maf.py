"""Real ape DNA from a multiple alignment (MAF): one soft-masked FASTA per species, plus summary numbers.

Made for the Ensembl EPO chr22 alignment of human, chimpanzee, gorilla and orangutan that Debian's
`maffilter-examples` ships: its human rows stand in for hg38 pretraining data, all four for species
classification. The MAF is parsed line by line rather than with Bio.AlignIO (equally fast here,
under a second for 88 MB) because Biopython reads a FASTA file as an empty MAF without complaint
and cannot say on which line a damaged file breaks.

`seqmamba data apes --maf MAF --out DIR` writes DIR/<species>.fa, summary.tsv and species.tsv (the
species manifest that `seqmamba finetune --data.manifest` reads). Files of those names that an earlier
extraction did not write (a user's own human.fa) are never replaced: the run is refused.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from seqmamba.data.species import write_manifest
from seqmamba.errors import InputError
from seqmamba.outputs import check_replaceable, folder_lock, record_written

DEFAULT_SPECIES = {"Hsap": "human", "Ptro": "chimpanzee", "Ggor": "gorilla", "Ppyg": "orangutan"}
SUMMARY_NAME = "summary.tsv"
MANIFEST_NAME = "species.tsv"
LINE_WIDTH = 60
_LOWER = bytes(range(ord("a"), ord("z") + 1))
_GAP, _N = ord("-"), ord("N")


@dataclass(frozen=True)
class _Row:
    """One `s` line: a species' stretch of sequence, as aligned in its block."""

    prefix: str  # species, the part of src before the first '.'
    chrom: str  # the rest of src
    start: int
    size: int
    strand: str
    text: str  # aligned, with '-' for gaps
    line: int


@dataclass
class _Tally:
    """Running totals for one species' row of summary.tsv."""

    records: int = 0
    bases: int = 0
    lower: int = 0
    n: int = 0
    compared: int = 0  # aligned columns where this species and the reference both have a base, not N
    mismatched: int = 0


def extract_maf_species(maf_path: Path, out_dir: Path, species: dict[str, str] | None = None) -> dict[str, Path]:
    """Write each species' ungapped, case-preserving rows as FASTA so the DNA loaders can read real ape DNA.

    Also writes species.tsv, the manifest of the FASTAs. Blocks come in MAF order in every file, so
    when every species has one row per block, record i of every FASTA is the same alignment block.

    `species` maps a src prefix (e.g. "Hsap") to an output name; its first entry is the reference
    that substitution rates in summary.tsv are measured against. Records are named
    `chrom:start-end(strand)` in the species' own coordinates; a name already used in that file
    (the Ensembl example gives every orangutan row start 0) gets `_block<N>` appended.
    """
    species = species or DEFAULT_SPECIES
    outputs = [*(f"{name}.fa" for name in species.values()), SUMMARY_NAME, MANIFEST_NAME]
    check_replaceable(out_dir, outputs, "--out")  # before the folder is made or locked
    with folder_lock(out_dir, "--out"):
        check_replaceable(out_dir, outputs, "--out")  # again: another command may have written here meanwhile
        return _extract(maf_path, out_dir, species)


def _extract(maf_path: Path, out_dir: Path, species: dict[str, str]) -> dict[str, Path]:
    """extract_maf_species once the folder is held and its outputs are known to be ours to replace."""
    reference = next(iter(species))
    paths = {prefix: out_dir / f"{name}.fa" for prefix, name in species.items()}
    tmp_paths = {prefix: path.with_name(f".{path.name}.tmp") for prefix, path in paths.items()}
    tallies = {prefix: _Tally() for prefix in species}
    seen: dict[str, set[str]] = {prefix: set() for prefix in species}
    outs = {prefix: open(tmp, "w") for prefix, tmp in tmp_paths.items()}
    try:
        for number, rows in _blocks(maf_path):
            ref = next((r for r in rows if r.prefix == reference), None)
            ref_codes = _codes(ref.text) if ref else None
            for row in rows:
                if row.prefix not in species:
                    continue
                name = f"{row.chrom}:{row.start}-{row.start + row.size}({row.strand})"
                if name in seen[row.prefix]:
                    name = f"{name}_block{number}"
                seen[row.prefix].add(name)
                seq = row.text.replace("-", "")
                if len(seq) != row.size:
                    raise InputError(maf_path, f"line {row.line} (block {number}): {len(seq)} bases but the size "
                                     f"field says {row.size}; the file is damaged, get a fresh copy")
                _write_record(outs[row.prefix], name, seq)
                _count(tallies[row.prefix], seq, ref_codes, row.text)
        for out in outs.values():
            out.close()
        if absent := [name for prefix, name in species.items() if not seen[prefix]]:
            prefixes = ", ".join(prefix for prefix, name in species.items() if name in absent)
            raise InputError(maf_path, f"holds no rows of {', '.join(absent)} (source prefixes {prefixes}); "
                                       "give a MAF of the apes")
        record_written(out_dir, [*(path.name for path in paths.values()), SUMMARY_NAME, MANIFEST_NAME])
        for prefix, tmp in tmp_paths.items():
            tmp.replace(paths[prefix])
            paths[prefix].with_name(paths[prefix].name + ".fai").unlink(missing_ok=True)  # stale pyfaidx index
    finally:
        for out in outs.values():
            out.close()
        for tmp in tmp_paths.values():
            tmp.unlink(missing_ok=True)
    _write_summary(out_dir / SUMMARY_NAME, species, tallies)
    fastas = {species[prefix]: path for prefix, path in paths.items()}
    write_manifest(out_dir / MANIFEST_NAME, fastas)
    return fastas


def _blocks(path: Path) -> Iterator[tuple[int, list[_Row]]]:
    """Yield (block number, its `s` rows), checking the format as it goes so errors can name the line."""
    number, rows, width, line_no = 0, [], 0, 0
    if not path.is_file():
        raise InputError(path, "no such file; give the path of a MAF file (plain or gzip)")
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    try:
        with opener(path, "rt", encoding="ascii", errors="replace") as lines:
            for line_no, line in enumerate(lines, start=1):
                kind = line[:1]
                if kind in ("#", "\n", "") or line.isspace():
                    continue
                if number == 0 and kind != "a":
                    raise InputError(path, f"line {line_no}: expected an 'a' line opening an alignment block, found "
                                     f"{line[:40]!r}; this does not look like a MAF file")
                if kind == "a":
                    if rows:
                        yield number, rows
                    number, rows = number + 1, []
                elif kind == "s":
                    row = _parse_s(path, line, line_no, number)
                    if rows and len(row.text) != width:
                        raise InputError(path, f"line {line_no} (block {number}): row has {len(row.text)} columns, "
                                         f"the block's first row {width}; the file is damaged")
                    width = len(row.text)
                    rows.append(row)
                elif kind not in ("i", "e", "q"):
                    raise InputError(path, f"line {line_no} (block {number}): unknown MAF line type {kind!r}")
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise InputError(path, f"compressed data breaks off after line {line_no} (block {number}): {err}; the "
                         "file is truncated or damaged, download it again (or apt-get install --reinstall "
                         "maffilter-examples)") from None
    if number == 0:
        raise InputError(path, "no alignment blocks found; is this a MAF file?")
    if rows:
        yield number, rows


def _parse_s(path: Path, line: str, line_no: int, block: int) -> _Row:
    """Read `s src start size strand srcSize text`, refusing anything else with the line number."""
    fields = line.split()
    if "\0" in line or "\ufffd" in line:
        raise InputError(path, f"line {line_no} (block {block}): holds NUL or non-ASCII bytes; the file is damaged, "
                               "get a fresh copy")
    try:
        if len(fields) != 7 or fields[4] not in ("+", "-"):
            raise ValueError
        prefix, _, chrom = fields[1].partition(".")
        return _Row(prefix, chrom or prefix, int(fields[2]), int(fields[3]), fields[4], fields[6], line_no)
    except ValueError:
        raise InputError(path, f"line {line_no} (block {block}): expected 's src start size strand srcSize "
                         f"sequence', found {line[:60]!r}; the file is damaged") from None


def _codes(text: str) -> np.ndarray:
    """Aligned text as upper-case byte codes, for vectorised column comparisons."""
    return np.frombuffer(text.upper().encode("ascii", "replace"), dtype=np.uint8)


def _count(tally: _Tally, seq: str, ref_codes: np.ndarray | None, text: str) -> None:
    """Add one record's bases, soft-masking, Ns and mismatches against the reference row."""
    raw = seq.encode("ascii", "replace")
    tally.records += 1
    tally.bases += len(raw)
    tally.lower += len(raw) - len(raw.translate(None, _LOWER))
    tally.n += raw.count(b"N") + raw.count(b"n")
    if ref_codes is not None:
        codes = _codes(text)
        both = (codes != _GAP) & (ref_codes != _GAP) & (codes != _N) & (ref_codes != _N)
        tally.compared += int(np.count_nonzero(both))
        tally.mismatched += int(np.count_nonzero(both & (codes != ref_codes)))


def _write_record(out: TextIO, name: str, seq: str) -> None:
    """One FASTA record with fixed-width lines, which pyfaidx needs to index it."""
    out.write(f">{name}\n")
    out.write("\n".join(seq[i : i + LINE_WIDTH] for i in range(0, len(seq), LINE_WIDTH)))
    out.write("\n")


def _write_summary(path: Path, species: dict[str, str], tallies: dict[str, _Tally]) -> None:
    """Per species: records, bases, lower-case and N fractions, substitution rate vs the reference."""
    reference = species[next(iter(species))]
    lines = [f"species\trecords\tbases\tlower_fraction\tn_fraction\tcompared_columns\tsubst_vs_{reference}"]
    for prefix, t in tallies.items():
        bases = max(t.bases, 1)
        rate = f"{t.mismatched / t.compared:.6f}" if t.compared else "nan"
        lines.append(f"{species[prefix]}\t{t.records}\t{t.bases}\t{t.lower / bases:.6f}\t{t.n / bases:.6f}"
                     f"\t{t.compared}\t{rate}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
