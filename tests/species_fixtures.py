"""Tiny synthetic species genomes for the species tests: aligned records, species told apart by their substitutions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def write_fasta(path: Path, records: list[tuple[str, str]], width: int = 60) -> Path:
    """Fixed-width FASTA, as pyfaidx needs."""
    with open(path, "w") as f:
        for name, seq in records:
            f.write(f">{name}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width)))
    return path


def make_species(root: Path, n_species: int = 3, n_records: int = 20, record_len: int = 300,
                 substitution_rate: float = 0.3, seed: int = 0) -> Path:
    """One FASTA per species from one ancestor, record i the same block in each; returns the manifest path.

    Species k replaces `substitution_rate` of the bases with base k (easy to learn) and lacks the
    first k bases of every record (so joined coordinates differ between species).
    """
    rng = np.random.default_rng(seed)
    ancestor = [BASES[rng.integers(0, 4, record_len + int(rng.integers(0, record_len // 2)))] for _ in range(n_records)]
    lines = ["species\tfasta"]
    for k in range(n_species):
        records = []
        for r, block in enumerate(ancestor):
            seq = block.copy()
            seq[rng.random(len(seq)) < substitution_rate] = BASES[k % 4]
            records.append((f"block{r}", seq[k:].tobytes().decode()))
        write_fasta(root / f"species{k}.fa", records)
        lines.append(f"sp{k}\tspecies{k}.fa")
    manifest = root / "species.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
