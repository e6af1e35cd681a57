"""`seqmamba sc09 train-classifier | score`: the SC09 protocol's digit classifier, and scores of folders of clips.

train-classifier takes the run machinery's flags (`--config`, `--model.*`, `--data.*`, `--trainer.*`,
`--run_dir`, `--resume`, ...); `--data DIR` is short for `--data.root DIR` (`--data X.yaml` stays a data config).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from seqmamba.errors import InputError

if TYPE_CHECKING:
    from seqmamba.training.runner import FinishedRun

DEFAULT_CLASSIFIER_CONFIG = Path(__file__).parents[2] / "configs" / "sc09" / "classifier.yaml"
ROWS = ("train", "test")


def report(run: FinishedRun) -> dict:
    """Validation and test accuracy of the finished classifier (test voices unseen in training), beside chance."""
    from seqmamba.data.audio_datasets import SC09_LABELS
    from seqmamba.training.summaries import chance_warning

    (val,) = run.trainer.validate(run.model, datamodule=run.datamodule, verbose=False)
    (test,) = run.trainer.test(run.model, datamodule=run.datamodule, verbose=False)
    n_test = len(run.datamodule.clips["test"])
    chance = 1 / len(SC09_LABELS)
    print(f"digit classifier: test accuracy {test['test/accuracy']:.4f} on {n_test} held-out clips "
          f"(validation {val['val/accuracy']:.4f}; chance {chance:g})")
    warning = chance_warning("accuracy", test["test/accuracy"], chance, "chance", higher_is_better=True)
    return {"test_accuracy": test["test/accuracy"], "test_loss": test["test/loss"],
            "val_accuracy": val["val/accuracy"], "test_clips": n_test, "chance_accuracy": chance,
            "no_better_than_chance": warning is not None, "warning": warning,
            "baseline_loss": math.log(len(SC09_LABELS)), "baseline_name": "chance, ln 10", "loss_unit": "clip"}


def train_classifier(argv: list[str]) -> dict:
    """Train the ResNeXt digit classifier in a run directory; summary.json gets test_accuracy."""
    from seqmamba.tasks.digit_classifier import DigitClassifierTask, DigitDataModule, check_same_features
    from seqmamba.training.runner import run_training

    argv = [("--data.root" if flag == "--data" and not value.endswith((".yaml", ".yml")) else flag)
            for flag, value in zip(argv, [*argv[1:], ""])]
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


def score_parser() -> argparse.ArgumentParser:
    """The settings of `seqmamba sc09 score`."""
    parser = argparse.ArgumentParser(prog="seqmamba sc09 score",
                                     description="FID, IS, mIS, AM and NDB of a folder of clips, by a digit classifier")
    parser.add_argument("--classifier", type=Path, required=True, help="checkpoint of sc09 train-classifier")
    parser.add_argument("--samples", type=Path, help="folder of clips to score (e.g. seqmamba audio generate's)")
    parser.add_argument("--reference", type=Path, help="folder of reference clips, or an SC09 folder for its train "
                                                       "split (default: the train split of --data)")
    parser.add_argument("--data", type=Path, help="SC09 folder for the default reference and --rows "
                                                  "(default: the one the classifier was trained on)")
    parser.add_argument("--likelihoods", type=Path, help="samples.tsv (file, log_likelihood): score only the clips "
                                                         "between the --drop-low and 1 - --drop-high quantiles")
    parser.add_argument("--drop-low", type=float, default=0.4, help="share of least likely clips dropped")
    parser.add_argument("--drop-high", type=float, default=0.05, help="share of most likely clips dropped")
    parser.add_argument("--rows", default="", help="reference rows to add: train,test (the dataset's own clips)")
    parser.add_argument("--json", type=Path, help="also write the scores here as JSON")
    parser.add_argument("--device", default="auto", help="auto (GPU when there is one), cpu or cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ndb-bins", type=int, default=50)
    parser.add_argument("--mis-pairs", type=int, default=10000)
    return parser


def score(argv: list[str]) -> dict:
    """Score a folder of clips (and the dataset's own rows) against the reference; print the table."""
    from seqmamba.data.audio_datasets import sc09_split_files
    from seqmamba.metrics.digit_scorer import DigitScorer, audio_files, read_likelihoods
    from seqmamba.metrics.generative import likelihood_filter
    from seqmamba.metrics.sc09_table import TABLE_NOTE, format_table, score_row

    args = score_parser().parse_args(argv)
    rows = [row for row in args.rows.split(",") if row]
    if unknown := sorted(set(rows) - set(ROWS)):
        raise InputError("--rows", f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    if args.samples is None and not rows:
        raise InputError("command line", "nothing to score: give --samples DIR and/or --rows train,test")
    if args.likelihoods is not None and args.samples is None:
        raise InputError("--likelihoods", "needs --samples, the folder its clips are in")
    if args.batch_size < 1 or args.ndb_bins < 2 or args.mis_pairs < 1:
        raise InputError("command line", "--batch-size and --mis-pairs must be at least 1, --ndb-bins at least 2")
    sample_files = keep = None
    if args.samples is not None:  # check the samples before the slow reference pass
        sample_files = audio_files(args.samples)
        if args.likelihoods is not None:
            sample_files, log_likelihoods = read_likelihoods(args.likelihoods, args.samples)
            try:
                keep = likelihood_filter(log_likelihoods, args.drop_low, args.drop_high)
            except ValueError as error:
                raise InputError("--drop-low/--drop-high", str(error)) from None
            sample_files = [f for f, kept in zip(sample_files, keep) if kept]
        elif (args.samples / "samples.tsv").is_file():
            print(f"note: {args.samples / 'samples.tsv'} is there; add --likelihoods to score as the autoregressive "
                  "protocol does (least and most likely clips dropped)", file=sys.stderr)
    scorer = DigitScorer(args.classifier, args.device, args.batch_size)
    data_root = args.data or scorer.data_root
    splits = None
    if rows or args.reference is None:
        if data_root is None:
            raise InputError(args.classifier, "does not say which data it was trained on; give --data or --reference")
        splits = sc09_split_files(data_root)
    reference = (scorer.embed_reference(reference_files(args.reference), f"reference {args.reference}")
                 if args.reference is not None else scorer.embed_reference(splits["train"], f"{data_root} train"))
    sets = {row: (reference if row == "train" and args.reference is None else
                  scorer.embed_reference(splits[row], f"{data_root} {row}")) for row in rows}
    if sample_files is not None:
        sets["samples"] = scorer.embed_files(sample_files, f"samples {args.samples}")
    for name, embedding in {"reference": reference, **sets}.items():
        if len(embedding.files) < 2:
            raise InputError(embedding.files[0].parent, f"the {name} set has {len(embedding.files)} readable clip; "
                                                        "FID and IS need at least 2")
    table = {name: score_row(e.probs, e.features, reference.probs, reference.features, args.ndb_bins, args.mis_pairs)
             for name, e in sets.items()}
    print(format_table(table))
    reference_name = args.reference or f"{data_root} train split"
    print(f"reference: {reference_name} ({len(reference.files)} clips). {TABLE_NOTE}")
    result = dict(table.get("samples", {}))
    if keep is not None:
        result["likelihood_filter"] = {"kept": int(keep.sum()), "of": len(keep), "drop_low": args.drop_low,
                                       "drop_high": args.drop_high}
        print(f"likelihood filter: scored {int(keep.sum())} of {len(keep)} clips (dropped the least likely "
              f"{args.drop_low:.0%} and the most likely {args.drop_high:.0%})")
    if rows:
        result["rows"] = {row: table[row] for row in rows}
    result["reference"] = {"path": str(reference_name), "n": len(reference.files)}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str]) -> dict:
    """Dispatch `seqmamba sc09 ACTION ...`."""
    actions = {"train-classifier": train_classifier, "score": score}
    if not argv or argv[0] not in actions:
        if argv and argv[0] in ("-h", "--help"):
            print("usage: seqmamba sc09 {train-classifier,score} ...")
            return {}
        raise InputError("seqmamba sc09", f"choose an action: {', '.join(actions)} (then --help)")
    return actions[argv[0]](argv[1:])
