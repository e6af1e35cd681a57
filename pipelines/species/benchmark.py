"""Species benchmark on the ape stand-in: pretrained vs from-scratch fine-tuning per window length, k-mer baseline,
the reads protocol, and `classify` throughput. Prints JSON and writes it (plus a Markdown table beside it).

For each L: pretrain the 1.4M backbone on human (only the blocks the species task trains on), fine-tune it and a
fresh backbone with the same budget, test both on the held-out blocks; k-mer logistic regression on the same
windows runs meanwhile on the CPU. Reads (150 bp and 1 kb, 1% errors, drawn anywhere in the genomes) are
classified by every fine-tuned model; throughput is `seqmamba classify` end to end on the L = first-length model.

Usage (one H100, about 9 minutes):
  python pipelines/species/benchmark.py --maf /usr/share/doc/maffilter/examples/Gorilla/Compara...maf.gz \
      --out pipelines/benchmarks/results/species_h100.json
CPU check of the whole path: add --tiny (tiny model, 60 blocks, seconds per run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "pipelines" / "species"))
from prepare_pretraining import write_pretraining_data  # noqa: E402

from seqmamba.commands import classify  # noqa: E402
from seqmamba.data.genome import open_genome  # noqa: E402
from seqmamba.data.maf import LINE_WIDTH, extract_maf_species  # noqa: E402
from seqmamba.data.reads import simulate_reads  # noqa: E402
from seqmamba.data.species import JoinedGenome, read_manifest, write_manifest  # noqa: E402
from seqmamba.errors import RunInterrupted  # noqa: E402
from seqmamba.commands import finetune, pretrain  # noqa: E402
from seqmamba.read_calls import load_classifier, predict_proba  # noqa: E402

BACKBONE_1_4M = {"d_model": 128, "n_layer": 12}
BACKBONE_TINY = {"d_model": 16, "n_layer": 1}
TOKENS_PER_STEP = 1 << 16
VALID_FRACTION = TEST_FRACTION = 0.1
STARTUP_SECONDS = 15.0  # first guess of a run's time beyond training: start-up, evaluation, reads
FINAL_SECONDS = 50.0  # kept for the throughput measurement and the k-mer results at the end


def backbone_args(backbone: dict) -> list[str]:
    return [arg for key, value in backbone.items() for arg in (f"--model.backbone.{key}", str(value))]


def slice_blocks(manifest: Path, blocks: int, out_dir: Path) -> Path:
    """The first `blocks` records of every species, for a quick run; returns the new manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fastas = {}
    for entry in read_manifest(manifest):
        genome = open_genome(entry.fasta)
        with open(out_dir / entry.fasta.name, "w") as out:
            for name in list(genome.keys())[:blocks]:
                seq = genome[name][:]
                lines = "".join(seq[i : i + LINE_WIDTH] + "\n" for i in range(0, len(seq), LINE_WIDTH))
                out.write(f">{name}\n{lines}")
        fastas[entry.name] = out_dir / entry.fasta.name
    return write_manifest(out_dir / "species.tsv", fastas)


def trainer_args(seconds: float, tiny: bool) -> list[str]:
    limit = f"00:00:{int(seconds * 1.5) // 60:02d}:{int(seconds * 1.5) % 60:02d}"
    args = ["--trainer.max_epochs", "1", "--trainer.max_time", limit, "--trainer.enable_progress_bar", "false",
            "--checkpoint_every_n_steps", "100000"]
    return args + (["--trainer.accelerator", "cpu"] if tiny else [])


def samples_for(seconds: float, tokens_per_second: float, seq_len: int, batch_size: int) -> int:
    """Windows one epoch should hold to fill `seconds` at the expected speed (whole batches, at least 2)."""
    batches = max(2, int(seconds * tokens_per_second / (seq_len * batch_size)))
    return batches * batch_size


