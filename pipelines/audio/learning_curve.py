"""Learning curve of a U-Net preset on one GPU: held-out bits per sample and SC09 scores as training goes on.

    python pipelines/audio/learning_curve.py --digits DIGITS --work /tmp/lc --train-minutes 5.5 \
        --out $OUT/audio_learning_curve_h200.json

One call (about 8 minutes with the defaults) trains the preset (`seqmamba audio train`) for --points
chunks of --train-minutes each, resuming WORK/run with `--resume last` (a chunk ends with SIGTERM, which saves last.ckpt); after each chunk it
measures, at last.ckpt, the held-out bits per sample (valid split, beside the uniform 8 bits) and, for each
--sampling setting, the SC09 scores (FID, IS, mIS, AM, NDB) of --n generated clips, likelihood-filtered as
the protocol does, against a digit classifier trained on other voices (WORK/classifier, trained in the first
call). Calls continue where the last stopped while WORK survives (keep it under /tmp on the GPU machine,
and call again before the machine is given back); the run stops at the preset's max_steps or once
--budget-minutes of training are spent. Every point is appended to WORK/curve.json, copied to --out with
a plot (--out's .png) and a sheet of 16 generated beside 16 real spectrograms (--out's _sheet.png).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from seqmamba.spectrograms import spectrogram_sheet  # noqa: E402
from seqmamba.training.checkpoints import load_checkpoint  # noqa: E402
from seqmamba.training.summaries import read_metrics  # noqa: E402

CLI = [sys.executable, "-m", "seqmamba.cli"]
STOP_GRACE_S = 180  # a SIGTERM-ed run finishes its step and writes last.ckpt within this


def cli(*args: str) -> None:
    """Run a seqmamba command, failing loudly."""
    print("+ seqmamba " + " ".join(args), flush=True)
    subprocess.run([*CLI, *args], check=True, cwd=ROOT)


def train_classifier(args) -> dict:
    """The scoring classifier, trained once on the stand-in's train voices (test voices unseen)."""
    run = args.classifier_run or args.work / "classifier"
    if args.classifier_run is None and not (run / "summary.json").exists():
        shutil.rmtree(run, ignore_errors=True)  # a classifier cut short by an earlier call starts over
        cli("sc09", "train-classifier", "--data.root", str(args.digits), "--out", str(run))
    return json.loads((run / "summary.json").read_text())


def train_chunk(args, seconds: float) -> int:
    """Train (or resume) for at most `seconds`, then SIGTERM; returns the process's exit code (0: finished)."""
    run = args.work / "run"
    argv = [*CLI, "audio", "train", "--config", str(args.preset), "--data.root", str(args.digits),
            "--out", str(run), *args.train_args]
    if (run / "checkpoints" / "last.ckpt").exists():
        argv += ["--resume", "last"]
    print("+ " + " ".join(argv[2:]), flush=True)
    process = subprocess.Popen(argv, cwd=ROOT)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=STOP_GRACE_S)


@torch.no_grad()
def heldout_bits(args, checkpoint: Path, device: torch.device) -> float:
    """Bits per sample of the checkpoint on the valid split (as the run's config cuts it), bf16 on GPU."""
    import yaml

    from seqmamba.tasks.audio_data import AudioDataModule
    from seqmamba.training.model_loading import load_model

    model = load_model(checkpoint, "audio", device).module
    data_config = yaml.safe_load((args.work / "run" / "config.yaml").read_text())["data"]
    data = AudioDataModule(**{**data_config, "num_workers": 4})
    data.setup("validate")
    total, count = 0.0, 0
    for batch in data.val_dataloader():
        labels = batch["labels"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(batch["input_ids"].to(device))
        nll = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100,
                                                reduction="sum")
        total, count = total + nll.item(), count + int((labels != -100).sum())
    return total / count / math.log(2)


def sample_and_score(args, checkpoint: Path, step: int, temperature: float, top_p: float) -> dict:
    """--n clips at one sampling setting, scored by the classifier after the likelihood filter."""
    folder = args.work / "samples" / f"step{step:06d}_t{temperature:g}_p{top_p:g}"
    if not (folder / "scores.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        cli("audio", "generate", "--ckpt", str(checkpoint), "--out", str(folder), "--n", str(args.n),
            "--seconds", str(args.seconds), "--temperature", str(temperature), "--top_p", str(top_p))
        classifier = (args.classifier_run or args.work / "classifier") / "checkpoints" / "best.ckpt"
        cli("sc09", "score", "--ckpt", str(classifier), "--samples", str(folder), "--data", str(args.digits),
            "--likelihoods", str(folder / "samples.tsv"), "--out", str(folder / "scores.json"))
    return {"folder": str(folder), **json.loads((folder / "scores.json").read_text())}


