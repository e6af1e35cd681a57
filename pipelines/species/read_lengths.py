"""One model for every read length, on the ape stand-in: fine-tune at L with windows of varied length, then score
held-out windows and simulated reads per length beside the k-mer baseline, the share of calls per class, the
calibration, and `classify` throughput. Prints JSON and writes it (plus a Markdown table beside it).

The model is the 1.4M backbone from scratch, or (`--pretrain-minutes M`) pretrained first for M minutes on the human
rows of the training blocks (the species' held-out blocks never seen), or from `--init-from` a `seqmamba pretrain`
checkpoint; then trained for `--minutes` with windows log-uniform from `--min-len` to L (one length per batch); `seqmamba
finetune`'s own test pass gives held-out-window accuracy at 150 bp, 1 kb, 4 kb, ..., L. Reads (1% errors,
either strand) are drawn from the held-out test regions only, at the same lengths and at 4 L (longer than
the model was trained on: read in chunks with the state carried). The k-mer baseline (logistic regression on
k = 4..8, trained on the same varied-length windows) runs meanwhile on the CPU.

Data: the ape FASTAs that `seqmamba data apes` writes from Debian's maffilter-examples MAF. The GPU machine has
no network and no Debian package, so carry the MAF (13 MB) in an ignored folder and let the script extract it:

  mkdir -p data/cache && cp /usr/share/doc/maffilter/examples/Gorilla/Compara.epo_5_catarrhini_hsap-projected\
.chr22.subset.nogap.cleaned_aln.maf.gz data/cache/apes.maf.gz       # here, once (carry data/cache/apes.maf.gz)
  python pipelines/species/read_lengths.py --maf data/cache/apes.maf.gz \
      --out pipelines/benchmarks/results/read_lengths_h200.json          # on the GPU machine, about 9 minutes
Does pretraining pay at the same total GPU time? Run it twice and compare the tables:
  ... --minutes 5 --out .../read_lengths_scratch_h200.json
  ... --pretrain-minutes 2.5 --minutes 2.5 --out .../read_lengths_pretrained_h200.json   (add --seq-len 4096 for 2^12)
CPU check of the whole path: add --tiny (tiny model, 60 blocks, L = 1024, seconds per step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "pipelines" / "species"))
from benchmark import VALID_FRACTION, TEST_FRACTION, run_pretrain, slice_blocks  # noqa: E402
from prepare_pretraining import write_pretraining_data  # noqa: E402

from seqmamba.commands import finetune  # noqa: E402
from seqmamba.data.maf import extract_maf_species  # noqa: E402
from seqmamba.data.reads import simulate_reads  # noqa: E402
from seqmamba.data.species import JoinedGenome, read_manifest  # noqa: E402
from seqmamba.metrics.calibration import calibration_summary  # noqa: E402
from seqmamba.read_calls import load_classifier, predict_logits  # noqa: E402
from seqmamba.tasks.species_data import SpeciesDataModule, read_lengths  # noqa: E402

BACKBONE_1_4M = {"d_model": 128, "n_layer": 12}
BACKBONE_TINY = {"d_model": 16, "n_layer": 1}
STEP_OVERHEAD_S = 0.035  # a training step's fixed cost on the GPU (12 layers forward + backward + AdamW)


def planned_samples(seconds: float, seq_len: int, min_len: int, batch: int, tokens_per_s: float) -> int:
    """Windows that fill `seconds` of training: steps of mean length (L - m) / ln(L / m) plus a fixed cost."""
    mean_len = (seq_len - min_len) / math.log(seq_len / min_len) if seq_len > min_len else seq_len
    steps = max(4, int(seconds / (STEP_OVERHEAD_S + batch * mean_len / tokens_per_s)))
    return steps * batch


def start_kmer(manifest: Path, args, work: Path) -> tuple[subprocess.Popen, Path]:
    """The k-mer baseline at the same lengths, in a CPU subprocess beside the GPU training."""
    out = work / "kmer.json"
    command = [sys.executable, str(ROOT / "pipelines" / "baselines" / "kmer_species.py"), "--manifest", str(manifest),
               "--seq-len", str(args.seq_len), "--min-len", str(args.min_len), "--test-windows", str(args.test_windows),
               "--train-windows", "200" if args.tiny else "4096", "--out", str(out),
               "--k", *(["4", "6"] if args.tiny else ["4", "5", "6", "7", "8"])]
    threads = {name: "4" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    log = open(work / "kmer.log", "w")  # a file, not a pipe: a full pipe would stall the job
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **threads}), out


def run_finetune(manifest: Path, args, run_dir: Path) -> dict:
    """`seqmamba finetune` with varied-length windows for about `args.minutes`; its summary."""
    samples = planned_samples(args.minutes * 60, args.seq_len, args.min_len, args.batch_size, args.tokens_per_second)
    limit = int(args.minutes * 60 * 1.1)  # a guard should the speed guess be off; the epoch is sized to fit
    return finetune.main([
        "--data.manifest", str(manifest), "--data.seq_len", str(args.seq_len), "--data.min_len", str(args.min_len),
        "--data.batch_size", str(args.batch_size), "--data.samples_per_epoch", str(samples),
        "--data.val_windows", "32" if not args.tiny else "4", "--data.test_windows", str(args.test_windows),
        "--data.num_workers", str(args.workers), "--model.lr", "0.001",
        "--model.warmup_steps", str(max(1, samples // args.batch_size // 20)),
        *[arg for key, value in args.backbone.items() for arg in (f"--model.backbone.{key}", str(value))],
        *(["--model.init_from", str(args.init_from)] if args.init_from else []),
        "--run_dir", str(run_dir), "--trainer.max_epochs", "1",
        "--trainer.max_time", f"00:00:{limit // 60:02d}:{limit % 60:02d}", "--trainer.enable_progress_bar", "false",
        "--checkpoint_every_n_steps", "100000", *(["--trainer.accelerator", "cpu"] if args.tiny else [])])


def reads_by_length(checkpoint: Path, manifest: Path, args, device: str) -> dict:
    """Accuracy, call shares and calibration on balanced simulated reads from the held-out test regions."""
    data = SpeciesDataModule(str(manifest), seq_len=args.seq_len)
    data.setup("validate")
    genomes = [JoinedGenome(entry.fasta) for entry in read_manifest(manifest)]
    loaded = load_classifier(checkpoint, device)
    out = {}
    for length in [*read_lengths(args.seq_len), 4 * args.seq_len]:
        per_species = max(8, min(args.reads_per_length, (1 << 22 if not args.tiny else 1 << 16) // length))
        try:
            reads = simulate_reads(genomes, length, per_species, 0.01, seed=length, regions=data.split_regions("test"))
        except ValueError as error:  # a held-out region shorter than the read
            out[str(length)] = {"skipped": str(error)}
            continue
        labels = np.array([species for species, _ in reads])
        batch_tokens = 1 << 20 if device == "cuda" else 1 << 15
        logits = predict_logits(loaded, [seq for _, seq in reads], batch_tokens) * loaded.temperature  # raw logits
        calls = logits.argmax(axis=1)
        shares = np.bincount(calls, minlength=len(loaded.classes)) / len(calls)
        out[str(length)] = {"reads": len(reads), "accuracy": float((calls == labels).mean()),
                            "call_share": dict(zip(loaded.classes, shares.round(4).tolist())),
                            "max_call_share": float(shares.max()),
                            "calibration": calibration_summary(logits, labels, loaded.temperature)}
    return out


def throughput(checkpoint: Path, device: str, tiny: bool, work: Path) -> dict:
    """classify reads/s at 150 bp and 1 kb: on this device, and on 2 CPU threads (a subprocess), from the checkpoint."""
    module = "pipelines.benchmarks.classify_throughput"
    runs = {device: ["--device", device, "--reads", *(["2000", "500"] if tiny else ["400000", "100000"])]}
    if device == "cuda":
        runs["cpu_2_threads"] = ["--device", "cpu", "--threads", "2", "--reads", "1000", "200"]
    out = {}
    for name, flags in runs.items():
        json_out = work / f"throughput_{name}.json"
        threads = {"OMP_NUM_THREADS": "2"} if name.startswith("cpu") else {}
        done = subprocess.run([sys.executable, "-m", module, "--ckpt", str(checkpoint), *flags, "--out", str(json_out)],
                              cwd=ROOT, env={**os.environ, **threads}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        out[name] = json.loads(json_out.read_text())["lengths"] if done.returncode == 0 else \
            {"error": done.stderr[-500:]}
    return out


def markdown_table(result: dict) -> str:
    """Per read length: held-out windows, simulated reads (1% errors), the largest call share, the k-mer baseline."""
    lines = ["| read length | model, held-out windows | model, reads 1% err | largest call share (reads) | "
             "ECE before / after | k-mer LR (best k) | exact 31-mer |", "|---|---|---|---|---|---|---|"]
    windows = result.get("finetune", {}).get("test_by_length", {})
    kmer = result.get("kmer", {}).get("by_length", {})
    for length in sorted({*windows, *result.get("reads", {})}, key=int):
        reads = result.get("reads", {}).get(length, {})
        best = max(((k, v) for k, v in kmer.get(length, {}).items() if k.startswith("k")), key=lambda kv: kv[1],
                   default=None)
        exact = kmer.get(length, {}).get("exact31")
        calibration = reads.get("calibration", {})
        cells = [f"{windows[length]['accuracy']:.3f}" if length in windows else "",
                 f"{reads['accuracy']:.3f}" if "accuracy" in reads else reads.get("skipped", ""),
                 f"{reads['max_call_share']:.3f}" if "max_call_share" in reads else "",
                 f"{calibration['ece_before']:.3f} / {calibration['ece_after']:.3f}" if calibration else "",
                 f"{best[1]:.3f} ({best[0]})" if best else "", f"{exact:.3f}" if exact is not None else ""]
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(result: dict, out: Path) -> None:
    """The JSON and, beside it, the Markdown table; written whole each time, so a later crash keeps what was done."""
    result["table"] = markdown_table(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(result["table"] + "\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maf", type=Path, help="the ape MAF (extracted into WORK/apes); or give --manifest")
    parser.add_argument("--manifest", type=Path, help="a species manifest (default: from --maf)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seq-len", type=int, default=None, help="L (default 16384; 1024 with --tiny)")
    parser.add_argument("--min-len", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=5.0, help="training time")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens-per-second", type=float, default=None, help="expected training speed (default "
                        "1.5e6 on GPU, 2e3 on CPU): sets the epoch size that fills --minutes")
    parser.add_argument("--test-windows", type=int, default=128, help="held-out windows per species and length")
    parser.add_argument("--reads-per-length", type=int, default=500, help="simulated reads per species and length")
    parser.add_argument("--init-from", type=Path, help="a `seqmamba pretrain` checkpoint to fine-tune from")
    parser.add_argument("--pretrain-minutes", type=float, default=0.0,
                        help="pretrain on the human training blocks this long first, then fine-tune from it")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: OUT's folder/read-lengths)")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--budget-minutes", type=float, default=9.3,
                        help="the whole run's wall clock: the k-mer baseline is waited for until then")
    parser.add_argument("--tiny", action="store_true", help="CPU check: tiny model, 60 blocks, short run")
    args = parser.parse_args(argv)
    if not args.maf and not args.manifest:
        parser.error("give --maf (the ape MAF) or --manifest")
    on_gpu = torch.cuda.is_available() and not args.tiny
    args.seq_len = args.seq_len or (1024 if args.tiny else 1 << 14)
    args.backbone = BACKBONE_TINY if args.tiny else BACKBONE_1_4M
    args.tokens_per_second = args.tokens_per_second or (1.5e6 if on_gpu else 2e3)
    args.workers = args.workers if args.workers is not None else (6 if on_gpu else 0)
    if args.tiny:
        args.test_windows, args.reads_per_length = min(args.test_windows, 8), min(args.reads_per_length, 8)
    started = time.time()
    work = args.work or args.out.parent / "read-lengths"
    work.mkdir(parents=True, exist_ok=True)
    manifest = args.manifest
    if manifest is None:
        extract_maf_species(args.maf, work / "apes")
        manifest = work / "apes" / "species.tsv"
    if args.tiny:
        manifest = slice_blocks(manifest, 60, work / "apes-tiny")
    kmer_job, kmer_out = start_kmer(manifest, args, work)
    device = "cuda" if on_gpu else "cpu"
    result = {"device": torch.cuda.get_device_name() if on_gpu else "cpu", "backbone": args.backbone,
              "seq_len": args.seq_len, "min_len": args.min_len, "minutes": args.minutes,
              "batch_size": args.batch_size, "pretrain_minutes": args.pretrain_minutes,
              "init_from": str(args.init_from) if args.init_from else None}
    if args.pretrain_minutes > 0:
        fasta, bed = write_pretraining_data(manifest, "human", work / "human-joined", VALID_FRACTION, TEST_FRACTION)
        args.seconds_per_run = args.pretrain_minutes * 60  # what benchmark.run_pretrain reads
        result["pretrain"] = run_pretrain(fasta, bed, args.seq_len, work / f"pretrain-L{args.seq_len}", args)
        args.init_from = work / f"pretrain-L{args.seq_len}" / "checkpoints" / "last.ckpt"
        result["init_from"] = str(args.init_from)
    run_dir = work / f"finetune-L{args.seq_len}"
    summary = run_finetune(manifest, args, run_dir)
    result["finetune"] = {key: summary.get(key) for key in ("test_accuracy", "test_by_length", "steps", "temperature")}
    save(result, args.out)
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    result["reads"] = reads_by_length(checkpoint, manifest, args, device)
    save(result, args.out)
    result["classify_throughput"] = throughput(checkpoint, device, args.tiny, work)
    save(result, args.out)
    try:
        kmer_job.wait(timeout=max(10.0, started + args.budget_minutes * 60 - time.time()))
        result["kmer"] = json.loads(kmer_out.read_text()) if kmer_job.returncode == 0 else \
            {"error": (work / "kmer.log").read_text()[-500:]}
    except subprocess.TimeoutExpired:
        kmer_job.kill()
        result["kmer"] = {"error": "timed out"}
    reads = result["reads"]
    result["max_call_share_balanced_reads"] = max((row["max_call_share"] for row in reads.values()
                                                   if "max_call_share" in row), default=None)
    result["seconds"] = round(time.time() - started, 1)
    save(result, args.out)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
