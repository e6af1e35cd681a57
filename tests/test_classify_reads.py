"""Classifying the reads people have: one-record genomes, windows of every length, the k-mer baseline, chunked
reads with the state carried, length-sorted batches, calibration, Kraken-style lines, paired mates."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from Bio import bgzf
from species_fixtures import make_species, write_fasta

from seqmamba.data.read_batches import encode_reads, length_batches, padded_batch
from seqmamba.data.reads import read_pairs
from seqmamba.data.species import BalancedWindows, JoinedGenome, read_manifest, shared_splits
from seqmamba.data.tokenizer import decode
from seqmamba.errors import InputError
from seqmamba.metrics.calibration import calibration_summary, expected_calibration_error, fit_temperature
from seqmamba.nn import MambaLMConfig
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.read_reports import call_reads, kraken_output_lines, kraken_report_lines
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


@pytest.mark.parametrize("complex_ssm, pooling", [(False, "mean"), (False, "last"), (True, "mean")])
def test_chunked_pass_with_carried_state_equals_one_pass(complex_ssm, pooling):
    torch.manual_seed(0)
    model = SequenceClassifier(MambaLMConfig(d_model=16, n_layer=2, complex_ssm=complex_ssm), 3, pooling).eval()
    ids = torch.randint(4, 9, (3, 50))
    lengths = torch.tensor([50, 37, 9])  # right-padded rows: padding only after each row's end
    with torch.no_grad():
        whole = model(ids, lengths)
        for chunk in (7, 16, 50):  # a last chunk of 1, of 2, and one chunk
            assert torch.allclose(model.forward_chunked(ids, lengths, chunk), whole, atol=1e-5)
        cut = model.forward_chunked(ids[:, :25], torch.tensor([25, 25, 9]), 7)  # a different read: differs
    assert not torch.allclose(cut[:2], whole[:2], atol=1e-3)


def test_length_batches_sorted_padded_and_within_budget():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGTN"), n)) for n in rng.integers(0, 300, 200)]
    ids, offsets = encode_reads(seqs)
    lengths = np.diff(offsets)
    seen = []
    for rows in length_batches(lengths, batch_tokens=1000):
        batch, row_lengths = padded_batch(ids, offsets, rows)
        assert batch.shape[0] * batch.shape[1] <= 1000 or len(rows) == 1
        assert batch.shape[1] == lengths[rows].max() and np.array_equal(row_lengths, lengths[rows])
        for row, read in zip(batch, rows):
            assert decode(row[: lengths[read]]) == seqs[read].upper() and not row[lengths[read]:].any()
        seen.extend(rows.tolist())
    assert sorted(seen) == list(range(200)) and [lengths[i] for i in seen] == sorted(lengths)


def test_temperature_fit_recovers_overconfidence_and_lowers_ece():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 4000)
    true_logits = rng.normal(size=(4000, 4))
    true_logits[np.arange(4000), labels] += 1.0
    truth = np.exp(true_logits) / np.exp(true_logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(4, p=p) for p in truth])  # labels drawn from the true probabilities
    overconfident = 3.0 * true_logits  # a model that is right as often, but 3x too sure
    temperature = fit_temperature(overconfident, labels)
    assert 2.6 < temperature < 3.4
    summary = calibration_summary(overconfident, labels, temperature)
    assert summary["ece_after"] < 0.03 < summary["ece_before"]
    called = summary["called_at"]
    assert called["0.5"]["called"] >= called["0.7"]["called"] >= called["0.9"]["called"]
    assert expected_calibration_error(np.full((10, 2), 0.5), np.arange(10) % 2) == 0.0  # right half the time, says 0.5


def test_calls_below_confidence_are_unclassified_and_empty_reads_empty():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [np.nan, np.nan]])
    calls, confidence = call_reads(probs, ["a", "b"], min_confidence=0.6)
    assert calls.tolist() == ["a", "unclassified", "empty"] and confidence.tolist() == [0.9, 0.55, 0.0]
    lines = kraken_output_lines(["r1", "r2", "r3"], calls, ["10", "20", "0"], confidence)
    assert lines == ["C\tr1\ta\t10\t0.9000", "U\tr2\tunclassified\t20\t0.5500", "U\tr3\tunclassified\t0\t0.0000"]
    report = kraken_report_lines(Counter(calls.tolist()), ["a", "b"])
    assert report[0] == " 66.67\t2\t2\tU\t0\tunclassified" and report[2] == " 33.33\t1\t1\tS\t2\t  a"


def test_paired_reads_of_unequal_counts_or_ids_are_refused(tmp_path):
    (tmp_path / "a.fq").write_text("@x/1\nAC\n+\nII\n@y/1\nAC\n+\nII\n")
    (tmp_path / "b.fq").write_text("@x/2\nGG\n+\nII\n@z/2\nAC\n+\nII\n")
    (tmp_path / "c.fq").write_text("@x/2\nGG\n+\nII\n")
    with pytest.raises(InputError, match="'z/2' is not the mate of 'y/1'"):
        list(read_pairs(tmp_path / "a.fq", tmp_path / "b.fq"))
    with pytest.raises(InputError, match=r"holds more reads than .*c.fq \(1\)") as error:
        list(read_pairs(tmp_path / "a.fq", tmp_path / "c.fq"))
    assert error.value.path == str(tmp_path / "a.fq")
    assert next(read_pairs(tmp_path / "a.fq", tmp_path / "b.fq")) == ("x", "AC", "GG")
