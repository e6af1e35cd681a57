"""Checkpoint -> eval-mode model: the one loader behind classify, audio generate, sc09 score and model.init_from.

A checkpoint holds plain data: the task's settings (`hyper_parameters`, model configs as dicts), the data's
settings (`datamodule_hyper_parameters`) and the weights. `load_model` rebuilds the module a kind of
checkpoint describes and refuses, in one line naming the file, a checkpoint of another kind, settings that
cannot be right, weights of another shape, and NaN or infinite weights: as resuming a run does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn

from seqmamba.data.quantize import QUANTIZATIONS
from seqmamba.errors import InputError
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.nn.lm import MambaLMConfig, MambaLMHeadModel
from seqmamba.nn.resnext import ResNeXt, ResNeXtConfig
from seqmamba.nn.sashimi import Sashimi, SashimiConfig
from seqmamba.training.checkpoints import load_checkpoint, state_dict_mismatch

Kind = Literal["species", "lm", "audio", "digits"]
SHAPE_FIELDS = ("d_model", "n_layer", "vocab_size", "d_state", "d_conv", "expand", "complex_ssm")  # of a backbone


@dataclass(frozen=True)
class KindSpec:
    """How one kind of checkpoint is recognised, named to a user, and built."""

    what: str  # what it is and which command writes it, for errors
    prefix: str  # the module's weights in the task's state_dict
    build: Callable[[dict, dict], nn.Module]  # (task settings, data settings) -> the module, freshly initialised
    check: Callable[[dict, dict], None]  # settings that cannot be right -> ValueError
    data_defaults: dict = field(default_factory=dict)  # data settings older checkpoints may lack


@dataclass
class LoadedModel:
    """An eval-mode module with the settings recorded beside its weights."""

    module: nn.Module
    kind: Kind
    settings: dict  # the task's hyperparameters (configs as dicts)
    data: dict  # the data module's hyperparameters (seq_len, bits, root, ...)
    task_state: dict = field(default_factory=dict)  # the task's own tensors beside the module (e.g. a temperature)
    step: int | None = None  # the optimizer step its weights were saved at
    heldout_loss: float | None = None  # val/loss at its last validation, as the run's checkpoint callback recorded it


def _species(settings: dict, data: dict) -> nn.Module:
    return SequenceClassifier(MambaLMConfig(**settings["backbone"]), len(settings["classes"]),
                              settings.get("pooling", "mean"))


def _lm(settings: dict, data: dict) -> nn.Module:
    return MambaLMHeadModel(MambaLMConfig(**settings["backbone"]))


def _unet(settings: dict, data: dict) -> nn.Module:
    return Sashimi(SashimiConfig(**settings["unet"]))


def _digits(settings: dict, data: dict) -> nn.Module:
    return ResNeXt(ResNeXtConfig(**settings["resnext"]))


def _check_species(settings: dict, data: dict) -> None:
    classes, seq_len = settings.get("classes"), data.get("seq_len")
    if not isinstance(classes, list) or not classes or len(set(map(str, classes))) != len(classes):
        raise ValueError(f"classes {classes!r} must be a list of distinct names")
    if not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"data seq_len {seq_len!r} must be a positive whole number")


def _check_audio(settings: dict, data: dict) -> None:
    bits, quantization = data["bits"], data["quantization"]
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"data quantization {quantization!r} must be one of {', '.join(QUANTIZATIONS)}")
    vocab_size = settings["unet"].get("vocab_size", 256)
    if not isinstance(bits, int) or not 1 <= bits <= 16 or 1 << bits != vocab_size:
        raise ValueError(f"data bits {bits!r} do not match the U-Net's {vocab_size} output codes (2**bits)")


def _check_digits(settings: dict, data: dict) -> None:
    from seqmamba.metrics.mel_features import MelSettings  # here: it loads librosa, which only sc09 needs

    MelSettings(**settings["features"])


def _no_check(settings: dict, data: dict) -> None:
    return None


KINDS: dict[str, KindSpec] = {
    "species": KindSpec("a species classifier (`seqmamba finetune`)", "classifier.", _species, _check_species),
    "lm": KindSpec("a DNA language model (`seqmamba pretrain`)", "model.", _lm, _no_check),
    "audio": KindSpec("an audio U-Net (`seqmamba audio train`)", "model.", _unet, _check_audio,
                      {"quantization": "mu-law", "bits": 8}),
    "digits": KindSpec("an SC09 digit classifier (`seqmamba sc09 train-classifier`)", "classifier.", _digits,
                       _check_digits),
}


def kind_of(settings: dict) -> Kind | None:
    """Which kind a checkpoint's task settings describe (None: not one of ours)."""
    if "unet" in settings:
        return "audio"
    if "resnext" in settings and "features" in settings:
        return "digits"
    if "backbone" in settings:
        return "species" if "pooling" in settings else "lm"
    return None


