"""Classifying the reads people have: genomes of one record, windows of every read length, the k-mer baseline."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf
from species_fixtures import make_species, write_fasta

from seqmamba.data.species import BalancedWindows, JoinedGenome, read_manifest, shared_splits
from seqmamba.errors import InputError
from seqmamba.tasks.species_data import SpeciesDataModule, read_lengths

LAMBDA = Path(__file__).parents[1] / "data" / "genomes" / "lambda_phage.fa"
_SPEC = importlib.util.spec_from_file_location(
    "kmer_species", Path(__file__).parents[1] / "pipelines" / "baselines" / "kmer_species.py")
kmer_species = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(kmer_species)


@pytest.fixture(scope="module")
def phage_and_bacterium(tmp_path_factory) -> Path:
    """Two single-record genomes: the lambda phage (plain FASTA) and a GC-rich random 'bacterium' (bgzip)."""
    root = tmp_path_factory.mktemp("single")
    shutil.copy(LAMBDA, root / "lambda.fa")
    rng = np.random.default_rng(0)
    bacterium = "".join(rng.choice(list("ACGT"), 30_000, p=[0.17, 0.33, 0.33, 0.17]))
    plain = write_fasta(root / "bacterium.fa", [("chromosome", bacterium)])
    with bgzf.BgzfWriter(str(root / "bacterium.fa.gz"), "wb") as out:
        out.write(plain.read_bytes())
    plain.unlink()
    (root / "species.tsv").write_text("species\tfasta\nlambda\tlambda.fa\nbacterium\tbacterium.fa.gz\n")
    return root / "species.tsv"


def test_single_record_genomes_split_by_fraction_into_disjoint_regions(phage_and_bacterium):
    genomes = [JoinedGenome(entry.fasta) for entry in read_manifest(phage_and_bacterium)]
    regions = shared_splits(genomes, 0.1, 0.1, chunks=2)
    for genome, splits in zip(genomes, regions):
        covered = sorted(u for ranges in splits.values() for a, b in ranges for u in (a, b - 1))
        assert covered[0] == 0 and covered[-1] == len(genome) - 1  # the whole genome, not one block in one split
        test_bases = sum(b - a for a, b in splits["test"])
        assert abs(test_bases - 0.1 * len(genome)) <= 2 and len(splits["test"]) == 2
    data = SpeciesDataModule(str(phage_and_bacterium), seq_len=1024, test_windows=4, test_lengths=[150])
    data.setup("fit")
    data.setup("test")
    assert len(data.fixed_windows("test", 150)) == 8 and len(data.fixed_windows("test")) == 8
    assert data.test_lengths == [150, 1024]


def test_different_record_counts_split_by_fraction_and_aligned_ones_by_block(tmp_path):
    aligned = make_species(tmp_path, n_species=2, n_records=20, record_len=200)
    genomes = [JoinedGenome(entry.fasta) for entry in read_manifest(aligned)]
    by_block = shared_splits(genomes, 0.1, 0.1)
    for genome, splits in zip(genomes, by_block):  # edges fall on record starts
        assert all(a in genome.offsets for a, _ in splits["test"])
    records = [(f"contig{i}", "ACGT" * 300) for i in range(3)]
    write_fasta(tmp_path / "species1.fa", records)  # 3 records here, 20 in species0
    uneven = shared_splits([JoinedGenome(tmp_path / "species0.fa"), JoinedGenome(tmp_path / "species1.fa")], 0.1, 0.1)
    assert sum(b - a for a, b in uneven[1]["test"]) == 360  # 10% of 3600 bases, not one of 3 records


def test_advice_for_a_window_too_long_names_a_length_that_works(phage_and_bacterium):
    data = SpeciesDataModule(str(phage_and_bacterium), seq_len=8000, split_chunks=2)
    with pytest.raises(InputError) as error:
        data.setup("validate")
    longest = int(error.value.problem.split("the longest has ")[1].split()[0])
    assert f"use seq_len {longest} or shorter" in error.value.problem and "split_chunks 1" in error.value.problem
    SpeciesDataModule(str(phage_and_bacterium), seq_len=longest, split_chunks=2).setup("validate")  # it works


def test_training_batches_vary_in_length_one_length_per_batch(tmp_path):
    manifest = make_species(tmp_path, n_species=3, n_records=20, record_len=300)
    data = SpeciesDataModule(str(manifest), seq_len=256, min_len=16, batch_size=6, samples_per_epoch=600)
    data.setup("fit")
    loader = data.train_dataloader()
    lengths = [batch["input_ids"].shape[1] for batch in loader]
    assert len(lengths) == 100 and min(lengths) >= 16 and max(lengths) <= 256
    assert len(set(lengths)) > 30  # many lengths, not one
    assert sum(length < 64 for length in lengths) > 30  # log-uniform: half below the geometric mean 64
    windows = data.train_windows()
    assert all(windows.length_of(i) == windows.length_of(i - i % 6) for i in range(60))  # one length per batch
    fixed = BalancedWindows(windows.genomes, data.split_regions("train"), 256, 60, seed=0, batch_size=6)
    assert {len(fixed[i][0]) for i in range(12)} == {256}  # min_length unset: today's fixed windows


def test_read_lengths_run_from_150_bp_to_seq_len():
    assert read_lengths(16384) == [150, 1000, 4096, 16384]
    assert read_lengths(4096) == [150, 1000, 4096] and read_lengths(64) == [64]


def test_kmer_baseline_on_single_record_genomes_per_length(phage_and_bacterium, tmp_path):
    out = tmp_path / "kmer.json"
    assert kmer_species.run(["--manifest", str(phage_and_bacterium), "--seq-len", "512", "--lengths", "150",
                             "--k", "3", "--train-windows", "40", "--test-windows", "6", "--exact-k", "15",
                             "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["by_length"]) == {"150", "512"}
    assert result["by_length"]["150"]["k3"] >= 0.9  # GC content alone tells these two apart
    assert 0 <= result["by_length"]["512"]["exact15_called"] <= 1


def test_kmer_baseline_bad_input_is_one_line(phage_and_bacterium, tmp_path, capsys):
    assert kmer_species.run(["--manifest", str(tmp_path / "missing.tsv"), "--out", str(tmp_path / "k.json")]) == 2
    assert kmer_species.run(["--manifest", str(phage_and_bacterium), "--seq-len", "60000"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(line.startswith("kmer_species.py: error: ") for line in errors)
    assert "no such manifest" in errors[0] and "use seq_len" in errors[1]
    assert not list(tmp_path.iterdir())
