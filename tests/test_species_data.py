"""Species data: manifest errors, splits shared by block and disjoint, balanced seeded windows, N skip, reads."""

from __future__ import annotations

import gzip
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from species_fixtures import make_species, write_fasta

from seqmamba.data.maf import extract_maf_species
from seqmamba.data.reads import add_errors, read_records, simulate_reads
from seqmamba.data.species import (
    BalancedWindows,
    FixedWindows,
    JoinedGenome,
    read_manifest,
    shared_splits,
    unit_splits,
)
from seqmamba.data.tokenizer import decode, reverse_complement
from seqmamba.data.windows import n_fraction
from seqmamba.errors import InputError
from seqmamba.tasks.species_data import SpeciesDataModule


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_species(tmp_path_factory.mktemp("species"), n_species=3, n_records=30, record_len=200)


def genomes_of(manifest):
    return [JoinedGenome(entry.fasta) for entry in read_manifest(manifest)]


@pytest.mark.parametrize("text, problem", [
    ("", "empty manifest"),
    ("name\tpath\nsp0\tspecies0.fa\n", "lacks column(s) species, fasta"),
    ("species\tfasta\nsp0\tspecies0.fa\textra\n", "line 2: 3 tab-separated fields"),
    ("species\tfasta\nsp0\tspecies0.fa\nsp0\tspecies1.fa\n", "line 3: species name 'sp0'"),
    ("species\tfasta\nsp0\tspecies0.fa\nsp1\tmissing.fa\n", "line 3: FASTA"),
    ("species\tfasta\nsp0\tspecies0.fa\n", "1 species listed"),
    ("species\tfasta\tbed\nsp0\tspecies0.fa\tnone.bed\nsp1\tspecies1.fa\t\n", "line 2: BED"),
])
def test_manifest_errors_name_file_line_and_fix(manifest, text, problem):
    bad = manifest.parent / "bad.tsv"
    bad.write_text(text)
    with pytest.raises(InputError) as error:
        read_manifest(bad)
    assert error.value.path == str(bad) and problem in error.value.problem


def test_manifest_paths_are_relative_to_it(manifest):
    entries = read_manifest(manifest)
    assert [e.name for e in entries] == ["sp0", "sp1", "sp2"]
    assert all(e.fasta.is_file() and e.fasta.parent == manifest.parent for e in entries)


def test_unit_splits_partition_every_chunk():
    splits = unit_splits(100, 0.1, 0.2, chunks=4)
    covered = sorted(u for ranges in splits.values() for a, b in ranges for u in range(a, b))
    assert covered == list(range(100))  # every unit in exactly one split
    assert sum(b - a for a, b in splits["test"]) == 20 and len(splits["test"]) == 4


def test_held_out_blocks_are_the_same_for_every_species_and_never_trained_on(manifest):
    genomes = genomes_of(manifest)
    assert len({len(g) for g in genomes}) == 3  # joined lengths differ, block order does not
    regions = shared_splits(genomes, 0.2, 0.2, chunks=2)
    blocks = [{split: {r for a, b in rs[split] for r in g.records_between(a, b)} for split in rs}
              for g, rs in zip(genomes, regions)]
    assert blocks[0]["test"] and all(b == blocks[0] for b in blocks)  # the same blocks in every species
    length = 400  # longer than a block: windows span junctions
    train = BalancedWindows(genomes, [r["train"] for r in regions], length, num_samples=300, seed=1)
    for i in range(len(train)):
        species, start, _ = train.locate(i)
        touched = set(genomes[species].records_between(start, start + length))
        assert len(touched) > 1 or length <= 300
        assert not touched & (blocks[species]["test"] | blocks[species]["valid"])
    test = FixedWindows(genomes, [r["test"] for r in regions], length, per_species=8, split="test")
    for species, start, _ in test.items:
        assert set(genomes[species].records_between(start, start + length)) <= blocks[species]["test"]


