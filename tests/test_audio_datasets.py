"""Audio layouts: SC09 and YouTubeMix splits, bad files reported and skipped, autoregressive pairs."""

from pathlib import Path

import numpy as np
import pytest
import torch

from seqmamba.data.audio_datasets import (
    IGNORE_INDEX,
    SC09_LABELS,
    AudioFile,
    autoregressive_pair,
    sc09_label,
    sc09_split_files,
    scan_audio_files,
    tiled_segments,
    youtubemix_split_files,
)
from seqmamba.data.audio_io import write_wav
from seqmamba.errors import InputError

TONE = 0.3 * np.sin(np.arange(800) / 3).astype(np.float32)


def speech_commands_folder(root: Path) -> Path:
    """Three speakers per digit; b is listed for validation, c for test, a is in neither (train)."""
    for label in SC09_LABELS:
        for speaker in "abc":
            write_wav(root / label / f"{speaker}_nohash_0.wav", TONE)
    write_wav(root / "bed" / "a_nohash_0.wav", TONE)  # another Speech Commands word: not SC09
    (root / "validation_list.txt").write_text("".join(f"{d}/b_nohash_0.wav\n" for d in SC09_LABELS) + "bed/b.wav\n")
    (root / "testing_list.txt").write_text("".join(f"{d}/c_nohash_0.wav\n" for d in SC09_LABELS))
    return root


def test_sc09_splits_follow_the_lists_and_train_is_neither(tmp_path):
    splits = sc09_split_files(speech_commands_folder(tmp_path))
    assert {split: len(files) for split, files in splits.items()} == {"train": 10, "valid": 10, "test": 10}
    assert {p.name for p in splits["train"]} == {"a_nohash_0.wav"}
    assert {p.name for p in splits["test"]} == {"c_nohash_0.wav"}
    assert sorted(sc09_label(p) for p in splits["valid"]) == list(range(10))


def test_sc09_reads_wavegans_archive_layout(tmp_path):
    for folder in ("train", "valid", "test"):
        write_wav(tmp_path / folder / f"Seven_{folder}_nohash_0.wav", TONE)
    splits = sc09_split_files(tmp_path)
    assert [p.parent.name for p in splits["valid"]] == ["valid"]
    assert sc09_label(splits["test"][0]) == SC09_LABELS.index("seven")


def test_not_an_sc09_folder_says_what_is_missing(tmp_path):
    (tmp_path / "zero").mkdir()
    with pytest.raises(InputError, match="validation_list.txt"):
        sc09_split_files(tmp_path)


def test_youtubemix_split_is_natural_order_88_6_6(tmp_path):
    for i in range(1, 26):
        write_wav(tmp_path / f"out{i}.wav", TONE)
    splits = youtubemix_split_files(tmp_path)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [22, 1, 2]
    assert [p.name for p in splits["train"][:3]] == ["out1.wav", "out2.wav", "out3.wav"]
    assert [p.name for p in splits["test"]] == ["out24.wav", "out25.wav"]


def test_bad_files_are_named_skipped_and_counted(tmp_path, capsys):
    good = write_wav(tmp_path / "good.wav", TONE)
    silent = write_wav(tmp_path / "silent.wav", np.zeros(800, np.float32))
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF....garbage")
    (tmp_path / "empty.wav").write_bytes(b"")
    files = [good, silent, tmp_path / "corrupt.wav", tmp_path / "empty.wav"]
    usable, skipped = scan_audio_files(files, "train split")
    assert usable == [AudioFile(good, 800)] and len(skipped) == 3
    err = capsys.readouterr().err
    for name in ("silent.wav", "corrupt.wav", "empty.wav"):
        assert name in err
    assert "skipped 3 of 4 files" in err


def test_pairs_shift_by_one_behind_the_start_token_and_pad_with_the_ignore_index():
    codes = torch.tensor([5, 6, 7])
    pair = autoregressive_pair(codes, seq_len=5, bits=8)
    assert pair["labels"].tolist() == [5, 6, 7, IGNORE_INDEX, IGNORE_INDEX]
    assert pair["input_ids"].tolist() == [128, 5, 6, 128, 128]
    cut = autoregressive_pair(torch.arange(10), seq_len=4, bits=4)
    assert cut["labels"].tolist() == [0, 1, 2, 3] and cut["input_ids"].tolist() == [8, 0, 1, 2]


def test_tiles_cover_every_sample_once():
    files = [AudioFile(Path("a.wav"), 10), AudioFile(Path("b.wav"), 8)]
    tiles = tiled_segments(files, seq_len=4)
    assert [(t.path.name, t.start, t.num_samples) for t in tiles] == [
        ("a.wav", 0, 4), ("a.wav", 4, 4), ("a.wav", 8, 2), ("b.wav", 0, 4), ("b.wav", 4, 4)]
