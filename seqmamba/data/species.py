"""Species classification data: the manifest, genomes read end to end, a split shared by all species, windows.

A manifest is a TSV whose header holds `species` and `fasta` (paths relative to the manifest) and
optionally `bed` (usable regions: chrom, start, end). Each genome is read as its records joined in
file order ("joined coordinates"), so a window may cross a record junction: the ape FASTAs hold
one record per ~2.2 kb alignment block, and windows of 2^12 bases and up must span blocks.

The split is by record (block) when every species has the same number of records, as FASTAs cut
from one alignment do, and there are enough of them for every split to get whole blocks: the same
blocks are held out for every species, so no test block is trained on in any species. Otherwise
(unrelated assemblies: one record each, or different record counts) it is by the same fraction of
each joined genome. Either way the unit axis is cut into `chunks` equal parts, each split as
train | valid | test, so held-out regions are spread along the genome yet long enough for a window.
Genomes may be plain or bgzip FASTA (see `seqmamba.data.genome`).

Training windows may vary in length (`BalancedWindows(min_length=...)`): each batch of
`batch_size` consecutive items draws one length, log-uniform in [min_length, length], so a batch
stacks without padding and the model sees every read length from min_length up.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seqmamba.data.genome import GenomeReader, contig_lengths, open_genome
from seqmamba.data.intervals import SPLITS, check_split_fractions
from seqmamba.data.tokenizer import encode, reverse_complement
from seqmamba.data.windows import MAX_DRAWS, n_fraction
from seqmamba.errors import InputError

MANIFEST_COLUMNS = ("species", "fasta")
RESERVED_NAMES = ("unclassified", "empty")  # calls `seqmamba classify` writes besides the species
Region = tuple[int, int]  # [start, end) in joined coordinates


@dataclass(frozen=True)
class SpeciesEntry:
    """One manifest row: a class name and its genome (and usable regions), paths resolved."""

    name: str
    fasta: Path
    bed: Path | None = None


def read_manifest(path: str | os.PathLike) -> list[SpeciesEntry]:
    """Read and check a species manifest, so a typo stops the run before any training."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such manifest; give a TSV with columns species and fasta "
                               "(`seqmamba data apes --out DIR` writes DIR/species.tsv)")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except UnicodeDecodeError as error:
        raise InputError(path, f"not UTF-8 text (byte {error.start}); save the manifest as UTF-8") from None
    rows = [(number, row) for number, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not rows:
        raise InputError(path, "empty manifest; expected a header line 'species<TAB>fasta' and one line per species")
    header = [cell.strip() for cell in rows[0][1]]
    missing = [column for column in MANIFEST_COLUMNS if column not in header]
    if missing:
        raise InputError(path, f"line 1: the header lacks column(s) {', '.join(missing)} (found {header}); "
                               "the first line must name the tab-separated columns species, fasta [, bed]")
    entries: list[SpeciesEntry] = []
    for number, row in rows[1:]:
        if len(row) != len(header):
            raise InputError(path, f"line {number}: {len(row)} tab-separated fields, the header has {len(header)}")
        cells = dict(zip(header, (cell.strip() for cell in row)))
        name = cells["species"]
        if not name or any(e.name == name for e in entries):
            raise InputError(path, f"line {number}: species name {name!r} is empty or used twice; names must be unique")
        if name.lower() in RESERVED_NAMES:
            raise InputError(path, f"line {number}: species name {name!r} is what classify calls reads of no species; "
                                   "rename the species")
        fasta = path.parent / cells["fasta"]
        if not fasta.is_file():
            raise InputError(path, f"line {number}: FASTA {fasta} does not exist (paths are relative to the manifest)")
        if twin := next((e for e in entries if e.fasta.resolve() == fasta.resolve()), None):
            raise InputError(path, f"line {number}: FASTA {fasta} is also species {twin.name!r}'s; every species "
                                   "needs its own genome")
        bed = path.parent / cells["bed"] if cells.get("bed") else None
        if bed is not None and not bed.is_file():
            raise InputError(path, f"line {number}: BED {bed} does not exist (paths are relative to the manifest)")
        entries.append(SpeciesEntry(name, fasta, bed))
    if len(entries) < 2:
        raise InputError(path, f"{len(entries)} species listed; classification needs at least two")
    return entries


def write_manifest(path: Path, fastas: dict[str, Path]) -> Path:
    """A manifest for species -> FASTA, paths written relative to the manifest's folder."""
    lines = ["species\tfasta"] + [f"{name}\t{os.path.relpath(fasta, path.parent)}" for name, fasta in fastas.items()]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


class JoinedGenome:
    """A FASTA's records end to end in file order, read by joined coordinate; picklable for DataLoader workers."""

    def __init__(self, fasta: str | os.PathLike) -> None:
        lengths = contig_lengths(open_genome(fasta))
        self.fasta = str(fasta)
        self.reader = GenomeReader(fasta)
        self.names = list(lengths)
        self.record_index = {name: r for r, name in enumerate(self.names)}
        self.offsets = np.concatenate([[0], np.cumsum(list(lengths.values()))])  # (R + 1,) record starts

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def records_between(self, start: int, end: int) -> range:
        """Indices of the records that bases [start, end) touch."""
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        last = int(np.searchsorted(self.offsets, end - 1, side="right")) - 1
        return range(first, last + 1)

    def fetch(self, start: int, end: int) -> str:
        """Bases [start, end) of the joined sequence, across record junctions."""
        pieces = []
        for r in self.records_between(start, end):
            lo, hi = max(start, int(self.offsets[r])), min(end, int(self.offsets[r + 1]))
            pieces.append(self.reader.fetch(self.names[r], lo - int(self.offsets[r]), hi - int(self.offsets[r])))
        return "".join(pieces)

    def to_joined(self, contig: str, start: int, end: int) -> Region:
        """A record-coordinate interval in joined coordinates."""
        offset = int(self.offsets[self.record_index[contig]])
        return offset + start, offset + end


def read_usable_regions(bed: Path, genome: JoinedGenome) -> list[Region]:
    """A BED of usable regions (chrom, start, end) in joined coordinates, checked line by line."""
    lengths = dict(zip(genome.names, np.diff(genome.offsets).tolist()))
    regions = []
    with open(bed) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.rstrip("\n\r").split("\t")
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            try:
                contig, start, end = fields[0], int(fields[1]), int(fields[2])
            except (IndexError, ValueError):
                raise InputError(bed, f"line {number}: expected chrom, start, end (tab-separated integers)") from None
            if contig not in lengths or not 0 <= start < end <= lengths[contig]:
                raise InputError(bed, f"line {number}: {contig}:{start}-{end} is not inside a record of "
                                      f"{genome.fasta}; the BED must use that FASTA's record names and lengths")
            regions.append(genome.to_joined(contig, start, end))
    return sorted(regions)


def unit_splits(n_units: int, valid_fraction: float, test_fraction: float, chunks: int = 1) -> dict[str, list[Region]]:
    """Cut units [0, n) into `chunks` equal parts, each train | valid | test by fraction: ranges per split."""
    check_split_fractions(valid_fraction, test_fraction)
    splits: dict[str, list[Region]] = {name: [] for name in SPLITS}
    edges = np.linspace(0, n_units, chunks + 1).round().astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        test_start = hi - round((hi - lo) * test_fraction)
        valid_start = test_start - round((hi - lo) * valid_fraction)
        for split, a, b in (("train", lo, valid_start), ("valid", valid_start, test_start), ("test", test_start, hi)):
            if b > a:
                splits[split].append((int(a), int(b)))
    return splits


def splits_by_block(genomes: list[JoinedGenome], valid_fraction: float, test_fraction: float,
                    chunks: int = 1) -> bool:
    """Whether the genomes look cut from one alignment (same record count) with blocks enough for every split."""
    counts = {len(g.names) for g in genomes}
    if len(counts) != 1:
        return False
    units = unit_splits(counts.pop(), valid_fraction, test_fraction, chunks)
    wanted = {"train": True, "valid": valid_fraction > 0, "test": test_fraction > 0}
    return all(units[split] for split, needed in wanted.items() if needed)


def shared_splits(genomes: list[JoinedGenome], valid_fraction: float, test_fraction: float,
                  chunks: int = 1) -> list[dict[str, list[Region]]]:
    """Per species, joined-coordinate regions of each split: the same blocks when the genomes are aligned ones."""
    by_block = splits_by_block(genomes, valid_fraction, test_fraction, chunks)
    n_units = len(genomes[0].names)
    out = []
    for genome in genomes:
        units = unit_splits(n_units if by_block else len(genome), valid_fraction, test_fraction, chunks)
        edge = (lambda u, g=genome: int(g.offsets[u])) if by_block else int
        out.append({split: [(edge(a), edge(b)) for a, b in ranges] for split, ranges in units.items()})
    return out


def intersect(regions: list[Region], usable: list[Region]) -> list[Region]:
    """Parts of `regions` inside `usable` (both sorted, each non-overlapping)."""
    out = []
    for start, end in regions:
        for u_start, u_end in usable:
            lo, hi = max(start, u_start), min(end, u_end)
            if hi > lo:
                out.append((lo, hi))
    return out


def _window_advice(split: str, length: int, longest: int, stretches: int) -> str:
    """What to change so a split holds a window: settings that would work, with numbers."""
    if longest == 0:
        return (f"the {split} split is empty; give a nonzero {split} fraction, or fewer split chunks")
    advice = f"use seq_len {longest} or shorter"
    if stretches > 1:
        advice += f", or split_chunks 1 (one {split} stretch {stretches} times as long)"
    return advice + f", or a {split} fraction about {length / longest:.1f} times larger"


class _SpeciesWindows(Dataset):
    """Window starts over each species' regions, counted cumulatively so a genome-wide index costs no memory."""

    def __init__(self, genomes: list[JoinedGenome], regions: list[list[Region]], length: int, split: str) -> None:
        self.genomes, self.length = genomes, length
        self.regions = [[r for r in rs if r[1] - r[0] >= length] for rs in regions]
        longest = [max((b - a for a, b in rs), default=0) for rs in regions]  # per species
        if min(longest) < length:  # advice from the species with the shortest stretches, so it works for all
            worst = int(np.argmin(longest))
            raise InputError(genomes[worst].fasta, f"{split} split: no stretch holds a window of {length} bases (the "
                                                   f"longest has {longest[worst]} of the genome's "
                                                   f"{len(genomes[worst])}); "
                                                   + _window_advice(split, length, longest[worst], len(regions[worst])))
        self._ends = [np.cumsum([b - a - length + 1 for a, b in rs]) for rs in self.regions]  # per species (R,)

    def start_of(self, species: int, k: int) -> int:
        """Joined start of the k-th possible window of a species."""
        ends = self._ends[species]
        j = int(np.searchsorted(ends, k, side="right"))
        return self.regions[species][j][0] + k - int(ends[j - 1] if j else 0)

    def read(self, species: int, start: int, reverse: bool, length: int | None = None) -> np.ndarray:
        """Token ids of one window (of `length` bases, default the full length), reverse-complemented if asked."""
        ids = encode(self.genomes[species].fetch(start, start + (length or self.length)))
        return reverse_complement(ids) if reverse else ids


class BalancedWindows(_SpeciesWindows):
    """Training windows: item i is species i mod C, at a seeded uniform position, reverse-complemented at random.

    Draws are reproducible per (seed, epoch, item), so a resumed run sees the same data. A window
    with more than `max_n_fraction` N is redrawn up to MAX_DRAWS times, then kept. With `min_length`
    below `length`, items i of one batch (i // batch_size) share a length drawn log-uniformly.
    """

    def __init__(self, genomes: list[JoinedGenome], regions: list[list[Region]], length: int, num_samples: int,
                 seed: int, rc_prob: float = 0.5, max_n_fraction: float = 0.5, min_length: int | None = None,
                 batch_size: int = 1) -> None:
        super().__init__(genomes, regions, length, "train")
        self.num_samples, self.seed, self.rc_prob, self.max_n_fraction = num_samples, seed, rc_prob, max_n_fraction
        self.min_length, self.batch_size = min(min_length or length, length), batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose windows to draw, so every epoch sees new ones."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def length_of(self, i: int) -> int:
        """Bases of item i: its batch's log-uniform draw in [min_length, length] (the same for the whole batch)."""
        if self.min_length >= self.length:
            return self.length
        rng = np.random.default_rng([self.seed, self.epoch, i // self.batch_size, 1])
        return int(round(np.exp(rng.uniform(np.log(self.min_length), np.log(self.length)))))

    def locate(self, i: int) -> tuple[int, int, bool]:
        """(species, joined start, reverse) of item i, for checks: which bases an item holds."""
        species, length = i % len(self.genomes), self.length_of(i)
        rng = np.random.default_rng([self.seed, self.epoch, i])
        reverse = bool(rng.random() < self.rc_prob)
        for _ in range(MAX_DRAWS):
            start = self.start_of(species, int(rng.integers(self._ends[species][-1])))
            if n_fraction(self.read(species, start, False, length)) <= self.max_n_fraction:
                break
        return species, start, reverse

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        species, start, reverse = self.locate(i)
        ids = self.read(species, start, reverse, self.length_of(i))
        return torch.from_numpy(ids.astype(np.int64)), species  # (length_of(i),), label


class FixedWindows(_SpeciesWindows):
    """Evaluation windows: per species up to `per_species` evenly spaced ones, every other one reverse-complemented.

    A mostly-N candidate is replaced by the next window along (up to MAX_DRAWS tries); all species
    then keep the same count, so accuracy is balanced. Built once; the same every epoch and run.
    """

    def __init__(self, genomes: list[JoinedGenome], regions: list[list[Region]], length: int, per_species: int,
                 split: str, max_n_fraction: float = 0.5) -> None:
        super().__init__(genomes, regions, length, split)
        chosen = []
        for species, ends in enumerate(self._ends):
            total, starts = int(ends[-1]), []
            for k in np.linspace(0, total, per_species, endpoint=False).astype(int):
                for step in range(MAX_DRAWS):
                    start = self.start_of(species, min(int(k) + step * length, total - 1))
                    if n_fraction(self.read(species, start, False)) <= max_n_fraction:
                        starts.append(start)
                        break
            chosen.append(sorted(set(starts)))
        count = min(len(starts) for starts in chosen)
        if count == 0:
            raise InputError(genomes[0].fasta, f"{split} split: every window of {length} bases of some species is "
                                               f"more than {max_n_fraction:.0%} N; raise max_n_fraction")
        self.items = [(species, start, k % 2 == 1) for species, starts in enumerate(chosen)
                      for k, start in enumerate(starts[:count])]  # (species, joined start, reverse)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        species, start, reverse = self.items[i]
        return torch.from_numpy(self.read(species, start, reverse).astype(np.int64)), species
