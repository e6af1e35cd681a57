"""What a finished run leaves for a person: a loss plot and a one-line, machine-readable summary."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(metrics_csvs: list[Path]) -> dict[str, list[tuple[int, float]]]:
    """Lightning's CSVLogger files (a run and its resumptions) -> {metric: [(step, value), ...]} by step."""
    series: dict[str, list[tuple[int, float]]] = {}
    for metrics_csv in metrics_csvs:
        with open(metrics_csv, newline="") as f:
            for row in csv.DictReader(f):
                step = int(row.get("step") or 0)
                for key, value in row.items():
                    if key not in ("step", "epoch") and value not in ("", None):
                        series.setdefault(key, []).append((step, float(value)))
    return {key: sorted(values) for key, values in series.items()}


def plot_losses(metrics_csvs: list[Path], out_png: Path, baseline_loss: float | None = None,
                baseline_name: str = "baseline", unit: str = "token") -> Path:
    """Training and held-out loss (nats per `unit`) against step, with a baseline (unigram, chance) if given."""
    series = read_metrics(metrics_csvs)
    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("train/loss", "train"), ("val/loss", "held-out")):
        if key in series:
            steps, values = zip(*series[key])
            ax.plot(steps, values, label=label, marker="o" if key == "val/loss" else None)
    if baseline_loss is not None:
        ax.axhline(baseline_loss, color="gray", linestyle="--", label=f"{baseline_name} ({baseline_loss:.3f})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"loss (nats per {unit})")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def chance_warning(score: str, value: float, chance: float, chance_name: str, higher_is_better: bool) -> str | None:
    """The line a run ends with when its held-out score is no better than guessing: small data fails loudly."""
    if (value > chance + 1e-6) if higher_is_better else (value < chance - 1e-6):  # float32 scores: 0.1000000015
        return None
    return (f"warning: held-out {score} {value:.4f} is no better than {chance_name} ({chance:g}): the model did not "
            "learn; give it more data or steps, or check the warm-up (model.warmup_fraction) and learning rate")


def write_summary(run_dir: Path, values: dict) -> Path:
    """summary.json beside the checkpoints: the numbers a run ends with."""
    path = run_dir / "summary.json"
    tmp = path.with_name(".summary.json.tmp")
    tmp.write_text(json.dumps(values, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def perplexity_line(ppl: float, baseline_ppl: float) -> str:
    """The last line a pretraining run prints."""
    return (f"held-out perplexity {ppl:.4f} per base ({math.log2(ppl):.4f} bits/base); "
            f"unigram baseline {baseline_ppl:.4f} ({math.log2(baseline_ppl):.4f} bits/base)")
