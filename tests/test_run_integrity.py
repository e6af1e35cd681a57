"""Runs never lose work: checkpoints stay fresh and whole, signals save and say how to resume, run directories
are never overwritten by accident, and every bad input ends in one line naming the file (exit status 2)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_pretrain_cli import LAMBDA, TINY, pretrain

from seqmamba.training.checkpoints import AtomicCheckpointIO, load_checkpoint
from seqmamba.cli import main
from seqmamba.errors import RunFailed, RunInterrupted

LONG = ["--data.samples_per_epoch", "160", "--trainer.max_epochs", "2", "--checkpoint_every_n_steps", "5"]


@pytest.fixture()
def genome(tmp_path):
    path = tmp_path / "lambda.fa"
    path.write_bytes(LAMBDA.read_bytes())
    return path


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under a folder with its content hash: to prove nothing was changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(capsys, command: str = "pretrain") -> str:
    """The single error line a command printed."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"seqmamba {command}: ")]
    assert len(lines) == 1, lines
    return lines[0]


def ckpt_step(path: Path) -> int:
    return load_checkpoint(path)["global_step"]


def finished_run(tmp_path: Path, genome: Path, *extra: str) -> Path:
    run_dir = tmp_path / "run"
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "3", "--checkpoint_every_n_steps", "3", *extra) == 0
    return run_dir


# -- checkpoints are fresh, whole and final ------------------------------------------------------------------

def test_last_checkpoint_holds_the_final_weights_and_extending_continues(tmp_path, genome):
    run_dir = finished_run(tmp_path, genome)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 12 and ckpt_step(run_dir / "checkpoints" / "last.ckpt") == 12
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "4", "--resume", "last") == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 16  # 4 more steps, none redone


