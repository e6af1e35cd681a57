"""The one checkpoint loader: each kind comes back in eval mode; wrong kinds, edited settings, other shapes and
NaN weights are refused in one line naming the file; checkpoints written with pickled configs still load."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from seqmamba.cli import main
from seqmamba.errors import InputError
from seqmamba.metrics.mel_features import MelSettings
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.nn.lm import MambaLMConfig, MambaLMHeadModel
from seqmamba.nn.resnext import ResNeXt, ResNeXtConfig
from seqmamba.nn.sashimi import Sashimi, SashimiConfig
from seqmamba.training.checkpoints import load_checkpoint
from seqmamba.training.model_loading import load_model

LM = MambaLMConfig(d_model=16, n_layer=1)
UNET = SashimiConfig(d_model=8, n_layers=1, pool=[2], outer="mamba", center="mamba", vocab_size=16)
RESNEXT = ResNeXtConfig(depth=11, cardinality=2, base_width=4, widen_factor=1, stem_width=8)


def save(path, module, prefix, settings, data):
    """A checkpoint as the runner writes it: the task's state_dict, its settings and its data's."""
    torch.save({"state_dict": {f"{prefix}{k}": v for k, v in module.state_dict().items()},
                "hyper_parameters": settings, "datamodule_hyper_parameters": data}, path)
    return path


def species(path, settings=None, data=None, weights=None):
    model = SequenceClassifier(LM, 2)
    if weights is not None:
        weights(model)
    return save(path, model, "classifier.", {"backbone": asdict(LM), "pooling": "mean", "classes": ["a", "b"],
                                             **(settings or {})}, {"seq_len": 64, **(data or {})})


def lm(path, config=LM):
    return save(path, MambaLMHeadModel(config), "model.", {"backbone": config, "lr": 0.008}, {"seq_len": 64})


def unet(path, data):
    return save(path, Sashimi(UNET), "model.", {"unet": asdict(UNET)}, data)


def test_each_kind_comes_back_in_eval_mode_with_its_settings(tmp_path):
    loaded = load_model(species(tmp_path / "s.ckpt"), "species")
    assert isinstance(loaded.module, SequenceClassifier) and not loaded.module.training
    assert loaded.settings["classes"] == ["a", "b"] and loaded.data["seq_len"] == 64
    loaded = load_model(unet(tmp_path / "u.ckpt", {"bits": 4}), "audio")
    assert isinstance(loaded.module, Sashimi) and loaded.data == {"bits": 4, "quantization": "mu-law"}
    digits = save(tmp_path / "d.ckpt", ResNeXt(RESNEXT), "classifier.",
                  {"resnext": asdict(RESNEXT), "features": {"n_mels": 32}}, {"root": "digits"})
    assert isinstance(load_model(digits, "digits").module, ResNeXt)


def test_checkpoint_with_pickled_config_dataclass_still_loads(tmp_path):
    """Checkpoints written before plain data held MambaLMConfig itself: read weights-only, as a dict."""
    path = lm(tmp_path / "old.ckpt")
    assert isinstance(load_checkpoint(path)["hyper_parameters"]["backbone"], dict)
    loaded = load_model(path, "lm")
    assert loaded.module.config == LM and loaded.settings["backbone"] == asdict(LM)
    digits = save(tmp_path / "old-digits.ckpt", ResNeXt(RESNEXT), "classifier.",
                  {"resnext": RESNEXT, "features": MelSettings(n_mels=16)}, {"features": MelSettings()})
    loaded = load_model(digits, "digits")
    assert loaded.settings["features"] == asdict(MelSettings(n_mels=16)) and loaded.module.config == RESNEXT
    assert loaded.data["features"] == asdict(MelSettings())


def test_a_language_model_given_to_classify_is_one_line(tmp_path, capsys):
    reads = tmp_path / "r.fa"
    reads.write_text(">r\nACGT\n")
    path = lm(tmp_path / "lm.ckpt")
    assert main(["classify", "--ckpt", str(path), "--out", str(tmp_path / "p.tsv"), str(reads)]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and str(path) in errors[0] and "DNA language model" in errors[0]
    assert "species classifier" in errors[0] and not (tmp_path / "p.tsv").exists()


def nan_weights(model):
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")


@pytest.mark.parametrize("make, kind, problem", [
    (lambda p: species(p, weights=nan_weights), "species", "NaN or infinite weights (e.g. classifier.head.weight)"),
    (lambda p: species(p, settings={"backbone": asdict(MambaLMConfig(d_model=32, n_layer=1))}), "species",
     "do not fit its recorded settings"),
    (lambda p: species(p, settings={"classes": ["a", "b", "c"]}), "species", "head.weight"),
    (lambda p: species(p, settings={"pooling": "max"}), "species", "pooling"),
    (lambda p: species(p, data={"seq_len": 0}), "species", "seq_len"),
    (lambda p: unet(p, {"bits": 8}), "audio", "bits 8 do not match the U-Net's 16 output codes"),
    (lambda p: unet(p, {"bits": 4, "quantization": "alaw"}), "audio", "quantization"),
    (lambda p: species(p, settings={"backbone": {**asdict(LM), "d_model": -4}}), "species", "d_model"),
    (lambda p: species(p), "audio", "is a species classifier (`seqmamba finetune`), not an audio U-Net"),
    (lambda p: save(p, torch.nn.Linear(2, 2), "", {"lr": 1}, {}), "lm", "holds no model settings"),
])
def test_checkpoints_that_cannot_be_right_are_refused_naming_the_file(tmp_path, make, kind, problem):
    path = make(tmp_path / "m.ckpt")
    with pytest.raises(InputError) as error:
        load_model(path, kind)
    assert error.value.path == str(path) and problem in error.value.problem
    assert "\n" not in str(error.value)
