"""SC09 scoring on the digits stand-in: train the digit classifier, score the protocol's reference rows and bad
clips, time the scorer. Prints JSON and writes it to --out.

Steps: make the stand-in in --digits if that folder is missing or empty (`seqmamba data make-digits`, test voices
unseen in training); train ResNeXt-29 8x64d (`seqmamba sc09 train-classifier`); score Train and Test against the
train split (the ceiling: FID near 0, IS near 10), white noise and silence (floors), and optionally --samples
(generated clips; their samples.tsv, if there, applies the likelihood filter); time `seqmamba sc09 score` on
2,048 clips on the GPU (reference features cached, as a user's second run finds them), and the classifier's CPU
time on a smaller count, extrapolated to 2,048.

Usage (one H100, about 5 minutes):
  python pipelines/sc09/benchmark.py --digits .gpu_data/digits --out pipelines/benchmarks/results/sc09_h100.json
CPU check of the whole path: add --tiny (100 clips, a tiny ResNeXt, one epoch, 128 timed clips).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from pipelines.benchmarks.timing import emit, environment  # noqa: E402
from seqmamba.commands.sc09 import load_scorer, score, train_classifier  # noqa: E402
from seqmamba.data.audio_io import write_wav  # noqa: E402
from seqmamba.data.digits import make_digits  # noqa: E402
from seqmamba.metrics.digit_scorer import audio_files, read_clips  # noqa: E402

TINY_MODEL = ["--model.resnext.depth", "11", "--model.resnext.cardinality", "2", "--model.resnext.base_width", "4",
              "--model.resnext.widen_factor", "1", "--model.resnext.stem_width", "8", "--model.warmup_steps", "2",
              "--data.batch_size", "40", "--data.num_workers", "0", "--trainer.max_epochs", "1"]
SCORE_KEYS = ("n", "fid", "is", "is_all", "mis", "am", "ndb")


def write_noise_and_silence(folder: Path, count: int, seed: int = 0) -> dict[str, Path]:
    """`count` clips of white noise (random level) and `count` of digital silence, 1 s at 16 kHz."""
    rng = np.random.default_rng(seed)
    folders = {"white_noise": folder / "white_noise", "silence": folder / "silence"}
    for k in range(count):
        level = rng.uniform(0.05, 0.3)
        write_wav(folders["white_noise"] / f"noise_{k:04d}.wav", rng.normal(0, level, 16000).clip(-1, 1))
        write_wav(folders["silence"] / f"silence_{k:04d}.wav", np.zeros(16000, dtype=np.float32))
    return folders


def timing_folder(source_files: list[Path], folder: Path, count: int) -> Path:
    """`count` clips copied (cycling through the sources) into one folder, as a generator would leave them."""
    folder.mkdir(parents=True)
    for k in range(count):
        shutil.copy(source_files[k % len(source_files)], folder / f"clip_{k:05d}.wav")
    return folder


def scores(result: dict) -> dict:
    """The score columns of one `seqmamba sc09 score` result."""
    return {key: result[key] for key in SCORE_KEYS if key in result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=Path, required=True, help="digits stand-in folder (made here if empty)")
    parser.add_argument("--out", required=True, help="JSON report path")
    parser.add_argument("--samples", type=Path, help="folder of generated clips to score as well")
    parser.add_argument("--run_dir", type=Path, default=Path("runs/sc09-classifier"), help="classifier run directory")
    parser.add_argument("--voices", type=int, default=200)
    parser.add_argument("--per-voice", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--timed-clips", type=int, default=2048)
    parser.add_argument("--cpu-clips", type=int, default=128, help="clips the CPU classifier time is taken on")
    parser.add_argument("--tiny", action="store_true", help="CPU check: tiny data, model and counts")
    args = parser.parse_args()
    if args.tiny:
        args.voices, args.per_voice, args.timed_clips, args.cpu_clips = 10, 1, 128, 16
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report: dict = {"environment": environment(device), "tiny": args.tiny}
    work = Path(tempfile.mkdtemp(prefix="sc09-benchmark-"))
    run_dir = args.run_dir

    if not args.digits.is_dir() or not any(args.digits.iterdir()):
        start = time.perf_counter()
        counts = make_digits(args.digits, voices=args.voices, per_voice=args.per_voice)
        report["digits"] = {"made": True, "seconds": round(time.perf_counter() - start, 1), **counts}
    else:
        report["digits"] = {"made": False}
    report["digits"]["path"] = str(args.digits)

    start = time.perf_counter()
    model_flags = TINY_MODEL if args.tiny else ["--trainer.max_epochs", str(args.max_epochs)]
    summary = train_classifier(["--data.root", str(args.digits), "--out", str(run_dir), "--overwrite", "true",
                                "--trainer.enable_progress_bar", "false", *model_flags])
    report["classifier"] = {**summary, "seconds": round(time.perf_counter() - start, 1),
                            "target_test_accuracy": 0.95, "meets_target": summary["test_accuracy"] >= 0.95}
    checkpoint = run_dir / "checkpoints" / "last.ckpt"

    start = time.perf_counter()
    dataset = score(ckpt=checkpoint, rows="train,test")  # embeds and caches the train and test splits
    report["reference_seconds"] = round(time.perf_counter() - start, 1)
    rows = {name: scores(row) for name, row in dataset["rows"].items()}
    for name, folder in write_noise_and_silence(work, min(256, args.timed_clips)).items():
        rows[name] = scores(score(ckpt=checkpoint, samples=folder))
    if args.samples is not None:
        tsv = args.samples / "samples.tsv"
        result = score(ckpt=checkpoint, samples=args.samples, likelihoods=tsv if tsv.is_file() else None)
        rows["samples"] = {**scores(result), "likelihood_filter": result.get("likelihood_filter"),
                           "path": str(args.samples), "label": "stand-in: model trained on the digits stand-in"}
    report["rows"] = rows

    clips = timing_folder(audio_files(args.digits / "one"), work / "timed", args.timed_clips)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    score(ckpt=checkpoint, samples=clips)
    report["gpu" if device.type == "cuda" else "this_device"] = {
        "clips": args.timed_clips, "score_seconds": round(time.perf_counter() - start, 2),
        "what": "seqmamba sc09 score end to end: read clips, mel, ResNeXt, FID/IS/mIS/AM/NDB (reference cached)"}

    scorer, _ = load_scorer(checkpoint, "cpu", 256)
    waveforms, _ = read_clips(audio_files(clips)[:args.cpu_clips], scorer.settings, "cpu timing")
    scorer.embed_waveforms(waveforms[:2])  # warm-up
    start = time.perf_counter()
    scorer.embed_waveforms(waveforms)
    per_clip = (time.perf_counter() - start) / len(waveforms)
    report["cpu"] = {"threads": torch.get_num_threads(), "timed_clips": len(waveforms),
                     "classifier_seconds_per_clip": round(per_clip, 4),
                     "classifier_seconds_for_2048_extrapolated": round(per_clip * 2048, 1),
                     "what": "mel + ResNeXt forward on the CPU only; reading clips and the metrics add a few seconds"}
    shutil.rmtree(work, ignore_errors=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
