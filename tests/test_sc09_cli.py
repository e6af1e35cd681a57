"""`seqmamba sc09 train-classifier` and `score` end to end on the digits stand-in, with bad input."""

import json
import shutil
from dataclasses import asdict

import numpy as np
import pytest
import soundfile

from seqmamba.training.checkpoints import load_checkpoint
from seqmamba.cli import main
from seqmamba.data.digits import make_digits
from seqmamba.metrics.digit_scorer import CACHE_FOLDER, DigitScorer
from seqmamba.metrics.mel_features import MelSettings

TINY = ["--model.resnext.depth", "11", "--model.resnext.cardinality", "2", "--model.resnext.base_width", "4",
        "--model.resnext.widen_factor", "1", "--model.resnext.stem_width", "8", "--model.warmup_steps", "1",
        "--data.batch_size", "40", "--data.num_workers", "0", "--trainer.max_epochs", "1",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]
SCORE_KEYS = {"n", "fid", "is", "mis", "am", "ndb"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "sc09"
    make_digits(out, voices=10, per_voice=1, workers=2)  # 80 train, 10 valid, 10 test clips
    return out


@pytest.fixture(scope="module")
def classifier(digits, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "classifier"
    assert main(["sc09", "train-classifier", "--data.root", str(digits), "--out", str(run_dir), *TINY]) == 0
    return run_dir


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines()
            if line.startswith("seqmamba sc09 ") and ": error: " in line]


def clips_folder(tmp_path, digits, count=10):
    folder = tmp_path / "samples"
    folder.mkdir()
    for path in sorted(digits.glob("*/*.wav"))[:count]:
        shutil.copy(path, folder / f"{path.parent.name}-{path.name}")
    return folder


def test_train_classifier_leaves_a_run_whose_checkpoint_carries_the_mel_settings(classifier):
    summary = json.loads((classifier / "summary.json").read_text())
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["test_clips"] == 10 and summary["steps"] == 2
    checkpoint = load_checkpoint(classifier / "checkpoints" / "last.ckpt")
    assert checkpoint["hyper_parameters"]["features"] == asdict(MelSettings())  # plain data, no pickled classes
    assert checkpoint["hyper_parameters"]["resnext"]["depth"] == 11
    assert (classifier / "config.yaml").is_file() and (classifier / "logs" / "metrics.csv").is_file()


def test_score_prints_the_table_writes_json_and_caches_the_reference(classifier, digits, tmp_path, capsys,
                                                                     monkeypatch):
    samples = clips_folder(tmp_path, digits)
    out_json = tmp_path / "scores.json"
    ckpt = classifier / "checkpoints" / "last.ckpt"
    args = ["sc09", "score", "--ckpt", str(ckpt), "--samples", str(samples), "--rows", "train,test",
            "--out", str(out_json), "--mis_pairs", "500"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "FID" in out and "mIS" in out and "reference:" in out
    scores = json.loads(out_json.read_text())
    assert SCORE_KEYS <= scores.keys() and scores["n"] == 10
    train = scores["rows"]["train"]
    assert train["n"] == 80 and train["fid"] == pytest.approx(0.0, abs=1e-6) and train["ndb"] == 0.0
    assert scores["rows"]["test"]["n"] == 10 and scores["reference"]["n"] == 80
    assert len(list((ckpt.parent / CACHE_FOLDER).glob("*.npz"))) == 2  # train and test features
    embedded = []
    original = DigitScorer.embed_files
    monkeypatch.setattr(DigitScorer, "embed_files", lambda self, files, what: embedded.append(what)
                        or original(self, files, what))
    assert main(args) == 0
    assert len(embedded) == 1 and embedded[0].startswith("samples")  # reference rows came from the cache
    assert json.loads(out_json.read_text()) == scores


def test_likelihoods_keep_the_middle_of_the_clips(classifier, digits, tmp_path, capsys):
    samples = clips_folder(tmp_path, digits, count=20)
    names = sorted(p.name for p in samples.iterdir())
    (samples / "samples.tsv").write_text("file\tlog_likelihood\n" + "".join(f"{n}\t{-i}\n" for i, n in enumerate(names)))
    out_json = tmp_path / "scores.json"
    assert main(["sc09", "score", "--ckpt", str(classifier / "checkpoints" / "last.ckpt"), "--samples",
                 str(samples), "--likelihoods", str(samples / "samples.tsv"), "--out", str(out_json),
                 "--reference", str(digits)]) == 0
    scores = json.loads(out_json.read_text())
    assert scores["n"] == 11 and scores["likelihood_filter"]["kept"] == 11  # 20 - 8 lowest - 1 highest
    assert scores["reference"]["n"] == 80  # an SC09 folder as reference: its train split
    assert "scored 11 of 20 clips: dropped the 8 least likely (--drop_low 0.4) and the 1 most likely" in \
        capsys.readouterr().out


def test_the_likelihood_filter_line_says_when_too_few_clips_drop_none(classifier, digits, tmp_path, capsys):
    samples = clips_folder(tmp_path, digits, count=2)
    rows = "".join(f"{name}\t{-i}\n" for i, name in enumerate(sorted(p.name for p in samples.iterdir())))
    (samples / "samples.tsv").write_text("file\tlog_likelihood\n" + rows)
    assert main(["sc09", "score", "--classifier", str(classifier / "checkpoints" / "last.ckpt"), "--samples",
                 str(samples), "--likelihoods", str(samples / "samples.tsv"), "--reference", str(digits)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("likelihood filter"))
    assert "scored 2 of 2 clips; none dropped: 2 clips are too few" in line and "dropped the" not in line


def test_odd_clips_are_counted_and_unreadable_ones_skipped_by_name(classifier, digits, tmp_path, capsys):
    samples = clips_folder(tmp_path, digits, count=6)
    mono, rate = soundfile.read(next(samples.iterdir()))
    soundfile.write(samples / "stereo.wav", np.stack([mono, mono], axis=1), rate)
    soundfile.write(samples / "8khz.wav", mono[::2], 8000)
    soundfile.write(samples / "short.wav", mono[:8000], rate)
    (samples / "notes.wav").write_text("not audio")
    out_json = tmp_path / "scores.json"
    assert main(["sc09", "score", "--ckpt", str(classifier / "checkpoints" / "last.ckpt"), "--samples",
                 str(samples), "--out", str(out_json)]) == 0
    err = capsys.readouterr().err
    assert "skipped 1 of 10 files" in err and "notes.wav" in err
    assert "1 of 9 clips stereo" in err and "1 of 9 clips not at 16000 Hz" in err
    assert "1 of 9 clips not 16000 samples long" in err  # the short one; the 8 kHz one lasts 1 s
    assert json.loads(out_json.read_text())["n"] == 9


@pytest.mark.parametrize("case, problem", [
    ("empty", "holds no audio files"),
    ("only-bad", "no readable audio clip"),
    ("no-checkpoint", "no such checkpoint"),
    ("bad-tsv", "needs tab-separated columns"),
    ("bad-rows", "unknown rows"),
    ("nothing", "nothing to score"),
    ("bad-device", "'tpu' is not a device; choose auto, cpu, cuda or cuda:N"),
    ("one-clip", "FID and IS need at least 2"),
])
def test_bad_input_ends_with_one_line_naming_it(classifier, tmp_path, capsys, case, problem):
    samples = tmp_path / "samples"
    samples.mkdir()
    ckpt = classifier / "checkpoints" / "last.ckpt"
    args = ["--samples", str(samples)]
    if case == "only-bad":
        (samples / "a.wav").write_bytes(b"RIFF0000WAVE")
    if case == "no-checkpoint":
        ckpt = tmp_path / "missing.ckpt"
    if case in ("bad-tsv", "bad-rows", "no-checkpoint", "bad-device", "one-clip"):
        shutil.copy(next(classifier.parent.parent.glob("digits*/sc09/one/*.wav")), samples / "a.wav")
    if case == "bad-tsv":
        (samples / "samples.tsv").write_text("name\tscore\na.wav\t1.0\n")
        args += ["--likelihoods", str(samples / "samples.tsv")]
    if case == "bad-rows":
        args += ["--rows", "train,bogus"]
    if case == "bad-device":
        args += ["--device", "tpu"]
    if case == "nothing":
        args = []
    assert main(["sc09", "score", "--ckpt", str(ckpt), *args]) == 2
    errors = error_lines(capsys)
    assert len(errors) == 1 and problem in errors[0]


def test_train_classifier_refuses_a_folder_that_is_not_sc09(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    assert main(["sc09", "train-classifier", "--data", str(tmp_path / "clips"), "--out", str(tmp_path / "run"),
                 *TINY]) == 2
    errors = error_lines(capsys)
    assert len(errors) == 1 and "not an SC09 folder" in errors[0]
    assert not (tmp_path / "run").exists()  # nothing written for bad input