def test_checkpoint_write_is_atomic_when_the_disk_fills(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "global_step": 1}, target)
    before = target.read_bytes()

    def full_disk(obj, handle, *args, **kwargs):
        handle.write(b"PK partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(RunFailed, match="No space left on device.*still holds the previous save"):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "global_step": 2}, target)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


# -- signals and kill -9: a checkpoint, a resume hint, and the same result as an uninterrupted run ------------

def start(run_dir: Path, genome: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seqmamba.cli", "pretrain", "--data.fasta", str(genome),
                             "--out", str(run_dir), *TINY, *LONG, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_checkpoint(run_dir: Path, process: subprocess.Popen) -> None:
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    genome = tmp / "lambda.fa"
    genome.write_bytes(LAMBDA.read_bytes())
    assert pretrain(tmp / "run", genome, *LONG) == 0
    return json.loads((tmp / "run" / "summary.json").read_text())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, genome, uninterrupted, signum):
    run_dir = tmp_path / "run"
    process = start(run_dir, genome, "--data.num_workers", "2")  # as the presets run; uninterrupted had none
    wait_for_checkpoint(run_dir, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=240)
    assert process.returncode in (128 + signum, -signum), err[-2000:]
    step = ckpt_step(run_dir / "checkpoints" / "last.ckpt")
    assert 0 < step < uninterrupted["steps"]
    if signum != signal.SIGKILL:
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == (
            f"seqmamba pretrain: stopped: {signal.Signals(signum).name} received: saved {run_dir}/checkpoints/last.ckpt "
            f"at step {step}; continue with `seqmamba pretrain --config {run_dir}/config.yaml --resume last`")
    assert main(["pretrain", "--config", str(run_dir / "config.yaml"), "--resume", "last"]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["steps"] == uninterrupted["steps"]
    assert resumed["val_ppl"] == pytest.approx(uninterrupted["val_ppl"], rel=1e-6)


def test_sigterm_to_the_whole_process_group_spares_loader_workers(tmp_path, genome):
    """Schedulers signal every process of a job: DataLoader workers must leave the stop to the main process."""
    run_dir = tmp_path / "run"
    process = start(run_dir, genome, "--data.num_workers", "2")
    wait_for_checkpoint(run_dir, process)
    os.killpg(process.pid, signal.SIGTERM)
    out, err = process.communicate(timeout=240)
    assert process.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "SIGTERM received: saved" in err.strip().splitlines()[-1]


# -- run directories ------------------------------------------------------------------------------------------

def test_a_stop_under_ddp_prints_one_line_not_one_per_rank(monkeypatch, capsys):
    """Every rank stops at the same step; only rank 0 says so (the others' RunInterrupted is not shown)."""
    import seqmamba.cli

    def stop(signum: int, shown: bool):
        def run(name, function, argv):  # the dispatcher's call of a word
            raise RunInterrupted(signum, "saved last.ckpt", shown)
        return run

    monkeypatch.setattr(seqmamba.cli, "run", stop(signal.SIGTERM, shown=False))
    assert main(["pretrain"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(seqmamba.cli, "run", stop(signal.SIGINT, shown=True))
    assert main(["pretrain"]) == 128 + signal.SIGINT
    assert capsys.readouterr().err == "seqmamba pretrain: stopped: saved last.ckpt\n"


def test_second_run_into_a_run_directory_is_refused_and_changes_nothing(tmp_path, genome, capsys):
    run_dir = finished_run(tmp_path, genome)
    before = snapshot(run_dir)
    capsys.readouterr()
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "1") == 2
    assert "already holds a run" in error_line(capsys) and snapshot(run_dir) == before
    bad = tmp_path / "bad.fa"
    bad.write_text("")
    assert pretrain(run_dir, bad, "--trainer.max_epochs", "1", "--resume", "last") == 2
    assert str(bad) in error_line(capsys) and snapshot(run_dir) == before


def test_overwrite_starts_over(tmp_path, genome):
    run_dir = finished_run(tmp_path, genome)
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "1", "--overwrite", "true") == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 4
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert not (run_dir / "logs-1").exists()


def test_failed_start_creates_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n")
    assert pretrain(tmp_path / "run", bad, "--trainer.max_epochs", "1") == 2
    assert not (tmp_path / "run").exists()


# -- one line for every bad input -----------------------------------------------------------------------------

def test_bad_checkpoints_name_the_file_and_the_intact_ones(tmp_path, genome, capsys):
    run_dir = finished_run(tmp_path, genome)
    checkpoints = run_dir / "checkpoints"
    last = checkpoints / "last.ckpt"
    truncated = checkpoints / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    garbage = checkpoints / "garbage.ckpt"
    garbage.write_bytes(os.urandom(4096))
    fasta = checkpoints / "genome.ckpt"
    fasta.write_bytes(genome.read_bytes())
    cases = [(checkpoints / "missing.ckpt", "no such checkpoint"), (truncated, "not a complete checkpoint"),
             (garbage, "not a complete checkpoint"), (fasta, "not a complete checkpoint"),
             ("http://example.org/x.ckpt", "only local checkpoint files")]
    capsys.readouterr()
    for path, problem in cases:
        assert pretrain(run_dir, genome, "--trainer.max_epochs", "5", "--resume", str(path)) == 2
        line = error_line(capsys)
        assert str(path) in line and problem in line, line
        if "://" not in str(path):
            assert "intact checkpoints there:" in line and str(last) in line
    other = ["--model.backbone.d_model", "32"]
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "5", "--resume", "last", *other) == 2
    assert "another shape" in error_line(capsys)


def test_crafted_checkpoint_never_runs_code(tmp_path, genome, capsys):
    run_dir = finished_run(tmp_path, genome)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    crafted = run_dir / "checkpoints" / "crafted.ckpt"
    torch.save({"state_dict": {}, "x": Payload()}, crafted)
    capsys.readouterr()
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "5", "--resume", str(crafted)) == 2
    assert "refused" in error_line(capsys) and not marker.exists()


def test_resume_with_no_earlier_run(tmp_path, genome, capsys):
    assert pretrain(tmp_path / "run", genome, "--trainer.max_epochs", "1", "--resume", "last") == 2
    assert "no checkpoint to resume from" in error_line(capsys) and not (tmp_path / "run").exists()


def test_divergence_is_one_line_and_no_nan_is_written(tmp_path, genome, capsys):
    run_dir = tmp_path / "run"
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "2", "--model.lr", "1e6", "--model.warmup_steps",
                    "0", "--checkpoint_every_n_steps", "1") == 1
    assert "training diverged" in error_line(capsys)
    assert not (run_dir / "summary.json").exists()
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.exists():
        assert all(torch.isfinite(t).all() for t in load_checkpoint(last)["state_dict"].values())


