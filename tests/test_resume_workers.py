"""Resume is exact with DataLoader workers, as the presets run: every training command stopped mid-epoch by
SIGTERM, SIGINT or kill -9 and resumed ends at the uninterrupted run's weights; a signal during the final
evaluation stops it after the batch in flight, with the resume line, and the resume redoes the evaluation."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from species_fixtures import make_species
from test_pretrain_cli import LAMBDA

from seqmamba.cli import main
from seqmamba.data.audio_datasets import SC09_LABELS
from seqmamba.data.audio_io import write_wav
from seqmamba.data.digits import make_digits
from seqmamba.tasks.dna_data import DNADataModule
from seqmamba.tasks.language_model import LanguageModelTask
from seqmamba.training.checkpoints import load_checkpoint
from seqmamba.training.runner import RunCLI, parse

EPOCHS = 2  # stopped in the second: a resumed epoch other than the first is where workers used to go wrong
COMMON = ["--data.num_workers", "2", "--trainer.max_epochs", str(EPOCHS), "--checkpoint_every_n_steps", "1",
          "--trainer.num_sanity_val_steps", "0", "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches",
          "1", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false"]
TINY_UNET = ["--config", "configs/audio/sc09-mamba-6m.yaml", "--model.unet.d_model", "8", "--model.unet.n_layers", "1",
             "--model.unet.pool", "[4, 4]", "--model.unet.d_state", "4", "--model.unet.outer", "mamba",
             "--model.unet.center", "complex-mamba", "--trainer.max_steps", "-1", "--data.seq_len", "256"]


def write_tones(root: Path, per_label: int, held_out: int) -> Path:
    """An SC09-layout folder of tones: per digit, `held_out` valid and `held_out` test clips, the rest train."""
    t = np.arange(256) / 16000
    for k, label in enumerate(SC09_LABELS):
        for j in range(per_label):
            write_wav(root / label / f"v{j}_nohash_0.wav", 0.5 * np.sin(2 * np.pi * (300 + 40 * k + 7 * j) * t))
    for name, first in (("validation_list.txt", 0), ("testing_list.txt", held_out)):
        (root / name).write_text("".join(f"{label}/v{j}_nohash_0.wav\n" for label in SC09_LABELS
                                         for j in range(first, first + held_out)))
    return root


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, list[str]]:
    """Per command, its words and the settings of a tiny run of EPOCHS epochs of 6 (sc09: 5) steps.

    pretrain draws its training batches as finetune does (windows seeded per item, in order).
    """
    root = tmp_path_factory.mktemp("inputs")
    manifest = make_species(root, n_species=3, n_records=20, record_len=300, substitution_rate=0.4)
    digits = root / "digits"
    make_digits(digits, voices=10, per_voice=1, workers=2)  # 80 train, 10 valid, 10 test clips
    return {
        "finetune": ["finetune", "--data.manifest", str(manifest), "--model.backbone.d_model", "16",
                     "--model.backbone.n_layer", "1", "--model.warmup_steps", "2", "--data.seq_len", "64",
                     "--data.batch_size", "8", "--data.samples_per_epoch", "48", "--data.val_windows", "2",
                     "--data.test_windows", "4"],
        "audio train": ["audio", "train", "--data.root", str(write_tones(root / "tones", 4, 1)), *TINY_UNET,
                        "--data.batch_size", "4", "--data.samples_per_epoch", "24"],
        "sc09 train-classifier": ["sc09", "train-classifier", "--data.root", str(digits), "--model.resnext.depth", "11",
                                  "--model.resnext.cardinality", "2", "--model.resnext.base_width", "4",
                                  "--model.resnext.widen_factor", "1", "--model.resnext.stem_width", "8",
                                  "--model.warmup_steps", "1", "--data.batch_size", "16"],
    }


def start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seqmamba.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def run(argv: list[str]) -> None:
    """A whole command in a process of its own, as a user runs it (a run in this process would inherit the
    thread count that an earlier one's kernels left, and with it other float rounding)."""
    process = start(argv)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]


@pytest.fixture(scope="module")
def uninterrupted(inputs, tmp_path_factory) -> dict[str, dict]:
    """Each command's last.ckpt after an uninterrupted run, made on first use."""
    done: dict[str, dict] = {}

    def weights(command: str) -> dict:
        if command not in done:
            run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
            run([*inputs[command], "--out", str(run_dir), *COMMON])
            done[command] = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
        return done[command]
    return weights


