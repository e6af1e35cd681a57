"""extract_maf_species on a tiny hand-written MAF: names, gap removal, case, summary, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from seqmamba.data.maf import SUMMARY_NAME, extract_maf_species
from seqmamba.errors import InputError

TINY_MAF = """\
##maf version=1
# three apes, three blocks
a score=10
s Hsap.22 100 8 + 1000 ACGTacgt
s Ptro.22 50 7 + 900 ACG-acAt
s Ggor.22 70 8 + 800 ACGTACGT

a score=5
s Hsap.22 200 4 + 1000 AC--GT
s Ggor.22 90 6 + 800 ACTTGT
i Ggor.22 C 0 C 0

a score=1
s Hsap.22 300 5 + 1000 NNACG
s Ptro.22 10 5 - 900 NAACG
s Ptro.22 10 5 - 900 AAACG
"""


def _fasta(path: Path) -> list[tuple[str, str]]:
    text = path.read_text()
    return [(r.split("\n", 1)[0], r.split("\n", 1)[1].replace("\n", "")) for r in text.split(">")[1:]]


def test_species_fasta_records(tmp_path: Path) -> None:
    maf = tmp_path / "tiny.maf.gz"
    maf.write_bytes(gzip.compress(TINY_MAF.encode()))
    species = {"Hsap": "human", "Ptro": "chimp", "Ggor": "gorilla"}
    paths = extract_maf_species(maf, tmp_path / "out", species)
    assert paths == {name: tmp_path / "out" / f"{name}.fa" for name in species.values()}
    assert _fasta(paths["human"]) == [
        ("22:100-108(+)", "ACGTacgt"),  # case kept
        ("22:200-204(+)", "ACGT"),  # gaps removed
        ("22:300-305(+)", "NNACG"),
    ]
    assert _fasta(paths["chimp"]) == [
        ("22:50-57(+)", "ACGacAt"),
        ("22:10-15(-)", "NAACG"),
        ("22:10-15(-)_block3", "AAACG"),  # a repeated name gets its block number
    ]
    assert [name for name, _ in _fasta(paths["gorilla"])] == ["22:70-78(+)", "22:90-96(+)"]
    assert not list((tmp_path / "out").glob(".*tmp*"))  # no temp files left behind


def test_summary_counts_case_n_and_substitutions(tmp_path: Path) -> None:
    maf = tmp_path / "tiny.maf"
    maf.write_text(TINY_MAF)
    extract_maf_species(maf, tmp_path, {"Hsap": "human", "Ptro": "chimp"})
    header, human, chimp = [line.split("\t") for line in (tmp_path / SUMMARY_NAME).read_text().splitlines()]
    assert header[-1] == "subst_vs_human"
    assert human == ["human", "3", "17", f"{4 / 17:.6f}", f"{2 / 17:.6f}", "15", "0.000000"]
    # chimp vs human, columns without gap or N: block 1 has 7 (1 mismatch: G/A), block 3 has 3 per row, 0 mismatches
    assert chimp[1:3] == ["3", "17"]
    assert chimp[5:] == ["13", f"{1 / 13:.6f}"]


def test_not_a_maf_names_file_and_line(tmp_path: Path) -> None:
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1\nACGT\n")
    with pytest.raises(InputError, match=r"genome\.fa: line 1: .*does not look like a MAF"):
        extract_maf_species(fasta, tmp_path / "out")
    assert not (tmp_path / "out" / "human.fa").exists()


def test_truncated_gzip_names_block(tmp_path: Path) -> None:
    maf = tmp_path / "cut.maf.gz"
    maf.write_bytes(gzip.compress((TINY_MAF * 50).encode())[:-40])
    with pytest.raises(InputError, match=r"cut\.maf\.gz: compressed data breaks off after line \d+ \(block \d+\)"):
        extract_maf_species(maf, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # no half file, no lock file, no folder left by the failed command