def test_training_windows_balanced_seeded_and_reverse_complemented(manifest):
    genomes = genomes_of(manifest)
    regions = [r["train"] for r in shared_splits(genomes, 0.1, 0.1)]
    windows = BalancedWindows(genomes, regions, 64, num_samples=300, seed=3)
    labels = Counter(windows[i][1] for i in range(len(windows)))
    assert labels == {0: 100, 1: 100, 2: 100}
    draws = [windows.locate(i) for i in range(300)]
    assert 100 < sum(reverse for _, _, reverse in draws) < 200
    assert draws == [BalancedWindows(genomes, regions, 64, 300, seed=3).locate(i) for i in range(300)]  # seeded
    species, start, reverse = next(d for d in draws if d[2])
    index = draws.index((species, start, reverse))
    forward = windows.read(species, start, False)
    assert np.array_equal(windows[index][0].numpy(), reverse_complement(forward))
    windows.set_epoch(1)
    assert [windows.locate(i) for i in range(300)] != draws  # a new epoch, new windows


def test_mostly_n_windows_are_skipped(tmp_path):
    rng = np.random.default_rng(0)
    records = [(f"b{r}", "N" * 200 if r % 2 else "".join(rng.choice(list("ACGT"), 200))) for r in range(20)]
    (tmp_path / "species.tsv").write_text("species\tfasta\na\ta.fa\nb\tb.fa\n")
    write_fasta(tmp_path / "a.fa", records)
    write_fasta(tmp_path / "b.fa", records)
    genomes = genomes_of(tmp_path / "species.tsv")
    regions = [[(0, len(g))] for g in genomes]
    train = BalancedWindows(genomes, regions, 64, num_samples=100, seed=0, max_n_fraction=0.5)
    assert all(n_fraction(train[i][0].numpy()) <= 0.5 for i in range(100))
    fixed = FixedWindows(genomes, regions, 64, per_species=10, split="test", max_n_fraction=0.5)
    assert len(fixed) >= 10 and all(n_fraction(fixed[i][0].numpy()) <= 0.5 for i in range(len(fixed)))


def test_evaluation_set_is_fixed_and_balanced(manifest):
    data = SpeciesDataModule(str(manifest), seq_len=64, val_windows=5, test_windows=7)
    data.setup("test")
    items = data.fixed_windows("test").items
    assert Counter(species for species, _, _ in items) == {0: 7, 1: 7, 2: 7}
    again = SpeciesDataModule(str(manifest), seq_len=64, val_windows=5, test_windows=7, seed=9)
    again.setup("test")
    assert again.fixed_windows("test").items == items  # not touched by the training seed
    batch = next(iter(data.test_dataloader()))
    assert batch["input_ids"].shape == (16, 64) and batch["labels"].shape == (16,)


def test_window_longer_than_every_held_out_stretch(manifest):
    data = SpeciesDataModule(str(manifest), seq_len=9000)
    with pytest.raises(InputError) as error:
        data.setup("fit")
    assert "train split: no stretch holds a window of 9000 bases" in error.value.problem


def test_data_apes_writes_a_manifest_of_aligned_fastas(tmp_path):
    maf = tmp_path / "tiny.maf"
    maf.write_text("##maf version=1\n"
                   "a\ns Hsap.22 0 8 + 100 ACGTACGT\ns Ptro.22 0 7 + 100 ACG-ACGT\n\n"
                   "a\ns Hsap.22 8 4 + 100 AAAA\ns Ptro.22 7 4 + 100 CCCC\n")
    extract_maf_species(maf, tmp_path / "apes", {"Hsap": "human", "Ptro": "chimp"})
    entries = read_manifest(tmp_path / "apes" / "species.tsv")
    assert [(e.name, e.fasta.name) for e in entries] == [("human", "human.fa"), ("chimp", "chimp.fa")]
    chimp = JoinedGenome(entries[1].fasta)
    assert chimp.fetch(5, 9) == "GTCC"  # across the block junction


