"""`seqmamba finetune`: fine-tune a Mamba backbone to tell species apart, in a run directory like pretraining's.

Same config sections and keys as `seqmamba pretrain` (model.backbone.*, data.seq_len,
data.batch_size, data.samples_per_epoch, trainer.*, out, --resume), plus data.manifest and
model.init_from (a `seqmamba pretrain` checkpoint whose backbone is loaded; the head is new).
After training the test split is evaluated: summary.json gets test_accuracy, per_class_accuracy
and classes; confusion.csv and confusion.png land beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np

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


def report(run: FinishedRun) -> dict:
    """Test accuracy on the held-out blocks, per class, with the confusion matrix as CSV and PNG."""
    from seqmamba.tasks.classification import accuracies

    run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
    confusion = run.model.test_confusion.numpy()
    classes = list(run.model.hparams.classes)
    accuracy, per_class = accuracies(run.model.test_confusion)
    if run.is_global_zero:
        write_confusion_csv(run.run_dir / "confusion.csv", confusion, classes)
        plot_confusion(confusion, classes, run.run_dir / "confusion.png")
    print(f"test accuracy {accuracy:.4f} on {int(confusion.sum())} held-out windows of "
          f"{run.datamodule.hparams.seq_len} bases (chance {1 / len(classes):.4f})")
    print("per class: " + ", ".join(f"{name} {value:.3f}" for name, value in zip(classes, per_class)))
    return {"test_accuracy": accuracy, "per_class_accuracy": dict(zip(classes, per_class)), "classes": classes,
            "chance": 1 / len(classes), "test_windows": int(confusion.sum()),
            "seq_len": run.datamodule.hparams.seq_len}


def main(argv: list[str]) -> dict:
    """Fine-tune a DNA model to tell species apart; test accuracy and confusion matrix on held-out regions."""
    from seqmamba.tasks.classification import ClassifierTask
    from seqmamba.tasks.species_data import SpeciesDataModule
    from seqmamba.training.runner import run_training

    return run_training("finetune", ClassifierTask, SpeciesDataModule, argv, finish=report,
                        default_run_dir="runs/finetune", default_config=None,
                        outputs=("confusion.csv", "confusion.png"),
                        check=lambda model, data: model.set_classes(data.classes))
