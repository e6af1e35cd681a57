"""`seqmamba pretrain` end to end on a real genome, resume, and clear errors for bad input."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from seqmamba.cli import main

LAMBDA = Path(__file__).parents[1] / "data" / "genomes" / "lambda_phage.fa"
TINY = ["--model.backbone.d_model", "16", "--model.backbone.n_layer", "1", "--model.warmup_steps", "2",
        "--data.seq_len", "64", "--data.batch_size", "4", "--data.samples_per_epoch", "16",
        "--data.val_max_windows", "4", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]


@pytest.fixture()
def genome(tmp_path):
    shutil.copy(LAMBDA, tmp_path / "lambda.fa")  # the .fai index lands beside the copy
    return tmp_path / "lambda.fa"


def pretrain(run_dir, fasta, *extra):
    return main(["pretrain", "--data.fasta", str(fasta), "--out", str(run_dir), *TINY, *extra])


def test_pretrain_writes_a_complete_run_and_resumes(tmp_path, genome, capsys):
    run_dir = tmp_path / "run"
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "1", "--data.warmup_seq_lens", "[32]") == 0
    out = capsys.readouterr().out
    assert "held-out perplexity" in out and "unigram baseline" in out
    for name in ("config.yaml", "checkpoints/last.ckpt", "logs/metrics.csv", "loss.png", "summary.json"):
        assert (run_dir / name).is_file(), name
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["backbone"]["d_model"] == 16 and config["out"] == str(run_dir) and config["seed"] == 0
    assert "run_dir" not in config and "seed_everything" not in config  # the old names stay out of new files
    first = json.loads((run_dir / "summary.json").read_text())
    assert first["steps"] == 4 and 1 < first["val_ppl"] < 16
    assert pretrain(run_dir, genome, "--trainer.max_epochs", "2", "--data.warmup_seq_lens", "[32]",
                    "--resume", "last") == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 8  # continued, not restarted
    assert (run_dir / "logs" / "metrics.csv").is_file() and (run_dir / "logs-1" / "metrics.csv").is_file()
    assert (run_dir / "config.yaml").is_file() and (run_dir / "config-resumed.yaml").is_file()


@pytest.mark.parametrize("content, problem", [
    ("", "empty"),
    ("ACGTACGT\nACGT\n", "header"),
])
def test_bad_fasta_stops_with_one_clear_line(tmp_path, capsys, content, problem):
    bad = tmp_path / "bad.fa"
    bad.write_text(content)
    assert pretrain(tmp_path / "run", bad, "--trainer.max_epochs", "1") == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("seqmamba pretrain: error")]
    assert len(errors) == 1 and str(bad) in errors[0] and problem in errors[0].lower()


def test_command_line_user_sees_one_line_and_exit_status_2(tmp_path):
    """As a user runs it, in its own process: no traceback, and nothing but the error and Lightning's info."""
    bad = tmp_path / "empty.fa"
    bad.write_text("")
    done = subprocess.run([sys.executable, "-m", "seqmamba.cli", "pretrain", "--data.fasta", str(bad),
                           "--out", str(tmp_path / "run"), *TINY], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"seqmamba pretrain: error: {bad}: empty file; expected a FASTA genome (plain or bgzip-compressed)"


def test_bed_with_unknown_contig_names_file_and_line(tmp_path, genome, capsys):
    bed = tmp_path / "regions.bed"
    bed.write_text("chrX\t0\t1000\ttrain\n")
    assert pretrain(tmp_path / "run", genome, "--data.split", "bed", "--data.bed", str(bed),
                    "--trainer.max_epochs", "1") == 2
    err = capsys.readouterr().err
    assert str(bed) in err and "chrX" in err and "line 1" in err


def test_window_longer_than_every_interval(tmp_path, genome, capsys):
    assert pretrain(tmp_path / "run", genome, "--data.seq_len", "100000", "--trainer.max_epochs", "1") == 2
    err = capsys.readouterr().err
    assert str(genome) in err and "100001" in err


def free_port() -> int:
    """A port no other process holds now: a fixed MASTER_PORT clashes with other tests and jobs on the machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_ddp_two_processes_on_cpu(tmp_path, genome):
    """Lightning's own DDP launcher (gloo on CPU here, NCCL on GPUs): both ranks train, rank 0 reports."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    env = {k: v for k, v in env.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "GLOBAL_RANK")}
    done = subprocess.run([sys.executable, "-m", "seqmamba.cli", "pretrain", "--data.fasta", str(genome),
                           "--out", str(run_dir), *TINY, "--trainer.max_epochs", "1", "--verbose", "true",
                           "--trainer.devices", "2", "--trainer.strategy", "ddp"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MEMBER: 2/2" in done.stderr  # both ranks joined the process group
    assert done.stdout.count("held-out perplexity") == 1  # only rank 0 reports
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 2  # 16 windows / (4 per rank * 2 ranks)
