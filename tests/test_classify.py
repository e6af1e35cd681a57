"""`seqmamba finetune` end to end (run directory, resume, bad input) and `seqmamba classify` on its checkpoint."""

from __future__ import annotations

import gzip
import io
import json
import re

import numpy as np
import pytest
import torch
from species_fixtures import make_species

from seqmamba.cli import main
from seqmamba.data.reads import simulate_reads
from seqmamba.data.species import JoinedGenome, read_manifest
from seqmamba.data.tokenizer import encode
from seqmamba.read_calls import load_classifier, predict_logits, predict_proba

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
    assert main(["finetune", "--data.manifest", str(manifest), "--out", str(run_dir), *TINY,
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
    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]["temperature"]
    assert summary["temperature"] == pytest.approx(float(saved)) and 0.05 <= summary["temperature"] <= 20
    assert load_classifier(run_dir / "checkpoints" / "last.ckpt").temperature == pytest.approx(float(saved))
    by_length = summary["test_by_length"]
    assert list(by_length) == ["24", "64"] and by_length["64"]["accuracy"] == summary["test_accuracy"]
    assert all(abs(sum(row["call_share"].values()) - 1) < 1e-9 and row["windows"] == 24 for row in by_length.values())
    calibration = by_length["64"]["calibration"]
    assert calibration["accuracy"] == summary["test_accuracy"] and set(calibration["called_at"]) == {"0.5", "0.7", "0.9"}
    assert 0 <= calibration["ece_before"] <= 1 and 0 <= calibration["ece_after"] <= 1
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
    assert main(["finetune", "--out", str(tmp_path / "r"), *TINY, *extra]) == 2
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
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--out", str(out), *files]) == 0
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
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--out", str(out),
                 "--min_confidence", "1.0", str(tmp_path / "a.fa")]) == 0
    assert {line.split("\t")[3] for line in out.read_text().splitlines()[1:]} == {"unclassified"}


def test_classify_malformed_record_names_file_and_record_and_keeps_old_output(run, tmp_path, capsys):
    _, run_dir = run
    bad = tmp_path / "bad.fq"
    bad.write_text("@a\nACGT\n+\nIIII\n@b\nACGT\n+\nII\n")
    out = tmp_path / "pred.tsv"
    earlier = "file\tread_id\tlength\tcall\tp_sp0\tp_sp1\tp_sp2\nearlier results\n"
    out.write_text(earlier)
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--out", str(out), str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"seqmamba classify: error: {bad}: record 2: malformed FASTQ" in err
    assert out.read_text() == earlier and not list(tmp_path.glob(".*tmp*"))


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


def report_rows(path):
    """A Kraken report parsed back: (percent, clade reads, assigned reads, rank, id, name with its indent)."""
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert all(len(row) == 6 for row in rows)
    return [(float(p), int(clade), int(assigned), rank, int(taxid), name) for p, clade, assigned, rank, taxid, name in rows]


def test_report_and_kraken_output_parse_back(run, tmp_path):
    manifest, run_dir = run
    reads = reads_of(manifest, 100, per_species=4)
    (tmp_path / "a.fa").write_text("".join(f">a{i}\n{seq}\n" for i, (_, seq) in enumerate(reads)) + ">e\n\n")
    out, report, kraken = tmp_path / "pred.tsv", tmp_path / "report.txt", tmp_path / "kraken.txt"
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--out", str(out), "--report",
                 str(report), "--kraken_output", str(kraken), "--min_confidence", "0.5", str(tmp_path / "a.fa")]) == 0
    rows = report_rows(report)
    assert [row[3] for row in rows] == ["U", "R", "S", "S", "S"] and rows[0][5] == "unclassified"
    assert [row[5] for row in rows[1:]] == ["root", "  sp0", "  sp1", "  sp2"]  # species indented under root
    assert rows[0][1] + rows[1][1] == 13 and rows[1][1] == sum(row[2] for row in rows[2:])
    assert abs(rows[0][0] + rows[1][0] - 100) < 0.02 and [row[4] for row in rows] == [0, 1, 2, 3, 4]
    assert all(re.fullmatch(r" *\d{1,3}\.\d\d", line[:6]) for line in report.read_text().splitlines())  # %6.2f
    per_read = [line.split("\t") for line in kraken.read_text().splitlines()]
    assert len(per_read) == 13 and all(len(row) == 5 for row in per_read)
    table = [line.split("\t") for line in out.read_text().splitlines()[1:]]
    for (status, read_id, label, length, confidence), row in zip(per_read, table):
        assert read_id == row[1] and length == row[2] and 0 <= float(confidence) <= 1
        assert (status, label) == (("U", "unclassified") if row[3] in ("unclassified", "empty") else ("C", row[3]))
    assert sum(row[0] == "C" for row in per_read) == rows[1][1]  # the report counts what the per-read lines say
    abundance = [line.split("\t") for line in (tmp_path / "pred.abundance.tsv").read_text().splitlines()]
    assert abundance[0] == ["class", str(tmp_path / "a.fa")] and [row[0] for row in abundance[1:]] == ["sp0", "sp1", "sp2"]