def load_model(path: str | os.PathLike, kind: Kind | tuple[Kind, ...],
               device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild a checkpoint's module in eval mode on `device`; InputError naming the file when it cannot be right."""
    wanted = (kind,) if isinstance(kind, str) else kind
    checkpoint = load_checkpoint(path)
    settings = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}
    data = {k: v for k, v in checkpoint.get("datamodule_hyper_parameters", {}).items() if not k.startswith("_")}
    found = kind_of(settings)
    if found not in wanted:
        is_what = f"is {KINDS[found].what}" if found else "holds no model settings seqmamba wrote"
        raise InputError(path, f"{is_what}, not {' or '.join(KINDS[k].what for k in wanted)}; give a checkpoint "
                               f"of that command (RUN_DIR/checkpoints/last.ckpt)")
    spec = KINDS[found]
    data = {**spec.data_defaults, **data}
    try:
        spec.check(settings, data)
        module = spec.build(settings, data)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise InputError(path, f"its recorded settings cannot be right ({error}); was it edited? Use the "
                               f"checkpoint its run wrote") from None
    weights = {k.removeprefix(spec.prefix): v for k, v in checkpoint["state_dict"].items() if k.startswith(spec.prefix)}
    if mismatch := state_dict_mismatch(weights, module):
        raise InputError(path, f"its weights do not fit its recorded settings: {mismatch}; was it edited? Use the "
                               f"checkpoint its run wrote")
    broken = next((k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:
        raise InputError(path, f"holds NaN or infinite weights (e.g. {spec.prefix}{broken}): the run diverged or the "
                               f"file is damaged; use an earlier checkpoint (best.ckpt) or train again")
    module.load_state_dict(weights)
    task_state = {k: v for k, v in checkpoint["state_dict"].items() if "." not in k}
    return LoadedModel(module.to(device).eval(), found, settings, data, task_state, checkpoint.get("global_step"),
                       heldout_loss(checkpoint))


def heldout_loss(checkpoint: dict) -> float | None:
    """val/loss at the checkpoint's last validation, from its ModelCheckpoint state (None: never validated)."""
    scores = [state.get("current_score") for name, state in checkpoint.get("callbacks", {}).items()
              if name.startswith("ModelCheckpoint") and isinstance(state, dict) and state.get("monitor") == "val/loss"]
    return next((float(s) for s in scores if s is not None), None)


def pretrained_backbone(path: str | os.PathLike, config: object) -> dict[str, torch.Tensor]:
    """model.init_from: the backbone weights of a pretrain (or finetune) checkpoint, refused when they cannot fit."""
    loaded = load_model(path, ("lm", "species"))
    theirs, ours = loaded.module.backbone.config, config
    differ = [f"{key} {getattr(theirs, key)} there, {getattr(ours, key)} here" for key in SHAPE_FIELDS
              if getattr(theirs, key) != getattr(ours, key)]
    if differ:
        raise InputError(path, f"the pretrained backbone does not fit this model: {'; '.join(differ)}; set "
                               f"model.backbone to the pretraining run's (its config.yaml)")
    return loaded.module.backbone.state_dict()