def run_pretrain(fasta: Path, bed: Path, seq_len: int, run_dir: Path, args) -> dict:
    batch = max(1, TOKENS_PER_STEP // seq_len) if not args.tiny else 8
    samples = samples_for(args.seconds_per_run, args.tokens_per_second, seq_len, batch)
    started = time.time()
    summary = pretrain.main([
        "--data.fasta", str(fasta), "--data.split", "bed", "--data.bed", str(bed), "--data.seq_len", str(seq_len),
        "--data.batch_size", str(batch), "--data.samples_per_epoch", str(samples), "--data.val_max_windows", "16",
        "--data.num_workers", str(args.workers), "--model.lr", "0.002",
        "--model.warmup_steps", str(max(1, samples // batch // 10)), *backbone_args(args.backbone),
        "--run_dir", str(run_dir), *trainer_args(args.seconds_per_run, args.tiny)])
    return {**{k: summary[k] for k in ("val_ppl", "unigram_ppl", "steps") if k in summary},
            "tokens": samples * seq_len, "seconds": round(time.time() - started, 1)}


def run_finetune(manifest: Path, seq_len: int, test_windows: int, run_dir: Path, init_from: Path | None, args) -> dict:
    batch = max(1, TOKENS_PER_STEP // seq_len) if not args.tiny else 8
    samples = samples_for(args.seconds_per_run, args.tokens_per_second, seq_len, batch)
    started = time.time()
    summary = finetune.main([
        "--data.manifest", str(manifest), "--data.seq_len", str(seq_len), "--data.batch_size", str(batch),
        "--data.samples_per_epoch", str(samples), "--data.val_windows", "8", "--data.test_windows", str(test_windows),
        "--data.num_workers", str(args.workers), "--model.lr", "0.001",
        "--model.warmup_steps", str(max(1, samples // batch // 10)), *backbone_args(args.backbone),
        *(["--model.init_from", str(init_from)] if init_from else []),
        "--run_dir", str(run_dir), *trainer_args(args.seconds_per_run, args.tiny)])
    return {**{k: summary[k] for k in ("test_accuracy", "per_class_accuracy", "test_windows", "steps")},
            "tokens": samples * seq_len, "seconds": round(time.time() - started, 1)}


def reads_accuracy(checkpoint: Path, genomes: list[JoinedGenome], lengths: list[int], per_species: int,
                   error_rate: float, device: str) -> dict:
    """Accuracy on simulated reads of each length drawn anywhere in the genomes (the `classify` protocol)."""
    loaded = load_classifier(checkpoint, device)
    out = {}
    for length in lengths:
        reads = simulate_reads(genomes, length, per_species, error_rate, seed=length)
        probs = predict_proba(loaded, [seq for _, seq in reads])
        out[str(length)] = float((probs.argmax(axis=1) == np.array([s for s, _ in reads])).mean())
    return out


def classify_throughput(checkpoint: Path, genomes: list[JoinedGenome], counts: dict[int, int], work: Path) -> dict:
    """Reads per second of `seqmamba classify` end to end (parse, batch, model, write), model load excluded."""
    out = {}
    for length, count in counts.items():
        reads = simulate_reads(genomes, length, max(1, count // len(genomes)), 0.01, seed=7)
        fasta = work / f"reads_{length}.fa"
        fasta.write_text("".join(f">r{i}\n{seq}\n" for i, (_, seq) in enumerate(reads)))
        warm = ["--ckpt", str(checkpoint), "-o", str(work / "warm.tsv"), str(fasta)]
        started = time.time()
        classify.main(warm)  # loads the model too: timed separately below
        with_load = time.time() - started
        load_started = time.time()
        load_classifier(checkpoint, "cuda" if torch.cuda.is_available() else "cpu")
        load_seconds = time.time() - load_started
        started = time.time()
        classify.main(["--ckpt", str(checkpoint), "-o", str(work / f"pred_{length}.tsv"), str(fasta)])
        seconds = max(time.time() - started - load_seconds, 1e-6)
        out[str(length)] = {"reads": len(reads), "reads_per_second": round(len(reads) / seconds, 1),
                            "seconds_first_run": round(with_load, 2)}
    return out


def start_kmer_baselines(manifest: Path, lengths: list[int], test_windows: dict[int, int], work: Path, tiny: bool):
    """k-mer baselines for every length, in CPU subprocesses running beside the GPU work."""
    script = ROOT / "pipelines" / "baselines" / "kmer_species.py"
    jobs = {}
    for length in lengths:
        out = work / f"kmer_{length}.json"
        command = [sys.executable, str(script), "--manifest", str(manifest), "--seq-len", str(length),
                   "--test-windows", str(test_windows[length]), "--out", str(out),
                   "--train-windows", "200" if tiny else "4096",
                   "--k", *(["4", "6"] if tiny else ["4", "5", "6", "7", "8"])]
        threads = {name: "2" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        log = open(work / f"kmer_{length}.log", "w")  # a file, not a pipe: a full pipe would stall the job
        jobs[length] = (subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **threads}),
                        out)
    return jobs


def collect_kmer(jobs: dict, timeout: float) -> dict:
    results = {}
    for length, (process, out) in jobs.items():
        try:
            process.wait(timeout=max(1.0, timeout))
            results[length] = json.loads(out.read_text()) if process.returncode == 0 else \
                {"error": out.with_suffix(".log").read_text()[-500:]}
        except subprocess.TimeoutExpired:
            process.kill()
            results[length] = {"error": "timed out"}
    return results


def benchmark_length(length: int, manifest: Path, genomes: list[JoinedGenome], human_fa: Path, human_bed: Path,
                     test_windows: int, work: Path, args) -> dict:
    """Pretrain, fine-tune pretrained and from scratch, test both on held-out blocks and on reads, at one length."""
    row = {"test_windows_per_species": test_windows, "seconds_per_run": round(args.seconds_per_run, 1)}
    runs_dir = work / f"L{length}"
    row["pretrain"] = run_pretrain(human_fa, human_bed, length, runs_dir / "pretrain", args)
    pretrained = runs_dir / "pretrain" / "checkpoints" / "last.ckpt"
    row["pretrained"] = run_finetune(manifest, length, test_windows, runs_dir / "finetune-pretrained", pretrained, args)
    row["scratch"] = run_finetune(manifest, length, test_windows, runs_dir / "finetune-scratch", None, args)
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    for name in ("pretrained", "scratch"):
        checkpoint = runs_dir / f"finetune-{name}" / "checkpoints" / "last.ckpt"
        row[f"reads_{name}"] = reads_accuracy(checkpoint, genomes, [150, 1000], 50 if args.tiny else 500, 0.01, device)
    print(json.dumps({length: row}), flush=True)
    return row


def markdown_table(result: dict) -> str:
    """Held-out-region test accuracy per L beside the baselines, and the reads protocol (pretrained model)."""
    lines = ["| L | pretrained | from scratch | k-mer LR (best k) | exact 31-mer | reads 150 bp, 1% err | "
             "reads 1 kb, 1% err |", "|---|---|---|---|---|---|---|"]
    for length, row in result["lengths"].items():
        if "pretrained" not in row:
            lines.append(f"| {length} | {row.get('skipped') or row.get('error')} | | | | | |")
            continue
        kmer = row.get("kmer", {}).get("accuracy", {})
        best = max(((k, v) for k, v in kmer.items() if not k.startswith("exact")), key=lambda kv: kv[1], default=None)
        exact = kmer.get("exact31")
        reads = row.get("reads_pretrained", {})
        cells = [f"{row['pretrained']['test_accuracy']:.3f}", f"{row['scratch']['test_accuracy']:.3f}",
                 f"{best[1]:.3f} ({best[0]})" if best else "n/a", f"{exact:.3f}" if exact is not None else "n/a",
                 f"{reads.get('150', float('nan')):.3f}", f"{reads.get('1000', float('nan')):.3f}"]
        lines.append(f"| {length} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maf", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lengths", type=int, nargs="+", default=None, help="default 1024 4096 16384 65536 "
                        "(64 128 with --tiny)")
    parser.add_argument("--minutes-per-run", type=float, default=None,
                        help="training time of each pretrain / fine-tune run (default: fits --budget-minutes)")
    parser.add_argument("--budget-minutes", type=float, default=9.0, help="the whole script's wall-clock budget")
    parser.add_argument("--tokens-per-second", type=float, default=None, help="expected training speed (default "
                        "1.5e6 on GPU, 2e3 on CPU): sets the epoch size that fills a run's time")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: OUT's folder/species-work)")
    parser.add_argument("--tiny", action="store_true", help="CPU check: tiny model, 60 blocks, short runs")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    args.lengths = args.lengths or ([64, 128] if args.tiny else [1024, 4096, 16384, 65536])
    started = time.time()
    deadline = started + args.budget_minutes * 60
    on_gpu = torch.cuda.is_available() and not args.tiny
    args.backbone = BACKBONE_TINY if args.tiny else BACKBONE_1_4M
    args.tokens_per_second = args.tokens_per_second or (1.5e6 if on_gpu else 2e3)
    args.workers = args.workers if args.workers is not None else (6 if on_gpu else 0)
    args.seconds_per_run = args.minutes_per_run * 60 if args.minutes_per_run else 0.0  # else planned per length
    work = args.work or args.out.parent / "species-work"
    work.mkdir(parents=True, exist_ok=True)

    manifest = work / "apes" / "species.tsv"
    extract_maf_species(args.maf, work / "apes")
    if args.tiny:
        manifest = slice_blocks(manifest, 60, work / "apes-tiny")
    genomes = [JoinedGenome(entry.fasta) for entry in read_manifest(manifest)]
    human_fa, human_bed = write_pretraining_data(manifest, "human", work / "human-joined", VALID_FRACTION,
                                                 TEST_FRACTION)
    test_bases = TEST_FRACTION * min(len(g) for g in genomes)
    test_windows = {L: max(2, min(16 if args.tiny else 256, int(test_bases // L))) for L in args.lengths}
    kmer_jobs = start_kmer_baselines(manifest, args.lengths, test_windows, work, args.tiny)
    result = {"device": torch.cuda.get_device_name() if on_gpu else "cpu", "backbone": args.backbone,
              "tokens_per_step": TOKENS_PER_STEP, "assumed_tokens_per_second": args.tokens_per_second,
              "split": "by alignment block, shared by all species: first 80% train, next 10% valid, last 10% test",
              "lengths": {}}
    overhead = STARTUP_SECONDS  # per run: start-up, evaluation, and any shortfall of the assumed speed
    for number, length in enumerate(args.lengths):
        remaining = deadline - time.time() - FINAL_SECONDS
        runs_left = 3 * (len(args.lengths) - number)
        if not args.minutes_per_run:  # re-plan with the overhead measured so far
            args.seconds_per_run = max(5.0, remaining / runs_left - overhead)
        if remaining < 3 * (args.seconds_per_run + overhead):
            result["lengths"][str(length)] = {"skipped": f"{remaining:.0f} s of budget left"}
            continue
        length_started = time.time()
        try:
            row = benchmark_length(length, manifest, genomes, human_fa, human_bed, test_windows[length], work, args)
        except RunInterrupted:
            raise  # a signal stops the whole benchmark; what was measured is already saved
        except Exception as error:  # keep the lengths already measured: report this one's failure and go on
            traceback.print_exc()
            row = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        result["lengths"][str(length)] = row
        overhead = max(STARTUP_SECONDS, (time.time() - length_started) / 3 - args.seconds_per_run)
        gc.collect()
        torch.cuda.empty_cache() if on_gpu else None
        save(result, args.out)  # partial results survive a later crash or kill
    first = next((L for L in args.lengths if "pretrained" in result["lengths"][str(L)]), None)
    if first is not None:
        counts = {150: 200, 1000: 100, 10000: 20} if args.tiny else {150: 40_000, 1000: 10_000, 10000: 1_000}
        checkpoint = work / f"L{first}" / "finetune-pretrained" / "checkpoints" / "last.ckpt"
        try:
            throughput = classify_throughput(checkpoint, genomes, counts, work)
        except Exception as error:
            traceback.print_exc()
            throughput = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
        result["classify_throughput"] = {"model_seq_len": first, **throughput}
    for length, kmer in collect_kmer(kmer_jobs, deadline - time.time()).items():
        result["lengths"][str(length)]["kmer"] = kmer
    result["seconds"] = round(time.time() - started, 1)
    save(result, args.out)
    print(json.dumps(result, indent=2))
    return result


def save(result: dict, out: Path) -> None:
    """The JSON and, beside it, the Markdown table."""
    result["table"] = markdown_table(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(result["table"] + "\n")


if __name__ == "__main__":
    main()
