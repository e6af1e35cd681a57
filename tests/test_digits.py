"""`seqmamba data make-digits`: an SC09-layout set of espeak-ng digits whose test voices never speak in train."""

import numpy as np
import pytest
import soundfile

from seqmamba.cli import main
from seqmamba.data.audio_datasets import SC09_LABELS, sc09_label, sc09_split_files
from seqmamba.data.digits import choose_voices, plan_clips


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "set"
    assert main(["data", "make-digits", "--out", str(out), "--voices", "3", "--per_voice", "1"]) == 0
    return out


def speaker(path):
    return path.name.split("_nohash_")[0]


def test_every_digit_of_every_split_is_a_one_second_16k_clip(digits):
    splits = sc09_split_files(digits)
    assert {split: len(files) for split, files in splits.items()} == {"train": 10, "valid": 10, "test": 10}
    for files in splits.values():
        assert sorted(sc09_label(p) for p in files) == list(range(10))
    for path in splits["test"] + splits["train"][:3]:
        audio, rate = soundfile.read(path)
        assert rate == 16000 and audio.shape == (16000,)
        peak = np.abs(audio).max()
        loud = np.flatnonzero(np.abs(audio) > 0.1 * peak)
        assert 0.15 < peak < 0.95 and len(loud) > 1000 and 4000 < loud.mean() < 12000  # speech, roughly centred
        assert np.abs(audio[:200]).max() < 0.1 * peak  # the edges hold only the light noise


def test_test_and_valid_voices_never_speak_in_train(digits):
    splits = sc09_split_files(digits)
    voices = {split: {speaker(p) for p in files} for split, files in splits.items()}
    assert voices["train"].isdisjoint(voices["test"]) and voices["train"].isdisjoint(voices["valid"])
    rows = [line.split("\t") for line in (digits / "clips.tsv").read_text().splitlines()[1:]]
    assert len(rows) == 30 and all(SC09_LABELS[sc09_label(digits / r[0])] == r[1] for r in rows)


def test_larger_sets_hold_out_whole_variants_and_plans_are_reproducible():
    splits = choose_voices(24, seed=3)
    variants = {split: {v.variant for v in voices} for split, voices in splits.items()}
    assert sum(len(v) for v in splits.values()) == 24 and all(variants.values())
    assert variants["train"].isdisjoint(variants["test"] | variants["valid"])
    assert plan_clips(3, 2, seed=5) == plan_clips(3, 2, seed=5)


def test_refuses_to_write_into_a_folder_with_files(digits, capsys):
    assert main(["data", "make-digits", "--out", str(digits), "--voices", "3"]) == 2
    assert str(digits) in capsys.readouterr().err
    assert main(["data", "make-digits", "--out", str(digits.parent / "new"), "--voices", "2"]) == 2
