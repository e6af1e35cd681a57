"""Read any common audio file as 16 kHz mono float32, and write WAVs, so every audio job sees one format."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import soundfile

from seqmamba.errors import InputError

SAMPLE_RATE = 16000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a file (soundfile first, librosa's decoders otherwise), mix to mono and resample: (T,) in [-1, 1]."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such audio file")
    try:
        data, source_rate = soundfile.read(path, dtype="float32", always_2d=True)  # (T, C)
        waveform = data.mean(axis=1)
    except (soundfile.LibsndfileError, RuntimeError, ValueError):
        waveform, source_rate = _load_with_librosa(path)
    if waveform.size == 0:
        raise InputError(path, "the file holds no audio samples; replace or remove it")
    if source_rate <= 0:
        raise InputError(path, f"its header gives a sample rate of {source_rate} Hz; re-encode the file")
    if source_rate != sample_rate:
        import librosa

        waveform = librosa.resample(waveform, orig_sr=source_rate, target_sr=sample_rate)
    if not np.isfinite(waveform).all():
        raise InputError(path, "the decoded audio holds NaN or infinite samples; re-encode the file")
    return np.clip(waveform, -1.0, 1.0).astype(np.float32, copy=False)


def load_audio_segment(path: str | Path, start: int, frames: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Samples [start, start + frames) at sample_rate: read from disk alone when no resampling is needed."""
    try:
        info = soundfile.info(path)
    except (soundfile.LibsndfileError, RuntimeError):
        info = None
    if info is None or info.samplerate != sample_rate:
        return load_audio(path, sample_rate)[start:start + frames]
    data, _ = soundfile.read(path, start=start, frames=frames, dtype="float32", always_2d=True)  # (T, C)
    return np.clip(data.mean(axis=1), -1.0, 1.0).astype(np.float32, copy=False)


def _load_with_librosa(path: Path) -> tuple[np.ndarray, int]:
    """Formats libsndfile lacks (mp3 on old builds, m4a...) through librosa's audioread fallback."""
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns when it falls back to audioread
            waveform, rate = librosa.load(path, sr=None, mono=True)
    except Exception as err:  # noqa: BLE001 - every decoder failure means the same thing to the user
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise InputError(path, f"cannot decode as audio ({reason}); "
                               "convert it to WAV or FLAC, or remove it") from None
    return waveform.astype(np.float32, copy=False), int(rate)


def write_wav(path: str | Path, waveform: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write (T,) float samples in [-1, 1] as 16-bit PCM WAV, the format every player reads (FLAC for a .flac path)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.clip(np.asarray(waveform, dtype=np.float32).reshape(-1), -1.0, 1.0)
    soundfile.write(path, samples, sample_rate, subtype="PCM_16")
    return path
