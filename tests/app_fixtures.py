"""One runs folder with a tiny finished run of each training command, and a stopped one: what the app tests look at."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from species_fixtures import make_species

from seqmamba.cli import main
from seqmamba.data.audio_datasets import SC09_LABELS
from seqmamba.data.audio_io import write_wav

CPU = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
       "--trainer.enable_model_summary", "false"]
TINY_LM = ["--model.backbone.d_model", "16", "--model.backbone.n_layer", "1", "--model.warmup_steps", "2",
           "--data.seq_len", "64", "--data.batch_size", "8", *CPU]
TINY_UNET = ["--model.unet.d_model", "8", "--model.unet.n_layers", "1", "--model.unet.pool", "[4, 4]",
             "--model.unet.d_state", "4", "--model.unet.outer", "mamba", "--model.unet.center", "complex-mamba",
             "--data.seq_len", "256", "--data.batch_size", "4", "--data.num_workers", "0"]
TINY_RESNEXT = ["--model.resnext.depth", "11", "--model.resnext.cardinality", "2", "--model.resnext.base_width", "4",
                "--model.resnext.widen_factor", "1", "--model.resnext.stem_width", "8", "--model.warmup_steps", "1",
                "--data.batch_size", "10", "--data.num_workers", "0"]


def tone_digits(root, samples: int = 1600):
    """Ten labels x 3 tone clips (SC09 layout); the last two of each label held out, one valid, one test."""
    t = np.arange(samples) / 16000
    for k, label in enumerate(SC09_LABELS):
        for j in range(3):
            write_wav(root / label / f"v{j}_nohash_0.wav", 0.5 * np.sin(2 * np.pi * (300 + 40 * k + 7 * j) * t))
    (root / "validation_list.txt").write_text("".join(f"{label}/v1_nohash_0.wav\n" for label in SC09_LABELS))
    (root / "testing_list.txt").write_text("".join(f"{label}/v2_nohash_0.wav\n" for label in SC09_LABELS))
    return root


@pytest.fixture(scope="session")
def app_runs(tmp_path_factory):
    """RUNS/{pretrain, finetune, audio, classifier} finished, RUNS/stopped stopped; plus the species manifest."""
    root = tmp_path_factory.mktemp("app")
    runs, data = root / "runs", root / "data"
    data.mkdir()
    species = make_species(data, n_species=2, n_records=10, record_len=300, substitution_rate=0.4)
    digits = tone_digits(data / "digits")
    assert main(["pretrain", "--data.fasta", "data/genomes/lambda_phage.fa", "--run_dir", str(runs / "pretrain"),
                 *TINY_LM, "--trainer.max_steps", "4", "--data.samples_per_epoch", "16"]) == 0
    assert main(["finetune", "--data.manifest", str(species), "--run_dir", str(runs / "finetune"), *TINY_LM,
                 "--data.samples_per_epoch", "48", "--data.val_windows", "2", "--data.test_windows", "4",
                 "--trainer.max_epochs", "1"]) == 0
    assert main(["audio", "train", "--config", "configs/audio/sc09-mamba-6m.yaml", "--data.root", str(digits),
                 "--run_dir", str(runs / "audio"), *TINY_UNET, *CPU, "--data.samples_per_epoch", "8",
                 "--trainer.max_steps", "2"]) == 0
    assert main(["sc09", "train-classifier", "--data", str(digits), "--run_dir", str(runs / "classifier"),
                 *TINY_RESNEXT, *CPU, "--trainer.max_epochs", "1"]) == 0
    stopped = runs / "stopped"
    (stopped / "logs").mkdir(parents=True)
    shutil.copy(runs / "pretrain" / "config.yaml", stopped / "config.yaml")
    shutil.copy(runs / "pretrain" / "logs" / "metrics.csv", stopped / "logs" / "metrics.csv")
    os.utime(stopped / "logs" / "metrics.csv", (0, 0))
    return runs, species