@pytest.mark.parametrize("extra, problem", [
    (["--model.lr", "-0.1"], "model.lr must be positive"),
    (["--model.backbone.vocab_size", "5"], "vocab_size"),
    (["--checkpoint_every_n_steps", "0"], "checkpoint_every_n_steps"),
    (["--model.backbone", "configs/models/mamba-9t.yaml"], "no such config file"),
    (["--data.seq_len", "many"], "data.seq_len"),
])
def test_bad_settings(tmp_path, genome, capsys, extra, problem):
    assert pretrain(tmp_path / "run", genome, "--trainer.max_epochs", "1", *extra) == 2
    assert problem in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_run_dir_naming_a_file(tmp_path, genome, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert pretrain(file, genome, "--trainer.max_epochs", "1") == 2
    assert "names an existing file" in error_line(capsys) and file.read_text() == "mine"


def test_yaml_errors_name_the_file(tmp_path, genome, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("data:\n  seq_len: [64\n")
    assert main(["pretrain", "--config", str(config)]) == 2
    line = error_line(capsys)
    assert str(config) in line and "not valid YAML" in line and "line" in line
    config.write_text("model:\n  backbone: configs/models/nope.yaml\n")
    assert main(["pretrain", "--config", str(config)]) == 2
    assert "configs/models/nope.yaml" in error_line(capsys)


def test_stale_and_corrupt_index_and_nameless_record(tmp_path, genome, capsys):
    two = tmp_path / "two.fa"
    two.write_text(">a\n" + "ACGT" * 1000 + "\n>b\n" + "GGCC" * 1000 + "\n")
    assert pretrain(tmp_path / "r1", two, "--trainer.max_epochs", "1") == 0
    two.write_text(">a\n" + "ACGT" * 1000 + "\n")  # shortened after indexing
    os.utime(f"{two}.fai")  # and the index looks newer, so pyfaidx would trust it
    assert pretrain(tmp_path / "r2", two, "--trainer.max_epochs", "1") == 2
    assert "changed after the index was built" in error_line(capsys)
    Path(f"{two}.fai").write_text("garbage\n")
    assert pretrain(tmp_path / "r3", two, "--trainer.max_epochs", "1") == 2
    assert "not a FASTA index row" in error_line(capsys)
    nameless = tmp_path / "nameless.fa"
    nameless.write_text(">\n" + "ACGT" * 300 + "\n")
    assert pretrain(tmp_path / "r4", nameless, "--trainer.max_epochs", "1") == 2
    assert "no name" in error_line(capsys)


def test_letters_outside_the_alphabet_are_counted(tmp_path, capsys):
    odd = tmp_path / "odd.fa"
    odd.write_text(">p\n" + "ACGTACGXJ1" * 500 + "\n")
    assert pretrain(tmp_path / "run", odd, "--trainer.max_epochs", "1") == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "30.0%" in warning[0] and "'X'" in warning[0] and "'1'" in warning[0]


def test_bed_with_overlapping_splits_is_refused(tmp_path, genome, capsys):
    bed = tmp_path / "splits.bed"
    contig = next(line[1:].split()[0] for line in genome.read_text().splitlines() if line.startswith(">"))
    bed.write_text(f"{contig}\t0\t30000\ttrain\n{contig}\t29000\t40000\tvalid\n{contig}\t40000\t48000\ttest\n")
    assert pretrain(tmp_path / "run", genome, "--data.split", "bed", "--data.bed", str(bed),
                    "--trainer.max_epochs", "1") == 2
    line = error_line(capsys)
    assert "lines 1 and 2" in line and "overlap" in line


def test_the_user_sees_no_lightning_noise_and_no_broken_pipe(tmp_path, genome):
    done = subprocess.run([sys.executable, "-m", "seqmamba.cli", "pretrain", "--data.fasta", str(genome),
                           "--out", str(tmp_path / "run"), *TINY, "--trainer.max_epochs", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0
    for noise in ("args parameter is intended", "litlogger", "Tip", "GPU available", "Warning"):
        assert noise not in done.stderr + done.stdout
    bad = subprocess.run([sys.executable, "-m", "seqmamba.cli", "pretrain", "--data.nonsense", "1"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    piped = subprocess.run(f"{sys.executable} -c 'from seqmamba.cli import entry_point; entry_point()' --help | head -1",
                           shell=True, capture_output=True, text=True, timeout=60)
    assert piped.stdout.startswith("usage: seqmamba") and "Traceback" not in piped.stderr


@pytest.mark.parametrize("argv", [["data", "make-digits", "--out"], ["data", "make-piano", "--out"],
                                  ["data", "fetch", "hg38", "--out"], ["data", "apes", "--out"]])
def test_output_folders_naming_a_file(tmp_path, capsys, argv):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert main([*argv, str(file)]) == 2
    assert "names an existing file" in error_line(capsys, " ".join(argv[:2])) and file.read_text() == "mine"


def test_manifest_urls_and_names_are_restricted(tmp_path):
    from seqmamba.data.fetch import load_manifest
    from seqmamba.errors import InputError

    for entry, problem in [("url: file:///etc/passwd\n    filename: x.fa", "must start with https://"),
                           ("url: https://example.org/SHA256SUMS\n    filename: SHA256SUMS", "reserved")]:
        manifest = tmp_path / "m.yaml"
        manifest.write_text(f"name: m\nfiles:\n  - {entry}\n")
        with pytest.raises(InputError, match=problem):
            load_manifest(str(manifest))
