"""Join every record of a FASTA, in file order, into one contig (gzip out), for held-out-fraction splits.

The chr22 alignment gives human DNA as 9,627 blocks of ~2.2 kb, too short to hold out windows of
each; joined in human order they make one 21.6 Mb contig of real sequence (with a junction every block).
Usage: python pipelines/data/join_records.py IN.fa OUT.fa.gz NAME
"""

import gzip
import sys
from pathlib import Path

from seqmamba.data.genome import open_genome


def join_records(fasta: Path, out: Path, name: str, width: int = 80) -> int:
    """Writes the joined contig; returns its length."""
    genome = open_genome(fasta)
    sequence = "".join(genome[key][:] for key in genome.keys())
    with gzip.open(out, "wt") as f:
        f.write(f">{name}\n")
        for i in range(0, len(sequence), width):
            f.write(sequence[i:i + width] + "\n")
    return len(sequence)


if __name__ == "__main__":
    print(join_records(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
