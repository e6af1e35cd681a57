"""`seqmamba sc09 train-classifier | score`: the SC09 protocol's digit classifier, and scores of folders of clips.

train-classifier takes the run machinery's flags (`--config`, `--model.*`, `--data.*`, `--trainer.*`,
`--out`, `--resume`, ...); the SC09 folder is `--data.root DIR`.
"""

from __future__ import annotations

import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from seqmamba.devices import resolve_device
from seqmamba.errors import InputError
from seqmamba.limits import check_memory
from seqmamba.outputs import check_output_file, check_output_path, written_atomically

if TYPE_CHECKING:
    import torch

    from seqmamba.metrics.digit_scorer import DigitScorer
    from seqmamba.training.runner import FinishedRun

DEFAULT_CLASSIFIER_CONFIG = Path(str(resources.files("seqmamba") / "presets" / "sc09-classifier.yaml"))  # package data
ROWS = ("train", "test")
MIS_PAIR_BYTES = 2 * 8 + 4 * 10 * 8  # per mIS pair: two indices, both rows of 10 class probabilities and the KL terms


def report(run: FinishedRun) -> dict:
    """Validation and test accuracy of the finished classifier (test voices unseen in training), beside chance."""
    from seqmamba.data.audio_datasets import SC09_LABELS
    from seqmamba.training.summaries import chance_warning

    (val,) = run.trainer.validate(run.model, datamodule=run.datamodule, verbose=False)
    (test,) = run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
    evaluated = sum(run.trainer.num_test_batches) * run.datamodule.batch_size * run.trainer.world_size
    n_test = min(len(run.datamodule.clips["test"]), evaluated)  # as many as trainer.limit_test_batches let through
    chance = 1 / len(SC09_LABELS)
    print(f"digit classifier: test accuracy {test['test/accuracy']:.4f} on {n_test} held-out clips "
          f"(validation {val['val/accuracy']:.4f}; chance {chance:g})")
    warning = chance_warning("accuracy", test["test/accuracy"], chance, "chance", higher_is_better=True)
    return {"test_accuracy": test["test/accuracy"], "test_loss": test["test/loss"],
            "val_accuracy": val["val/accuracy"], "test_clips": n_test, "chance_accuracy": chance,
            "no_better_than_chance": warning is not None, "warning": warning,
            "baseline_loss": math.log(len(SC09_LABELS)), "baseline_name": "chance, ln 10", "loss_unit": "clip"}


def train_classifier(argv: list[str]) -> dict:
    """Train the SC09 protocol's ResNeXt digit classifier in a run folder; summary.json gets test_accuracy."""
    from seqmamba.tasks.digit_classifier import DigitClassifierTask, DigitDataModule, check_same_features
    from seqmamba.training.runner import run_training

    return run_training("sc09 train-classifier", DigitClassifierTask, DigitDataModule, argv, finish=report,
                        default_run_dir="runs/sc09-classifier", default_config=str(DEFAULT_CLASSIFIER_CONFIG),
                        check=check_same_features)


def reference_files(folder: Path) -> list[Path]:
    """Clips of a reference folder: its audio files, or the train split when it is an SC09 folder."""
    from seqmamba.data.audio_datasets import SC09_LABELS, sc09_split_files
    from seqmamba.metrics.digit_scorer import audio_files

    if (folder / SC09_LABELS[0]).is_dir() or (folder / "train").is_dir():
        return sc09_split_files(folder)["train"]
    return audio_files(folder)


def load_scorer(path: Path, device: torch.device, batch_size: int) -> tuple[DigitScorer, str | None]:
    """The digit classifier of a `train-classifier` checkpoint on `device`, and the data folder it was trained on."""
    from seqmamba.metrics.digit_scorer import DigitScorer
    from seqmamba.metrics.mel_features import MelSettings
    from seqmamba.training.model_loading import load_model

    loaded = load_model(path, "digits", device)
    settings = MelSettings(**loaded.settings["features"])
    return DigitScorer(loaded.module, settings, path, batch_size), loaded.data.get("root")


