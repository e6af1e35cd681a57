"""`seqmamba finetune`: fine-tune a Mamba backbone to tell species apart, in a run directory like pretraining's.

Same config sections and keys as `seqmamba pretrain` (model.backbone.*, data.seq_len,
data.batch_size, data.samples_per_epoch, trainer.*, out, --resume), plus data.manifest and
model.init_from (a `seqmamba pretrain` checkpoint whose backbone is loaded; the head is new).
After training the test split is evaluated at every read length of data.test_lengths (150 bp, 1 kb,
4 kb, ... up to data.seq_len): summary.json gets test_accuracy, per_class_accuracy and classes at
seq_len, and `test_by_length` (accuracy, each class's share of the calls, and calibration: ECE
before and after temperature scaling, share of windows called at 0.5/0.7/0.9, per length);
confusion.csv and confusion.png (at seq_len) land beside it. The temperature is fitted on the
validation windows of the final weights and saved into checkpoints/last.ckpt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:  # Lightning loads when the word runs, not when `seqmamba --help` lists it
    from seqmamba.training.runner import FinishedRun


def write_confusion_csv(path: Path, confusion: np.ndarray, classes: list[str]) -> Path:
    """Rows: true species, columns: predicted species, counts of test windows."""
    lines = ["true\\predicted," + ",".join(classes)]
    lines += [f"{name}," + ",".join(str(int(v)) for v in row) for name, row in zip(classes, confusion)]
    path.write_text("\n".join(lines) + "\n")
    return path


def plot_confusion(confusion: np.ndarray, classes: list[str], out_png: Path) -> Path:
    """The confusion matrix as row fractions (each true species' windows), counts written in the cells."""
    fractions = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1))
    ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(int(count)), ha="center", va="center", color="white" if fractions[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def call_shares(confusion: np.ndarray) -> list[float]:
    """Each class's share of all calls (the confusion matrix's column sums): balanced input should give ~1/C each."""
    return (confusion.sum(axis=0) / max(int(confusion.sum()), 1)).tolist()


def test_by_length(run: FinishedRun) -> tuple[dict[str, dict], np.ndarray]:
    """Test accuracy and call shares at every data.test_lengths; the confusion matrix at the last (seq_len)."""
    from seqmamba.metrics.calibration import calibration_summary
    from seqmamba.tasks.classification import accuracies

    by_length, data = {}, run.datamodule
    for length in data.test_lengths:
        data.eval_length = length
        run.trainer.test(run.model, datamodule=data, verbose=False)
        confusion = run.model.test_confusion.numpy()
        accuracy, _ = accuracies(run.model.test_confusion)
        by_length[str(length)] = {"accuracy": accuracy, "windows": int(confusion.sum()),
                                  "call_share": dict(zip(run.model.hparams.classes, call_shares(confusion))),
                                  "calibration": calibration_summary(*run.model.test_logits,
                                                                     float(run.model.temperature))}
        print(f"test at {length} bases: accuracy {accuracy:.4f}, largest call share "
              f"{max(call_shares(confusion)):.3f}")
    data.eval_length = data.hparams.seq_len
    return by_length, confusion


def calibrate(run: FinishedRun) -> float:
    """Fit the temperature on the validation windows with the final weights and save it into last.ckpt."""
    run.trainer.validate(run.model, datamodule=run.datamodule, verbose=False)
    run.trainer.save_checkpoint(run.run_dir / "checkpoints" / "last.ckpt")
    return float(run.model.temperature)


def report(run: FinishedRun) -> dict:
    """Test accuracy on the held-out regions per read length, per class, with the confusion matrix as CSV and PNG."""
    from seqmamba.tasks.classification import accuracies

    temperature = calibrate(run)
    by_length, confusion = test_by_length(run)
    classes = list(run.model.hparams.classes)
    accuracy, per_class = accuracies(torch.from_numpy(confusion))
    if run.is_global_zero:
        write_confusion_csv(run.run_dir / "confusion.csv", confusion, classes)
        plot_confusion(confusion, classes, run.run_dir / "confusion.png")
    print(f"test accuracy {accuracy:.4f} on {int(confusion.sum())} held-out windows of "
          f"{run.datamodule.hparams.seq_len} bases (chance {1 / len(classes):.4f})")
    print("per class: " + ", ".join(f"{name} {value:.3f}" for name, value in zip(classes, per_class)))
    return {"test_accuracy": accuracy, "per_class_accuracy": dict(zip(classes, per_class)), "classes": classes,
            "chance": 1 / len(classes), "test_windows": int(confusion.sum()),
            "seq_len": run.datamodule.hparams.seq_len, "min_len": run.datamodule.hparams.min_len,
            "test_by_length": by_length, "temperature": temperature}


def main(argv: list[str]) -> dict:
    """Fine-tune a DNA model to tell species apart; test accuracy and confusion matrix on held-out regions."""
    from seqmamba.tasks.classification import ClassifierTask
    from seqmamba.tasks.species_data import SpeciesDataModule
    from seqmamba.training.runner import run_training

    return run_training("finetune", ClassifierTask, SpeciesDataModule, argv, finish=report,
                        default_run_dir="runs/finetune", default_config=None,
                        outputs=("confusion.csv", "confusion.png"),
                        check=lambda model, data: model.set_classes(data.classes))