def wait_for_step(last: Path, process: subprocess.Popen, minimum: int) -> int:
    """Wait until last.ckpt holds at least `minimum` steps; its step."""
    seen, deadline = None, time.monotonic() + 600
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp is not None and stamp != seen:
            seen, step = stamp, load_checkpoint(last)["global_step"]
            if step >= minimum:
                return step
        time.sleep(0.05)


def stop_line(command: str, signum: int, run_dir: Path, step: int) -> str:
    name = signal.Signals(signum).name
    return (f"seqmamba {command}: stopped: {name} received: saved {run_dir}/checkpoints/last.ckpt at step "
            f"{step}; continue with `seqmamba {command} --config {run_dir}/config.yaml --resume last`")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["finetune", "audio train", "sc09 train-classifier"])
def test_stopped_with_workers_resumes_to_the_uninterrupted_weights(tmp_path, inputs, uninterrupted, command, signum):
    expected = uninterrupted(command)
    steps_per_epoch = expected["global_step"] // EPOCHS
    run_dir = tmp_path / "run"
    process = start([*inputs[command], "--out", str(run_dir), *COMMON])
    wait_for_step(run_dir / "checkpoints" / "last.ckpt", process, steps_per_epoch + 1)  # into the second epoch
    process.send_signal(signum)
    out, err = process.communicate(timeout=600)
    assert process.returncode in (128 + signum, -signum), err[-2000:]
    stopped = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert steps_per_epoch < stopped["global_step"] < expected["global_step"]
    if signum != signal.SIGKILL:
        assert "Traceback" not in err and err.strip().splitlines()[-1] == stop_line(command, signum, run_dir,
                                                                                    stopped["global_step"])
    run([*command.split(), "--config", str(run_dir / "config.yaml"), "--resume", "last"])
    resumed = load_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == expected["global_step"]
    assert resumed["state_dict"].keys() == expected["state_dict"].keys()
    for name, tensor in expected["state_dict"].items():
        assert torch.allclose(resumed["state_dict"][name].double(), tensor.double(), rtol=0, atol=1e-6), name


def test_a_signal_during_the_final_evaluation_stops_it_with_the_resume_line(tmp_path):
    """Training (2 steps) never validates; the final pass over 100 validation and 100 test clips, one per batch,
    is where SIGTERM arrives: the run stops after the batch in flight, and the resume evaluates (one batch each)."""
    run_dir = tmp_path / "run"
    argv = ["audio", "train", "--data.root", str(write_tones(tmp_path / "tones", 21, 10)), *TINY_UNET,
            "--data.batch_size", "1", "--data.samples_per_epoch", "2", "--trainer.max_epochs", "1",
            "--trainer.check_val_every_n_epoch", "2", "--trainer.num_sanity_val_steps", "0",
            "--trainer.accelerator", "cpu", "--out", str(run_dir)]
    process = start(argv)
    shown = b""
    while b"Validation DataLoader" not in shown:  # the progress bar (stdout): the final evaluation has begun
        chunk = os.read(process.stdout.fileno(), 4096)
        assert chunk, shown[-2000:]
        shown += chunk
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1] == stop_line("audio train", signal.SIGTERM,
                                                                                run_dir, 2)
    assert "bits per sample" not in out and not (run_dir / "summary.json").exists()  # stopped before the end
    assert main(["audio", "train", "--config", str(run_dir / "config.yaml"), "--resume", "last",
                 "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["val_bits_per_sample"] > 0


def test_a_limit_of_one_batch_means_one_batch(tmp_path):
    """The parser reads `1` as 1.0, which Lightning would take for every batch."""
    argv = ["--data.fasta", str(LAMBDA), "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "0.5",
            "--out", str(tmp_path / "run"), "--trainer.accelerator", "cpu"]
    trainer = parse(RunCLI, LanguageModelTask, DNADataModule, argv, None).trainer
    assert trainer.limit_val_batches == 1 and isinstance(trainer.limit_val_batches, int)
    assert trainer.limit_test_batches == 0.5 and trainer.limit_train_batches == 1.0