def write_json(path: Path, value: dict) -> None:
    """Write through a temporary file, so a cut-off call never leaves half a JSON."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    tmp.replace(path)


def plot(curve: dict, png: Path) -> None:
    """Held-out bits per sample (with the uniform line) and IS / FID against training minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve["points"]
    minutes = [p["train_minutes"] for p in points]
    fig, (bits_ax, is_ax) = plt.subplots(1, 2, figsize=(11, 4))
    bits_ax.plot(minutes, [p["val_bits_per_sample"] for p in points], marker="o", label="held-out (valid voices)")
    if curve.get("val_curve") and points[-1]["step"]:  # every validation of the run, steps read as minutes
        per_step = points[-1]["train_minutes"] / points[-1]["step"]
        bits_ax.plot([s * per_step for s, _ in curve["val_curve"]], [b for _, b in curve["val_curve"]], alpha=0.5,
                     label="validation during training (minutes from steps)")
    bits_ax.axhline(curve["uniform_bits_per_sample"], color="gray", linestyle="--", label="uniform (8 bits)")
    bits_ax.set(xlabel="training minutes (one H200)", ylabel="bits per sample", title="held-out NLL")
    fid_ax = is_ax.twinx()
    for setting in curve["sampling"]:
        scores = [p["scores"].get(setting, {}) for p in points]
        is_ax.plot(minutes, [s.get("is", math.nan) for s in scores], marker="o", label=f"IS {setting}")
        fid_ax.plot(minutes, [s.get("fid", math.nan) for s in scores], marker="x", linestyle=":",
                    label=f"FID {setting}")
    is_ax.axhline(5, color="green", linestyle="--", linewidth=0.8, label="goal IS 5")
    fid_ax.axhline(30, color="red", linestyle="--", linewidth=0.8, label="goal FID 30")
    is_ax.set(xlabel="training minutes (one H200)", ylabel="IS (higher is better)", title="SC09 scores")
    fid_ax.set(ylabel="FID (lower is better)")
    for ax in (bits_ax, is_ax, fid_ax):
        ax.legend(fontsize=7, loc="upper right" if ax is not is_ax else "upper left")
    bits_ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def sheet(args, folder: Path, png: Path) -> None:
    """16 generated clips (most likely first) beside 16 real valid-split clips, each panel named."""
    from seqmamba.data.audio_datasets import sc09_split_files
    from seqmamba.data.audio_io import load_audio

    rows = [line.split("\t") for line in (folder / "samples.tsv").read_text().splitlines()[1:]][::-1][:16]
    valid = sc09_split_files(args.digits)["valid"]
    real = [Path(f) for f in valid[:: max(1, len(valid) // 16)][:16]]
    spectrogram_sheet({"generated": [load_audio(folder / name) for name, _ in rows],
                       "real (valid voices)": [load_audio(f) for f in real]}, png,
                      titles={"generated": [f"{name}, {float(ll):.0f} nats" for name, ll in rows],
                              "real (valid voices)": [f"{f.parent.name}/{f.name[:18]}" for f in real]})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The pipeline's settings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=Path, required=True, help="SC09-layout stand-in (make-digits --clean)")
    parser.add_argument("--preset", type=Path, default=ROOT / "configs/audio/sc09-mamba-6m-short.yaml")
    parser.add_argument("--work", type=Path, default=Path("/tmp/learning-curve"), help="run, classifier, samples")
    parser.add_argument("--out", type=Path, required=True, help="JSON copied here after every point (PNGs beside)")
    parser.add_argument("--train-minutes", type=float, default=5.5, help="training per point")
    parser.add_argument("--points", type=int, default=1, help="points measured in this call")
    parser.add_argument("--budget-minutes", type=float, default=22.0, help="stop training once this much is spent")
    parser.add_argument("--n", type=int, default=256, help="clips generated per sampling setting and point")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each generated clip")
    parser.add_argument("--classifier-run", type=Path, help="an `sc09 train-classifier` run to score with "
                                                            "(default: train one in WORK/classifier)")
    parser.add_argument("--sampling", nargs="+", default=["1.0,1.0", "1.0,0.95"], help="TEMPERATURE,TOP_P pairs")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[], help="more `audio train` flags (last)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Train in chunks, measure after each, keep every point."""
    args = parse_args(argv)
    args.digits, args.work = args.digits.resolve(), args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    state_path = args.work / "curve.json"
    curve = json.loads(state_path.read_text()) if state_path.exists() else {
        "preset": str(args.preset.relative_to(ROOT) if args.preset.is_relative_to(ROOT) else args.preset),
        "digits": str(args.digits), "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "uniform_bits_per_sample": 8.0, "sampling": args.sampling, "n_clips": args.n, "points": []}
    curve["classifier"] = {k: v for k, v in train_classifier(args).items() if k in ("test_accuracy", "val_accuracy")}
    for _ in range(args.points):
        spent = curve["points"][-1]["train_minutes"] if curve["points"] else 0.0
        if spent >= args.budget_minutes or curve.get("finished"):
            print(f"done: {spent:.1f} training minutes spent (budget {args.budget_minutes})")
            break
        started = time.perf_counter()
        code = train_chunk(args, 60 * min(args.train_minutes, args.budget_minutes - spent))
        if code not in (0, 128 + signal.SIGTERM):
            raise SystemExit(f"audio train exited with {code}")
        curve["finished"] = code == 0
        checkpoint = args.work / "run" / "checkpoints" / "last.ckpt"
        step = int(load_checkpoint(checkpoint)["global_step"])
        point = {"step": step, "train_minutes": round(spent + (time.perf_counter() - started) / 60, 2),
                 "val_bits_per_sample": heldout_bits(args, checkpoint, device), "scores": {}}
        for setting in args.sampling:
            temperature, top_p = map(float, setting.split(","))
            scores = sample_and_score(args, checkpoint, step, temperature, top_p)
            point["scores"][setting] = {k: scores[k] for k in ("fid", "is", "mis", "am", "ndb", "n") if k in scores}
            point["scores"][setting]["folder"] = scores["folder"]
        curve["points"].append(point)
        curve["val_curve"] = [[step, bits] for step, bits in read_metrics(
            sorted((args.work / "run").glob("logs*/metrics.csv"))).get("val/bits_per_sample", [])]
        print(json.dumps(point), flush=True)
        write_json(state_path, curve)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, curve)
        plot(curve, args.out.with_suffix(".png"))
        best = max(args.sampling, key=lambda s: point["scores"][s].get("is", 0))
        sheet(args, Path(point["scores"][best]["folder"]), args.out.with_name(args.out.stem + "_sheet.png"))


if __name__ == "__main__":
    main()
