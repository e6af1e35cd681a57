"""`seqmamba data make-piano`: one-minute 16 kHz piano files in the YouTubeMix layout."""

import numpy as np
import soundfile

from seqmamba.cli import main
from seqmamba.data.audio_datasets import youtubemix_split_files


def test_makes_three_minutes_split_one_file_each(tmp_path, capsys):
    out = tmp_path / "piano"
    assert main(["data", "make-piano", "--out", str(out), "--minutes", "3"]) == 0
    splits = youtubemix_split_files(out)
    assert [p.name for p in splits["train"] + splits["valid"] + splits["test"]] == [
        "piano-1.wav", "piano-2.wav", "piano-3.wav"]
    for path in splits["valid"] + splits["test"]:
        audio, rate = soundfile.read(path)
        assert rate == 16000 and audio.shape == (60 * 16000,)
        assert 0.5 < np.abs(audio).max() <= 0.81  # pieces are levelled
        seconds = np.abs(audio).reshape(60, 16000).max(axis=1)
        assert (seconds > 0.01).mean() > 0.9  # music nearly throughout: pauses between pieces are short
    pieces = (out / "pieces.tsv").read_text().splitlines()
    assert pieces[0].split("\t") == ["score", "semitones", "tempo", "start_s"] and len(pieces) > 2
    assert main(["data", "make-piano", "--out", str(out), "--minutes", "3"]) == 2  # never over existing files
    assert main(["data", "make-piano", "--out", str(tmp_path / "two"), "--minutes", "2"]) == 2
    assert not (tmp_path / "two").exists()
