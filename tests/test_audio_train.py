"""`seqmamba audio train | generate` end to end on a tiny SC09-layout folder of tones, and their bad input."""

import json

import numpy as np
import pytest
import soundfile
import torch
from app_fixtures import tone_digits

from seqmamba.cli import main as cli
from seqmamba.data.audio_io import write_wav
from seqmamba.tasks.optim import warmup_cosine
from seqmamba.training.checkpoints import load_checkpoint
from seqmamba.training.summaries import read_metrics

TINY_UNET = ["--model.unet.d_model", "8", "--model.unet.n_layers", "1", "--model.unet.pool", "[4, 4]",
             "--model.unet.d_state", "4", "--model.unet.outer", "mamba", "--model.unet.center", "complex-mamba"]
TINY_DATA = ["--data.seq_len", "256", "--data.batch_size", "4", "--data.num_workers", "0"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Ten labels x 3 tone clips of 256 samples; the last clip of each label held out (one valid, one test)."""
    return tone_digits(tmp_path_factory.mktemp("sc09"), samples=256)


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "audio"
    argv = ["audio", "train", "--config", "configs/audio/sc09-mamba-6m.yaml", "--data.root", str(digits),
            "--out", str(run_dir), *TINY_UNET, *TINY_DATA, "--data.samples_per_epoch", "8",
            "--trainer.max_steps", "4", "--trainer.accelerator", "cpu"]
    assert cli(argv) == 0
    return run_dir


def test_train_leaves_a_run_with_bits_per_sample(trained, capsys):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["steps"] == 4
    assert 0 < summary["parameters"] < 200_000
    assert 0 < summary["val_bits_per_sample"] < 8.5 and 0 < summary["test_bits_per_sample"] < 8.5
    assert (trained / "checkpoints" / "last.ckpt").is_file() and (trained / "config.yaml").is_file()


def test_heldout_nll_is_logged_during_training_and_best_ckpt_is_chosen_on_it(trained):
    series = read_metrics(sorted(trained.glob("logs*/metrics.csv")))
    assert len({step for step, _ in series["val/bits_per_sample"]}) >= 2  # every epoch (2 steps), not only the end
    best = load_checkpoint(trained / "checkpoints" / "best.ckpt")
    monitor = next(s for k, s in best["callbacks"].items() if k.startswith("ModelCheckpoint"))
    assert monitor["monitor"] == "val/loss"
    assert float(monitor["best_model_score"]) == pytest.approx(min(v for _, v in series["val/loss"]), rel=1e-5)
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["uniform_bits_per_sample"] == 8.0
    assert summary["no_better_than_chance"] == (summary["test_bits_per_sample"] >= 8.0)


def test_generate_says_which_checkpoint_it_samples_from(trained, tmp_path, capsys):
    ckpt = trained / "checkpoints" / "best.ckpt"
    assert cli(["audio", "generate", "--ckpt", str(ckpt), "--n", "1", "--seconds", "0.002", "-o",
                str(tmp_path / "g"), "--device", "cpu"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("sampling from"))
    assert str(ckpt) in line and "step " in line and "held-out " in line and "bits per sample" in line


def test_generate_writes_playable_wavs_in_ascending_likelihood(trained, tmp_path):
    out = tmp_path / "samples"
    argv = ["audio", "generate", "--ckpt", str(trained / "checkpoints" / "last.ckpt"), "--n", "3",
            "--seconds", "0.005", "--batch_size", "2", "--out", str(out), "--device", "cpu"]
    assert cli(argv) == 0
    rows = [line.split("\t") for line in (out / "samples.tsv").read_text().splitlines()]
    assert rows[0] == ["file", "log_likelihood"] and len(rows) == 4
    likelihoods = [float(ll) for _, ll in rows[1:]]
    assert likelihoods == sorted(likelihoods) and all(ll < 0 for ll in likelihoods)
    for name, _ in rows[1:]:
        wave, rate = soundfile.read(out / name)
        assert rate == 16000 and wave.shape == (80,) and np.abs(wave).max() <= 1
    assert (out / "spectrograms.png").stat().st_size > 0
    assert cli(argv) == 2  # a folder of earlier clips is never overwritten


def test_generate_continues_a_prompt(trained, tmp_path):
    prompt = write_wav(tmp_path / "prompt.wav", 0.3 * np.sin(np.linspace(0, 20, 40)))
    out = tmp_path / "continued"
    assert cli(["audio", "generate", "--ckpt", str(trained / "checkpoints" / "last.ckpt"), "--n", "2",
                "--seconds", "0.005", "--prompt", str(prompt), "--out", str(out), "--temperature", "0"]) == 0
    waves = [soundfile.read(out / f"sample_{k}.wav")[0] for k in range(2)]
    assert waves[0].shape == (80,)
    np.testing.assert_allclose(waves[0], waves[1])  # greedy: both continuations the same
    assert np.corrcoef(waves[0][:40], np.sin(np.linspace(0, 20, 40)))[0, 1] > 0.9  # the prompt leads the clip


def test_bad_input_is_one_line(digits, trained, tmp_path, capsys):
    run = ["audio", "train", "--data.root", str(digits), "--out", str(tmp_path / "r"), *TINY_UNET, *TINY_DATA]
    assert cli([*run, "--data.bits", "4"]) == 2
    assert "vocab_size" in capsys.readouterr().err
    assert cli([*run, "--model.unet.outer", "attention+mlp"]) == 2
    assert "center only" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written for a run that could not start
    not_audio = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, not_audio)
    assert cli(["audio", "generate", "--ckpt", str(not_audio), "--out", str(tmp_path / "g")]) == 2
    assert "audio train" in capsys.readouterr().err
    ckpt = str(trained / "checkpoints" / "last.ckpt")
    assert cli(["audio", "generate", "--ckpt", ckpt, "--top_p", "0", "--out", str(tmp_path / "g")]) == 2
    assert "--top_p" in capsys.readouterr().err


def test_schedule_warms_up_a_tenth_then_decays_by_cosine():
    factor = warmup_cosine(warmup_steps=10, total_steps=100, min_lr_ratio=0.0)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(55) == pytest.approx(0.5) and factor(100) == pytest.approx(0.0)
