"""`seqmamba finetune` end to end (run directory, resume, bad input) and `seqmamba classify` on its checkpoint."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from species_fixtures import make_species

from seqmamba.cli import main
from seqmamba.data.reads import simulate_reads
from seqmamba.data.species import JoinedGenome, read_manifest
from seqmamba.data.tokenizer import encode
from seqmamba.read_calls import load_classifier, predict_proba

TINY = ["--model.backbone.d_model", "16", "--model.backbone.n_layer", "1", "--model.lr", "0.01",
        "--model.warmup_steps", "2", "--data.seq_len", "64", "--data.batch_size", "12",
        "--data.samples_per_epoch", "96", "--data.val_windows", "2", "--data.test_windows", "8",
        "--data.min_len", "16", "--data.test_lengths", "[24]",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A fine-tuned tiny model on three easy species: (manifest, run directory)."""
    root = tmp_path_factory.mktemp("finetune")
    manifest = make_species(root, n_species=3, n_records=20, record_len=300, substitution_rate=0.4)
    run_dir = root / "run"
    assert main(["finetune", "--data.manifest", str(manifest), "--run_dir", str(run_dir), *TINY,
                 "--trainer.max_epochs", "2"]) == 0
    return manifest, run_dir


def test_finetune_writes_run_directory_with_test_accuracy_and_resumes(run, capsys):
    manifest, run_dir = run
    for name in ("config.yaml", "checkpoints/last.ckpt", "logs/metrics.csv", "loss.png", "summary.json",
                 "confusion.csv", "confusion.png"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["classes"] == ["sp0", "sp1", "sp2"] and summary["steps"] == 16
    assert set(summary["per_class_accuracy"]) == {"sp0", "sp1", "sp2"} and 0 <= summary["test_accuracy"] <= 1
    by_length = summary["test_by_length"]
    assert list(by_length) == ["24", "64"] and by_length["64"]["accuracy"] == summary["test_accuracy"]
    assert all(abs(sum(row["call_share"].values()) - 1) < 1e-9 and row["windows"] == 24 for row in by_length.values())
    rows = (run_dir / "confusion.csv").read_text().splitlines()
    assert rows[0] == "true\\predicted,sp0,sp1,sp2" and sum(int(v) for r in rows[1:] for v in r.split(",")[1:]) == 24
    assert main(["finetune", "--config", str(run_dir / "config.yaml"), "--trainer.max_epochs", "3",
                 "--resume", "last"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 24  # continued, not restarted


@pytest.mark.parametrize("extra, problem", [
    (["--data.manifest", "missing.tsv"], "no such manifest"),
    (["--data.manifest", "MANIFEST", "--model.init_from", "missing.ckpt"], "no such checkpoint"),
    (["--data.manifest", "MANIFEST", "--model.pooling", "max"], "model.pooling"),
])
def test_finetune_bad_input_is_one_line(run, tmp_path, capsys, extra, problem):
    manifest, _ = run
    extra = [str(manifest) if arg == "MANIFEST" else arg for arg in extra]
    assert main(["finetune", "--run_dir", str(tmp_path / "r"), *TINY, *extra]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("seqmamba finetune: error")]
    assert len(errors) == 1 and problem in errors[0]
    assert not (tmp_path / "r").exists()  # nothing written for bad input


def reads_of(manifest, length, per_species, error_rate=0.0):
    genomes = [JoinedGenome(entry.fasta) for entry in read_manifest(manifest)]
    return simulate_reads(genomes, length, per_species, error_rate, seed=0)


def test_classify_fasta_fastq_and_gzip_with_summary(run, tmp_path, capsys):
    manifest, run_dir = run
    reads = reads_of(manifest, 100, per_species=4)
    (tmp_path / "a.fa").write_text("".join(f">a{i} x\n{seq}\n" for i, (_, seq) in enumerate(reads)) + ">empty\n\n")
    fastq = "".join(f"@q{i}\n{seq}\n+\n{'I' * len(seq)}\n" for i, (_, seq) in enumerate(reads))
    (tmp_path / "b.fq").write_text(fastq)
    (tmp_path / "c.fq.gz").write_bytes(gzip.compress(fastq.encode()))
    out = tmp_path / "pred.tsv"
    files = [str(tmp_path / name) for name in ("a.fa", "b.fq", "c.fq.gz")]
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "-o", str(out), *files]) == 0
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    assert lines[0] == ["file", "read_id", "length", "call", "p_sp0", "p_sp1", "p_sp2"]
    assert len(lines) == 1 + 13 + 12 + 12
    assert lines[13][1:4] == ["empty", "0", "empty"]
    calls = [row[3] for row in lines[1:13]]
    assert [row[3] for row in lines[14:26]] == calls == [row[3] for row in lines[26:]]  # same reads, same calls
    for row in lines[1:13]:
        assert abs(sum(float(p) for p in row[4:]) - 1) < 1e-3
    summary = (tmp_path / "pred.summary.tsv").read_text()
    assert f"{files[0]}\tempty\t1\t" in summary and summary == capsys.readouterr().out.split("predictions:")[0]


def test_min_confidence_marks_unclassified(run, tmp_path):
    manifest, run_dir = run
    (tmp_path / "a.fa").write_text("".join(f">r{i}\n{seq}\n" for i, (_, seq) in enumerate(reads_of(manifest, 80, 3))))
    out = tmp_path / "pred.tsv"
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "-o", str(out),
                 "--min-confidence", "1.0", str(tmp_path / "a.fa")]) == 0
    assert {line.split("\t")[3] for line in out.read_text().splitlines()[1:]} == {"unclassified"}


def test_classify_malformed_record_names_file_and_record_and_keeps_old_output(run, tmp_path, capsys):
    _, run_dir = run
    bad = tmp_path / "bad.fq"
    bad.write_text("@a\nACGT\n+\nIIII\n@b\nACGT\n+\nII\n")
    out = tmp_path / "pred.tsv"
    out.write_text("earlier results\n")
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "-o", str(out), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"seqmamba classify: error: {bad}: record 2: malformed FASTQ" in err
    assert out.read_text() == "earlier results\n" and not list(tmp_path.glob(".*tmp"))


def test_long_reads_are_read_whole_in_chunks_and_batches_do_not_change_calls(run):
    _, run_dir = run
    loaded = load_classifier(run_dir / "checkpoints" / "last.ckpt")
    rng = np.random.default_rng(0)
    reads = ["".join(rng.choice(list("ACGT"), n)) for n in (10, 64, 150, 37, 64, 1)]
    together = predict_proba(loaded, reads, batch_tokens=1 << 12)
    alone = np.concatenate([predict_proba(loaded, [read], batch_tokens=64) for read in reads])
    assert np.allclose(together, alone, atol=1e-5)
    with torch.no_grad():  # the 150-base read (> seq_len 64) in one pass, as if the model could hold it
        whole = loaded.model(torch.from_numpy(encode(reads[2])[None, :]).long()) / loaded.temperature
    assert np.allclose(together[2], torch.softmax(whole, dim=1)[0].numpy(), atol=1e-5)