def score(*, ckpt: Path, samples: Path | None = None, reference: Path | None = None, data: Path | None = None,
          likelihoods: Path | None = None, drop_low: float = 0.4, drop_high: float = 0.05,
          rows: str = "", out: Path | None = None, device: str = "auto",
          batch_size: int = 256, ndb_bins: int = 50, mis_pairs: int = 10000) -> dict:
    """Score a folder of clips by a digit classifier: FID, IS, mIS, AM and NDB against a reference set.

    Args:
        ckpt: checkpoint of `seqmamba sc09 train-classifier`
        samples: folder of clips to score (e.g. `seqmamba audio generate`'s)
        reference: folder of reference clips, or an SC09 folder for its train split (default: --data's train split)
        data: SC09 folder for the default reference and --rows (default: the one the classifier was trained on)
        likelihoods: samples.tsv (file, log_likelihood): score only clips between the --drop_low and --drop_high quantiles
        drop_low: share of least likely clips dropped
        drop_high: share of most likely clips dropped
        rows: the dataset's own splits to score as extra rows, comma-separated: train, test
        out: also write the scores here as JSON
        device: auto (the GPU when there is one), cpu, cuda or cuda:N
        batch_size: clips through the classifier at once
        ndb_bins: clusters of the NDB test (at least 2)
        mis_pairs: sample pairs of the modified Inception score
    """
    from seqmamba.data.audio_datasets import sc09_split_files
    from seqmamba.metrics.digit_scorer import audio_files, read_likelihoods
    from seqmamba.metrics.generative import likelihood_filter
    from seqmamba.metrics.sc09_table import TABLE_NOTE, format_table, score_row

    device = resolve_device(device)
    rows = [row for row in rows.split(",") if row]
    if unknown := sorted(set(rows) - set(ROWS)):
        raise InputError("--rows", f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    if samples is None and not rows:
        raise InputError("command line", "nothing to score: give --samples DIR and/or --rows train,test")
    if likelihoods is not None and samples is None:
        raise InputError("--likelihoods", "needs --samples, the folder its clips are in")
    if batch_size < 1 or ndb_bins < 2 or mis_pairs < 1:
        raise InputError("command line", "--batch_size and --mis_pairs must be at least 1, --ndb_bins at least 2")
    check_memory("--mis_pairs", mis_pairs * MIS_PAIR_BYTES, f"{mis_pairs} mIS pairs")
    if out is not None:
        check_output_path(out, "--out")
        check_output_file(Path(out), "--out", [p for p in (ckpt, likelihoods) if p], "{")
    sample_files = keep = None
    if samples is not None:  # check the samples before the slow reference pass
        sample_files = audio_files(samples)
        if likelihoods is not None:
            sample_files, log_likelihoods = read_likelihoods(likelihoods, samples)
            try:
                keep = likelihood_filter(log_likelihoods, drop_low, drop_high)
            except ValueError as error:
                raise InputError("--drop_low/--drop_high", str(error)) from None
            sample_files = [f for f, kept in zip(sample_files, keep) if kept]
        elif (samples / "samples.tsv").is_file():
            print(f"note: {samples / 'samples.tsv'} is there; add --likelihoods to score as the autoregressive "
                  "protocol does (least and most likely clips dropped)", file=sys.stderr)
    scorer, trained_on = load_scorer(ckpt, device, batch_size)
    data_root = data or trained_on
    splits = None
    if rows or reference is None:
        if data_root is None:
            raise InputError(ckpt, "does not say which data it was trained on; give --data or --reference")
        splits = sc09_split_files(data_root)
    reference_set = (scorer.embed_reference(reference_files(reference), f"reference {reference}")
                     if reference is not None else scorer.embed_reference(splits["train"], f"{data_root} train"))
    sets = {row: (reference_set if row == "train" and reference is None else
                  scorer.embed_reference(splits[row], f"{data_root} {row}")) for row in rows}
    if sample_files is not None:
        sets["samples"] = scorer.embed_files(sample_files, f"samples {samples}")
    for name, embedding in {"reference": reference_set, **sets}.items():
        if len(embedding.files) < 2:
            raise InputError(embedding.files[0].parent, f"the {name} set has {len(embedding.files)} readable clip; "
                                                        "FID and IS need at least 2")
    table = {name: score_row(e.probs, e.features, reference_set.probs, reference_set.features, ndb_bins, mis_pairs)
             for name, e in sets.items()}
    print(format_table(table))
    reference_name = reference or f"{data_root} train split"
    print(f"reference: {reference_name} ({len(reference_set.files)} clips). {TABLE_NOTE}")
    result = dict(table.get("samples", {}))
    if keep is not None:
        result["likelihood_filter"] = {"kept": int(keep.sum()), "of": len(keep), "drop_low": drop_low,
                                       "drop_high": drop_high}
        print(filter_line(log_likelihoods, keep, drop_low, drop_high))
    if rows:
        result["rows"] = {row: table[row] for row in rows}
    result["reference"] = {"path": str(reference_name), "n": len(reference_set.files)}
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with written_atomically(Path(out)) as tmp:
            tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result


def filter_line(log_likelihoods: np.ndarray, keep: np.ndarray, drop_low: float, drop_high: float) -> str:
    """What the likelihood filter did, in counts: with few clips the shares round down to no clip dropped."""
    ranks = np.argsort(np.argsort(log_likelihoods, kind="stable"))  # 0 = least likely, as likelihood_filter ranks
    low, high = int(ranks[keep].min()), int(len(keep) - 1 - ranks[keep].max())
    line = f"likelihood filter: scored {int(keep.sum())} of {len(keep)} clips"
    if low == high == 0 and drop_low + drop_high > 0:
        return (f"{line}; none dropped: {len(keep)} clips are too few for --drop_low {drop_low:g} and "
                f"--drop_high {drop_high:g}")
    return (f"{line}: dropped the {low} least likely (--drop_low {drop_low:g}) and the {high} most likely "
            f"(--drop_high {drop_high:g})")