def stdin_of(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))


def test_stdin_and_paired_end(run, tmp_path, monkeypatch):
    manifest, run_dir = run
    reads = reads_of(manifest, 100, per_species=3)
    fasta = "".join(f">r{i}\n{seq}\n" for i, (_, seq) in enumerate(reads))
    (tmp_path / "r.fa").write_text(fasta)
    stdin_of(monkeypatch, gzip.compress(fasta.encode()))
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    assert main(["classify", "--ckpt", ckpt, "--out", str(tmp_path / "in.tsv"), "-"]) == 0
    assert main(["classify", "--ckpt", ckpt, "--out", str(tmp_path / "file.tsv"), str(tmp_path / "r.fa")]) == 0
    from_stdin = [line.split("\t")[1:] for line in (tmp_path / "in.tsv").read_text().splitlines()]
    assert from_stdin == [line.split("\t")[1:] for line in (tmp_path / "file.tsv").read_text().splitlines()]
    assert (tmp_path / "in.tsv").read_text().splitlines()[1].startswith("stdin\t")
    mates = reads_of(manifest, 60, per_species=3)
    (tmp_path / "r_1.fq").write_text("".join(f"@p{i}/1\n{s}\n+\n{'I' * len(s)}\n" for i, (_, s) in enumerate(reads)))
    (tmp_path / "r_2.fq").write_text("".join(f"@p{i}/2\n{s}\n+\n{'I' * len(s)}\n" for i, (_, s) in enumerate(mates)))
    assert main(["classify", "--ckpt", ckpt, "--out", str(tmp_path / "pairs.tsv"), "--kraken_output",
                 str(tmp_path / "pairs.kraken"), "--paired", str(tmp_path / "r_1.fq"), str(tmp_path / "r_2.fq")]) == 0
    pairs = [line.split("\t") for line in (tmp_path / "pairs.kraken").read_text().splitlines()]
    assert len(pairs) == 9 and [row[1] for row in pairs] == [f"p{i}" for i in range(9)]  # one line per pair
    assert {row[3] for row in pairs} == {"100|60"}
    loaded = load_classifier(ckpt)
    logits = [predict_logits(loaded, [s for _, s in group]) for group in (reads, mates)]
    expected = np.array(loaded.classes)[(logits[0] + logits[1]).argmax(axis=1)]
    assert [row[2] for row in pairs] == expected.tolist()  # mates' evidence combined


@pytest.mark.parametrize("case, problem", [
    ("mates", "holds more reads than"),
    ("report_folder", "--report names a folder"),
    ("empty_stdin", "stdin: no reads came in"),
    ("output_is_input", "names an input of this command"),
])
def test_bad_classify_input_is_one_line_and_writes_nothing(run, tmp_path, monkeypatch, capsys, case, problem):
    _, run_dir = run
    (tmp_path / "r_1.fq").write_text("@a/1\nACGT\n+\nIIII\n@b/1\nACGT\n+\nIIII\n")
    (tmp_path / "r_2.fq").write_text("@a/2\nACGT\n+\nIIII\n")
    (tmp_path / "folder").mkdir()
    stdin_of(monkeypatch, b"")
    inputs = {"mates": ["--paired", str(tmp_path / "r_1.fq"), str(tmp_path / "r_2.fq")],
              "report_folder": ["--report", str(tmp_path / "folder"), str(tmp_path / "r_2.fq")],
              "empty_stdin": ["-"],
              "output_is_input": ["--report", str(tmp_path / "r_2.fq"), str(tmp_path / "r_2.fq")]}[case]
    before = sorted(tmp_path.rglob("*"))
    assert main(["classify", "--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--out", str(tmp_path / "p.tsv"),
                 *inputs]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("seqmamba classify: error: ") and problem in errors[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even a temporary file