def test_read_files_fasta_fastq_gzip_and_malformed_records(tmp_path):
    (tmp_path / "r.fa").write_text(">a first\nACGT\nAC\n>b\n\n>c\nGG\n")
    assert list(read_records(tmp_path / "r.fa")) == [("a", "ACGTAC"), ("b", ""), ("c", "GG")]
    fastq = "@x\nACGT\n+\nIIII\n@y\nAC\n+\nII\n"
    (tmp_path / "r.fq.gz").write_bytes(gzip.compress(fastq.encode()))
    assert list(read_records(tmp_path / "r.fq.gz")) == [("x", "ACGT"), ("y", "AC")]
    (tmp_path / "bad.fq").write_text(fastq + "@z\nACGT\n+\nII\n")
    with pytest.raises(InputError) as error:
        list(read_records(tmp_path / "bad.fq"))
    assert error.value.path == str(tmp_path / "bad.fq") and "record 3" in error.value.problem
    (tmp_path / "text.txt").write_text("hello\n")
    with pytest.raises(InputError, match="neither FASTA"):
        list(read_records(tmp_path / "text.txt"))
    (tmp_path / "cut.fq.gz").write_bytes(gzip.compress((fastq * 200).encode())[:-30])
    with pytest.raises(InputError, match="truncated"):
        list(read_records(tmp_path / "cut.fq.gz"))


def test_simulated_errors_come_at_the_asked_rate():
    rng = np.random.default_rng(0)
    seq = decode(rng.integers(4, 8, 20000).astype(np.uint8))
    assert add_errors(seq, 0.0, rng) == seq
    substituted = add_errors(seq, 0.05, rng, indel_fraction=0.0)
    assert len(substituted) == len(seq)
    assert 0.04 < np.mean([a != b for a, b in zip(seq, substituted)]) < 0.06
    with_indels = add_errors(seq, 0.05, rng, indel_fraction=1.0)
    assert len(with_indels) != len(seq) and set(with_indels) <= set("ACGT")


def test_simulated_reads_come_from_their_species(manifest):
    genomes = genomes_of(manifest)
    reads = simulate_reads(genomes, 150, per_species=4, error_rate=0.0, seed=0)
    assert Counter(s for s, _ in reads) == {0: 4, 1: 4, 2: 4}
    whole = [g.fetch(0, len(g)).upper() for g in genomes]
    for species, read in reads:
        assert len(read) == 150 and (read in whole[species] or _revcomp(read) in whole[species])


def _revcomp(seq: str) -> str:
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))


def test_pretraining_data_holds_out_the_species_test_blocks(manifest, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "prepare_pretraining", Path(__file__).parents[1] / "pipelines" / "species" / "prepare_pretraining.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fasta, bed = module.write_pretraining_data(manifest, "sp1", tmp_path / "joined", 0.2, 0.1)
    genome = genomes_of(manifest)[1]
    assert JoinedGenome(fasta).fetch(0, len(genome)) == genome.fetch(0, len(genome))
    rows = [line.split("\t") for line in bed.read_text().splitlines()]
    expected = shared_splits(genomes_of(manifest), 0.2, 0.1)[1]
    assert {split: [(int(a), int(b)) for _, a, b, s in rows if s == split] for split in expected} == expected


def test_bed_column_limits_windows_to_usable_regions(manifest, tmp_path):
    entries = read_manifest(manifest)
    (tmp_path / "usable.bed").write_text("block3\t0\t150\nblock20\t10\t200\n")
    lines = ["species\tfasta\tbed"] + [f"{e.name}\t{e.fasta}\t{tmp_path / 'usable.bed'}" for e in entries]
    (tmp_path / "species.tsv").write_text("\n".join(lines) + "\n")
    data = SpeciesDataModule(str(tmp_path / "species.tsv"), seq_len=100, samples_per_epoch=60, valid_fraction=0.2,
                             test_fraction=0.2)
    data.setup("fit")  # block 3 is in train, block 20 in valid (blocks 18-23 of 30)
    train = data.train_windows()
    for i in range(len(train)):
        species, start, _ = train.locate(i)
        lo, hi = data.genomes[species].to_joined("block3", 0, 150)
        assert lo <= start and start + 100 <= hi
    (tmp_path / "usable.bed").write_text("block3\t0\t99999\n")
    with pytest.raises(InputError, match="line 1: block3:0-99999 is not inside a record"):
        SpeciesDataModule(str(tmp_path / "species.tsv"), seq_len=100).setup("fit")
