"""Simulated reads for `make demo`'s classify job: 150 bp, 1% errors, either strand, from each manifest species."""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from seqmamba.data.reads import simulate_reads
from seqmamba.data.species import JoinedGenome, read_manifest


def main() -> None:
    """Write OUT (FASTQ, gzip) with reads named after their true species."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-species", type=int, default=50)
    args = parser.parse_args()
    entries = read_manifest(args.manifest)
    reads = simulate_reads([JoinedGenome(e.fasta) for e in entries], 150, args.per_species, 0.01, seed=0)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    with gzip.open(tmp, "wt") as f:
        for k, (species, seq) in enumerate(reads):
            f.write(f"@{entries[species].name}_{k}\n{seq}\n+\n{'I' * len(seq)}\n")
    tmp.replace(args.out)
    print(f"{args.out}: {len(reads)} reads")


if __name__ == "__main__":
    main()
