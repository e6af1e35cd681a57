"""Pretraining data that never sees a held-out species block: one species' genome joined, and a BED of the split.

Writes OUT.fa (the species' records joined in file order into one contig, as `seqmamba.data.species`
reads it) and OUT.bed (chrom, start, end, split) with the species split's train / valid / test
regions, so `seqmamba pretrain --data.split bed` trains only on blocks the species task trains on.
The fractions and chunks must match the fine-tuning config's data.valid_fraction, test_fraction, split_chunks.

Usage: python pipelines/species/prepare_pretraining.py data/cache/apes/species.tsv human data/cache/apes/human-joined
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqmamba.data.maf import LINE_WIDTH
from seqmamba.data.species import JoinedGenome, read_manifest, shared_splits
from seqmamba.errors import InputError


def write_pretraining_data(manifest: Path, species: str, out_stem: Path, valid_fraction: float = 0.1,
                           test_fraction: float = 0.1, chunks: int = 1) -> tuple[Path, Path]:
    """(joined FASTA, split BED) of one manifest species, with the split every species shares."""
    entries = read_manifest(manifest)
    names = [entry.name for entry in entries]
    if species not in names:
        raise InputError(manifest, f"no species {species!r}; it lists {', '.join(names)}")
    genomes = [JoinedGenome(entry.fasta) for entry in entries]
    regions = shared_splits(genomes, valid_fraction, test_fraction, chunks)[names.index(species)]
    genome, contig = genomes[names.index(species)], f"{species}_joined"
    fasta, bed = out_stem.with_suffix(".fa"), out_stem.with_suffix(".bed")
    sequence = genome.fetch(0, len(genome))
    with open(fasta, "w") as out:
        out.write(f">{contig}\n")
        out.writelines(sequence[i : i + LINE_WIDTH] + "\n" for i in range(0, len(sequence), LINE_WIDTH))
    fasta.with_name(fasta.name + ".fai").unlink(missing_ok=True)
    bed.write_text("".join(f"{contig}\t{a}\t{b}\t{split}\n" for split, ranges in regions.items() for a, b in ranges))
    return fasta, bed


def main(argv: list[str] | None = None) -> None:
    """Command line: write OUT.fa and OUT.bed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("species")
    parser.add_argument("out_stem", type=Path, help="OUT: writes OUT.fa and OUT.bed")
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--chunks", type=int, default=1)
    args = parser.parse_args(argv)
    for path in write_pretraining_data(args.manifest, args.species, args.out_stem, args.valid_fraction,
                                       args.test_fraction, args.chunks):
        print(path)


if __name__ == "__main__":
    main()
