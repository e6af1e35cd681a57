"""What both benchmarks share: synchronised step timing, peak memory, failure capture, environment, JSON out.

Run the benchmarks as modules from the repository root (`python -m pipelines.benchmarks.<name>`),
which is how they import this file.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from seqmamba.ops import kernels_available


def default_device() -> str:
    """The GPU where there is one: the benchmarks are meant for it."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def add_training_step_arguments(parser: argparse.ArgumentParser, warmup: int, steps: int) -> None:
    """The flags every training benchmark shares: tokens per step, warmup and timed steps, lr, device, output."""
    parser.add_argument("--tokens", type=int, default=2**18, help="tokens per step; a longer L runs one sequence")
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--steps", type=int, default=steps, help="timed steps")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--out", help="also write the JSON report here")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock interval covers the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step: Callable[[], object], device: torch.device, warmup: int, reps: int) -> list[float]:
    """Seconds per call of `step`, `reps` times after `warmup` untimed calls (kernel caches, autotuning)."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(reps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def reset_peak_memory(device: torch.device) -> None:
    """Start a case's peak-memory count from what is allocated now."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float | None:
    """Most GPU memory held by tensors since the last reset; None on CPU, where torch does not track it."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3)


def run_case(case: Callable[[], dict]) -> dict:
    """One benchmark case's result, or {"error": ...} so a sweep outlives an OOM at its largest sizes."""
    try:
        return case()
    except torch.OutOfMemoryError:
        result = {"error": "OOM"}
    except Exception as err:  # a kernel refusing a shape must not cost the other cases
        traceback.print_exc(file=sys.stderr)
        result = {"error": f"{type(err).__name__}: {err}"[:500]}
    gc.collect()  # the traceback's frames held the case's tensors
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def _version(package: str) -> str | None:
    """Installed version of a distribution, None where it is absent."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    """Where and with what the numbers were taken, so results from different machines are not mixed up."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "mamba_ssm": _version("mamba-ssm"),
        "causal_conv1d": _version("causal-conv1d"),
        "kernels_available": kernels_available(),
        "python": platform.python_version(),
    }


def emit(report: dict, out: str | None) -> None:
    """Print the report as one JSON document and, with --out, keep it in a file too."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
