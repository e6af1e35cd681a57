"""Training tokens/s on one GPU and on several through Lightning's DDP: the weak-scaling ratio.

Every GPU gets `--tokens` tokens per step (batch = tokens // L), so N GPUs do N times the work of one per
step and the ratio tokens/s(N) / tokens/s(1) is the scaling. Each (devices, L) case runs in a process of its
own, with the real `LanguageModelTask` (AdamW, bf16) on random DNA tokens, launched by Lightning's DDP
launcher (which re-runs this module for the other ranks): the same path `seqmamba pretrain` takes.

    python -m pipelines.benchmarks.ddp_scaling --devices 1 2 --lengths 16384 131072 \
        --out pipelines/benchmarks/results/ddp_scaling_h200x2.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import lightning
import torch
from torch.utils.data import Dataset

from pipelines.benchmarks.timing import emit, environment
from seqmamba.data.tokenizer import VOCAB_SIZE
from seqmamba.nn import MambaLMConfig
from seqmamba.tasks.language_model import LanguageModelTask

RESULT_PREFIX = "RESULT "


class RandomDNA(Dataset):
    """Windows of random base tokens: the model's speed does not depend on what the bases are."""

    def __init__(self, windows: int, seq_len: int) -> None:
        self.windows, self.seq_len = windows, seq_len

    def __len__(self) -> int:
        return self.windows

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = torch.randint(4, 8, (self.seq_len + 1,), generator=torch.Generator().manual_seed(index))  # A C G T
        return {"input_ids": ids[:-1], "labels": ids[1:]}


class StepTimer(lightning.Callback):
    """Wall time of the steps after `warmup`, synchronised, on every rank (rank 0 reports)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.seconds = warmup, None, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == self.warmup:
            torch.cuda.synchronize()
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.start


def run_one(devices: int, seq_len: int, args: argparse.Namespace) -> None:
    """One case in this process (and its DDP siblings); rank 0 prints the result line."""
    batch = max(1, args.tokens // seq_len)
    config = MambaLMConfig(**json.loads(args.model), vocab_size=VOCAB_SIZE)
    task = LanguageModelTask(config, lr=1e-3, warmup_steps=1)
    steps = args.warmup + args.steps
    data = torch.utils.data.DataLoader(RandomDNA(steps * batch * devices, seq_len), batch_size=batch,
                                       num_workers=2, drop_last=True)
    timer = StepTimer(args.warmup)
    trainer = lightning.Trainer(accelerator="gpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                                precision="bf16-mixed", max_steps=steps, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(task, data)
    if trainer.is_global_zero:
        tokens = args.steps * batch * seq_len * trainer.world_size
        print(RESULT_PREFIX + json.dumps({
            "devices": trainer.world_size, "seq_len": seq_len, "batch_per_gpu": batch,
            "tokens_per_s": round(tokens / timer.seconds), "seconds": round(timer.seconds, 3),
            "peak_gib_rank0": round(torch.cuda.max_memory_allocated() / 2**30, 3)}), flush=True)


def run_case_process(devices: int, seq_len: int, args: argparse.Namespace) -> dict:
    """A case in a fresh process: its result line, or the end of its error output."""
    command = [sys.executable, "-m", "pipelines.benchmarks.ddp_scaling", "--case", str(devices), str(seq_len),
               "--tokens", str(args.tokens), "--warmup", str(args.warmup), "--steps", str(args.steps),
               "--model", args.model]
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.case_timeout)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return {"devices": devices, "seq_len": seq_len, "error": (done.stderr or done.stdout)[-1500:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2**14, 2**17])
    parser.add_argument("--tokens", type=int, default=2**18, help="tokens per GPU per step")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--model", default='{"d_model": 128, "n_layer": 12}', help="MambaLMConfig fields, JSON")
    parser.add_argument("--case-timeout", type=int, default=300)
    parser.add_argument("--case", type=int, nargs=2, metavar=("DEVICES", "L"), help=argparse.SUPPRESS)
    parser.add_argument("--out")
    args = parser.parse_args()
    if torch.cuda.device_count() < max(args.devices):
        parser.error(f"--devices {max(args.devices)} needs that many CUDA GPUs; this machine has "
                     f"{torch.cuda.device_count()}")
    if args.case:
        run_one(*args.case, args)
        return
    results = [run_case_process(devices, seq_len, args) for seq_len in args.lengths for devices in args.devices]
    single = {r["seq_len"]: r["tokens_per_s"] for r in results if r.get("devices") == 1 and "tokens_per_s" in r}
    for result in results:
        if "tokens_per_s" in result and result["seq_len"] in single:
            result["scaling_vs_1_gpu"] = round(result["tokens_per_s"] / single[result["seq_len"]], 3)
    emit({"environment": environment(torch.device("cuda")), "gpus": torch.cuda.device_count(),
          "tokens_per_gpu_step": args.tokens, "model": json.loads(args.model), "results": results}, args.out)


if __name__ == "__main__":
    main()
