"""Audio files in: any rate and channel count to 16 kHz mono; unreadable files named in an InputError."""

import numpy as np
import pytest
import soundfile

from seqmamba.data.audio_io import load_audio, load_audio_segment, write_wav
from seqmamba.errors import InputError


def test_wav_round_trip_keeps_samples_to_16_bit_precision(tmp_path):
    wave = 0.5 * np.sin(np.arange(4000) / 7).astype(np.float32)
    loaded = load_audio(write_wav(tmp_path / "a.wav", wave))
    assert loaded.dtype == np.float32 and loaded.shape == wave.shape
    assert np.abs(loaded - wave).max() <= 1 / 32768


def test_stereo_44k_becomes_mono_16k_at_the_same_pitch(tmp_path):
    rate, seconds = 44100, 0.5
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.4 * np.sin(2 * np.pi * 440 * t)
    soundfile.write(tmp_path / "s.flac", np.stack([tone, tone], axis=1), rate)
    loaded = load_audio(tmp_path / "s.flac")
    assert abs(len(loaded) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(loaded))
    assert abs(np.argmax(spectrum) * 16000 / len(loaded) - 440) < 4
    assert np.abs(loaded).max() == pytest.approx(0.4, abs=0.02)


def test_segment_reads_equal_slices_of_the_whole(tmp_path):
    wave = np.linspace(-0.9, 0.9, 5000, dtype=np.float32)
    path = write_wav(tmp_path / "r.wav", wave)
    assert np.array_equal(load_audio_segment(path, 1234, 100), load_audio(path)[1234:1334])


@pytest.mark.parametrize("content", [b"", b"not audio at all" * 20])
def test_unreadable_files_name_themselves(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load_audio(path)
    assert str(path) in str(error.value)


def test_a_file_with_no_samples_is_refused(tmp_path):
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(InputError, match="no audio samples"):
        load_audio(path)
