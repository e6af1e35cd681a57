"""CPU training of the 6.26M SC09 U-Net, real and complex Mamba blocks: forward, backward, AdamW step.

    python -m pipelines.audio.cpu_training --threads 2 --lengths 4096 16000 \
        --out pipelines/benchmarks/results/audio_cpu_training_cpu.json

Batch 1 of random codes at each length; --warmup untimed steps (numba compiles once, then caches), then
--reps timed steps (median). The JSON is rewritten after every case. The scan runs
on the default CPU path (numba forward and backward); `--reference-lengths` also times the PyTorch path
(two-level chunked scan with autograd, the path before the compiled backward) at those lengths, for
comparison. Reports seconds per forward, backward and step, and training samples per second.
`--layer-lengths` also times one Mamba layer of the preset's outer stage (d_model 64, real N = 16 and
complex N = 8), forward and backward, numba and PyTorch in turns: the two paths under the same load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
import yaml

from pipelines.benchmarks.timing import emit, environment
from seqmamba.nn import ComplexMamba, Mamba
from seqmamba.nn.sashimi import Sashimi, SashimiConfig
from seqmamba.ops import backend
from seqmamba.tasks.optim import decay_groups

PRESET = "configs/audio/sc09-mamba-6m.yaml"
KINDS = {"complex": dict(outer="complex-mamba", center="complex-mamba", d_state=8),
         "real": dict(outer="mamba", center="mamba", d_state=16)}


def time_training(kind: str, length: int, reps: int, warmup: int) -> dict:
    """Median seconds of forward, backward and optimizer step of one (1, length) batch."""
    torch.manual_seed(0)
    fields = yaml.safe_load(open(PRESET).read())["model"]["unet"]
    model = Sashimi(SashimiConfig(**fields | KINDS[kind]))
    optimizer = torch.optim.AdamW(decay_groups(model, 0.1), lr=0.002, betas=(0.9, 0.95))
    ids = torch.randint(256, (1, length + 1))
    forward, backward, step = [], [], []
    for rep in range(warmup + reps):
        started = time.perf_counter()
        loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
        after_forward = time.perf_counter()
        loss.backward()
        after_backward = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ended = time.perf_counter()
        if rep >= warmup:
            forward.append(after_forward - started)
            backward.append(after_backward - after_forward)
            step.append(ended - started)
    seconds = statistics.median(step)
    return {"parameters": sum(p.numel() for p in model.parameters()), "length": length, "reps": reps,
            "forward_s": round(statistics.median(forward), 3), "backward_s": round(statistics.median(backward), 3),
            "step_s": round(seconds, 3), "samples_per_s": round(length / seconds, 1)}


def time_layer(kind: str, length: int, reps: int) -> dict:
    """Median seconds of one layer's forward and backward at batch 1, numba and PyTorch paths in turns."""
    torch.manual_seed(0)
    layer = Mamba(64, d_state=16) if kind == "real" else ComplexMamba(64, d_state=8)
    x = torch.randn(1, length, 64, requires_grad=True)
    seconds: dict[str, list[float]] = {"numba": [], "pytorch": []}
    for rep in range(1 + reps):  # the first pass of each path loads the compiled kernels: untimed
        for path in seconds:
            with backend.force_backend("auto" if path == "numba" else "pytorch"):
                started = time.perf_counter()
                layer(x).square().mean().backward()
                if rep:
                    seconds[path].append(time.perf_counter() - started)
    medians = {path: statistics.median(values) for path, values in seconds.items()}
    return {"length": length, **{f"{path}_s": round(v, 3) for path, v in medians.items()},
            "numba_speedup": round(medians["pytorch"] / medians["numba"], 1),
            "numba_samples_per_s": round(length / medians["numba"], 1)}


def main() -> None:
    """Time every kind at every length (and the PyTorch reference where asked); print and keep the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads")
    parser.add_argument("--lengths", type=int, nargs="+", default=[4096, 16000])
    parser.add_argument("--reference-lengths", type=int, nargs="*", default=[4096])
    parser.add_argument("--layer-lengths", type=int, nargs="*", default=[])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    report = {"environment": environment(torch.device("cpu")), "settings": vars(args), "numba": {}, "pytorch": {},
              "layer": {}}
    for kind in KINDS:
        for length in args.layer_lengths:
            report["layer"].setdefault(kind, []).append(time_layer(kind, length, max(1, args.reps)))
            emit(report, args.out)
    for path, lengths in (("numba", args.lengths), ("pytorch", args.reference_lengths)):
        for kind in KINDS:
            for length in lengths:
                with backend.force_backend("auto" if path == "numba" else "pytorch"):
                    case = time_training(kind, length, args.reps if path == "numba" else 1, args.warmup)
                report[path].setdefault(kind, []).append(case)
                emit(report, args.out)


if __name__ == "__main__":
    main()
