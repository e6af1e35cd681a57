"""The one reading of `--device` for every command that runs a model outside training: auto, cpu, cuda, cuda:N."""

from __future__ import annotations

import re

import torch

from seqmamba.errors import InputError

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(name: str) -> torch.device:
    """A device that exists on this machine (auto: the GPU when there is one), or one line naming --device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not re.fullmatch(r"cuda(:\d+)?", name):
        raise InputError("--device", f"{name!r} is not a device; choose {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise InputError("--device", f"{name}: torch sees no CUDA GPU on this machine; use --device cpu or auto")
    index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
    if index >= count:
        raise InputError("--device", f"{name}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    return torch.device(name)
