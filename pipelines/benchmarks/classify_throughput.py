"""Reads per second of `seqmamba classify` at each read length: the model path alone, and end to end.

- `model`: `predict_logits` on reads already in memory (encode, length-sorted right-padded batches,
  bf16 on GPU, the classifier; one array pass per batch, no per-read Python).
- `end_to_end`: a FASTQ file through `classify`'s own loop (parse, classify, call, write the
  per-read table and Kraken-style lines), the model loaded beforehand.

Results: `lengths` -> read length -> batch size in padded tokens -> {model, end_to_end}: reads, seconds, reads_per_s.

Without `--ckpt` the classifier is a fresh 1.4M-parameter one (MambaLMConfig's defaults, 4 classes,
seq_len 16384): speed does not depend on the weights. Run from the repository root:

  python -m pipelines.benchmarks.classify_throughput --out pipelines/benchmarks/results/classify_throughput_h200.json
  python -m pipelines.benchmarks.classify_throughput --device cpu --threads 2 --reads 4000 1000 \
      --out pipelines/benchmarks/results/classify_throughput_cpu2.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.benchmarks.timing import default_device, emit, environment, run_case, synchronize
from seqmamba.commands.classify import classify_sources, sources
from seqmamba.nn import MambaLMConfig
from seqmamba.nn.classifier import SequenceClassifier
from seqmamba.read_calls import LoadedClassifier, load_classifier, predict_logits


def fresh_classifier(device: torch.device, classes: int = 4, seq_len: int = 1 << 14) -> LoadedClassifier:
    """An untrained 1.4M-parameter classifier: as fast as a trained one."""
    model = SequenceClassifier(MambaLMConfig(), classes).to(device).eval()
    return LoadedClassifier(model, [f"class{i}" for i in range(classes)], seq_len)


def random_reads(count: int, length: int, seed: int = 0) -> list[str]:
    """`count` random ACGT reads of `length` bases."""
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[np.random.default_rng(seed).integers(0, 4, count * length)]
    text = letters.tobytes().decode("ascii")
    return [text[i : i + length] for i in range(0, count * length, length)]


def model_rate(loaded: LoadedClassifier, reads: list[str], batch_tokens: int, device: torch.device) -> dict:
    """Reads per second of predict_logits over `reads`, after a warm-up on a few batches."""
    predict_logits(loaded, reads[: max(1, len(reads) // 20)], batch_tokens)
    synchronize(device)
    started = time.perf_counter()
    predict_logits(loaded, reads, batch_tokens)
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"reads": len(reads), "seconds": round(seconds, 3), "reads_per_s": round(len(reads) / seconds, 1)}


def end_to_end_rate(loaded: LoadedClassifier, reads: list[str], batch_tokens: int, work: Path) -> dict:
    """Reads per second of classify's loop over a FASTQ file of `reads`, writing both per-read outputs."""
    fastq = work / "reads.fq"
    fastq.write_text("".join(f"@r{i}\n{seq}\n+\n{'I' * len(seq)}\n" for i, seq in enumerate(reads)))
    started = time.perf_counter()
    with open(work / "pred.tsv", "w") as table, open(work / "kraken.txt", "w") as kraken:
        classify_sources(loaded, sources([fastq], []), table, kraken, 0.0, batch_tokens)
    seconds = time.perf_counter() - started
    return {"reads": len(reads), "seconds": round(seconds, 3), "reads_per_s": round(len(reads) / seconds, 1)}


def main(argv: list[str] | None = None) -> dict:
    """Time both paths at every length and print (and write) the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="a `seqmamba finetune` checkpoint (default: a fresh 1.4M model)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[150, 1000])
    parser.add_argument("--reads", type=int, nargs="+", default=None,
                        help="reads per length (default 400000 100000 on GPU, 4000 1000 on CPU)")
    parser.add_argument("--batch-tokens", type=int, nargs="+", default=None,
                        help="padded tokens per batch, each timed (default 2^20 and 2^22 on GPU, 2^15 on CPU)")
    parser.add_argument("--device", default=default_device())
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    on_gpu = device.type == "cuda"
    counts = args.reads or ([400_000, 100_000] if on_gpu else [4000, 1000])
    batch_tokens = args.batch_tokens or ([1 << 20, 1 << 22] if on_gpu else [1 << 15])
    loaded = load_classifier(args.ckpt, device) if args.ckpt else fresh_classifier(device)
    report = {"benchmark": "classify_throughput", "environment": environment(device),
              "settings": {"ckpt": str(args.ckpt) if args.ckpt else None, "batch_tokens": batch_tokens,
                           "threads": torch.get_num_threads(), "autocast": "bfloat16" if on_gpu else None,
                           "parameters": sum(p.numel() for p in loaded.model.parameters())},
              "lengths": {}}
    with tempfile.TemporaryDirectory() as work:
        for length, count in zip(args.lengths, counts):
            reads = random_reads(count, length, seed=length)
            report["lengths"][str(length)] = {str(tokens): {
                "model": run_case(lambda: model_rate(loaded, reads, tokens, device)),
                "end_to_end": run_case(lambda: end_to_end_rate(loaded, reads, tokens, Path(work))),
            } for tokens in batch_tokens}  # per batch size in tokens
    emit(report, args.out)
    return report


if __name__ == "__main__":
    main()
