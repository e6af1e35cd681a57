"""Checkpoint files: written atomically, read back weights-only from local paths, with errors a user can act on.

Every checkpoint seqmamba reads goes through `load_checkpoint`: `torch.load(weights_only=True)` runs no code
from the file, so a crafted checkpoint cannot execute anything. A checkpoint holds plain data only (settings
as dicts, tensors): writes turn config dataclasses into dicts. Checkpoints written before that hold pickled
config dataclasses; those few class names are read as plain records and come back as dicts too. Writes go to
a temporary file that is renamed over the target only once complete, so a full disk or a kill never leaves
a truncated checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from seqmamba.errors import InputError, RunFailed

# Config dataclasses that checkpoints written before plain-data checkpoints hold pickled, by import path.
LEGACY_CONFIG_CLASSES = ("seqmamba.nn.lm.MambaLMConfig", "seqmamba.nn.sashimi.SashimiConfig",
                         "seqmamba.nn.resnext.ResNeXtConfig", "seqmamba.metrics.mel_features.MelSettings")


class _LegacyConfig:
    """What an old checkpoint's pickled config becomes on reading: a bare record of its fields, nothing run."""


def plain_data(value: Any) -> Any:
    """Config dataclasses (and old checkpoints' records of them) as dicts, through dicts, lists and tuples."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain_data(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, _LegacyConfig):
        return {key: plain_data(item) for key, item in vars(value).items()}
    if isinstance(value, dict):
        return type(value)((key, plain_data(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(item) for item in value)
    return value


def is_intact(path: Path) -> bool:
    """Cheap check that a file is a complete torch zip archive (a truncated one has no central directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def intact_checkpoints(directory: Path) -> list[Path]:
    """The complete checkpoints in a folder, newest first: what to point --resume at instead."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.glob("*.ckpt") if p.is_file() and is_intact(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _alternatives(path: Path) -> str:
    others = [str(p) for p in intact_checkpoints(path.parent) if p.resolve() != path.resolve()]
    return f"intact checkpoints there: {', '.join(others)}" if others else "no intact checkpoint is in that folder"


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Read a local checkpoint without running code from it; InputError naming the file when it is not one."""
    text = str(path)
    if "://" in text:
        raise InputError(text, "only local checkpoint files are loaded (a remote file could run code when loaded); "
                               "download it, check where it came from, and pass the local path")
    path = Path(text)
    if not path.exists():
        raise InputError(path, f"no such checkpoint; {_alternatives(path)}")
    if not path.is_file():
        raise InputError(path, "is a folder, not a checkpoint file; give RUN_DIR/checkpoints/last.ckpt or best.ckpt")
    if not is_intact(path):
        raise InputError(path, f"not a complete checkpoint (truncated, or not a checkpoint at all); {_alternatives(path)}")
    try:
        with torch.serialization.safe_globals([(_LegacyConfig, name) for name in LEGACY_CONFIG_CLASSES]):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).splitlines()[0][:200]
        raise InputError(path, f"refused: it holds Python objects that a seqmamba checkpoint never holds, and loading "
                               f"them could run code ({reason}); {_alternatives(path)}") from None
    except (RuntimeError, OSError, EOFError, ValueError) as error:
        raise InputError(path, f"cannot be read ({str(error).splitlines()[0][:200]}); {_alternatives(path)}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(path, f"not a seqmamba (Lightning) checkpoint: it has no state_dict; {_alternatives(path)}")
    for key in ("hyper_parameters", "datamodule_hyper_parameters"):
        if key in checkpoint:
            checkpoint[key] = plain_data(checkpoint[key])
    return checkpoint


def state_dict_mismatch(found: dict[str, torch.Tensor], module: torch.nn.Module) -> str | None:
    """How a state_dict differs from a module's (the first differing tensors named), or None when it fits."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    mismatched = [f"{k} {tuple(found[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                  if k in found and tuple(found[k].shape) != tuple(v.shape)]
    parts = []
    if mismatched:
        parts.append(f"{len(mismatched)} tensors differ in shape (checkpoint vs this config), e.g. {mismatched[0]}")
    if missing:
        parts.append(f"{len(missing)} tensors are missing, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} tensors are unknown to this model, e.g. {unexpected[0]}")
    return "; ".join(parts) or None


def check_state_dict_fits(path: str | os.PathLike, checkpoint: dict, module: torch.nn.Module) -> None:
    """Refuse a checkpoint of another model shape with the first differing tensors named, before anything loads."""
    if mismatch := state_dict_mismatch(checkpoint["state_dict"], module):
        raise InputError(path, f"was written by a model of another shape: {mismatch}. Resume with the run's "
                               f"own config (--config RUN_DIR/config.yaml) or start a new --out")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, with writes made atomic (temporary file, fsync, rename) and weights-only reads."""

    def save_checkpoint(self, checkpoint: dict, path: str | os.PathLike, storage_options: Any = None) -> None:
        path = Path(path)
        checkpoint = {**checkpoint, **{key: plain_data(checkpoint[key]) for key in
                                       ("hyper_parameters", "datamodule_hyper_parameters") if key in checkpoint}}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            kept = f"{path} still holds the previous save" if path.exists() else "no earlier checkpoint exists"
            raise RunFailed(f"could not write checkpoint {path}: {error.strerror or error}; {kept}. Free space and "
                            f"resume with --resume last") from None

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return load_checkpoint(path, map_location=map_location or "cpu")
