"""The audio layouts SaShiMi trains on, read into fixed-length quantized segments.

SC09: one-second spoken digits, either in the Speech Commands layout that state-spaces/s4 reads
(folders zero..nine, `validation_list.txt`, `testing_list.txt`; train = files in neither list) or
in WaveGAN's `sc09.tar.gz` layout (folders train/, valid/, test/ of `Zero_<speaker>_nohash_<n>.wav`).
YouTubeMix: one folder of long recordings, naturally sorted, the first 88% of files train, then
half of the rest valid and the rest test (s4's split). Every file is decoded once up front; corrupt,
empty or silent ones are reported by name on stderr, skipped, and counted.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from seqmamba.data.audio_io import SAMPLE_RATE, load_audio, load_audio_segment
from seqmamba.data.intervals import SPLITS
from seqmamba.data.quantize import encode, start_token
from seqmamba.errors import InputError

SC09_LABELS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SC09_LISTS = {"valid": "validation_list.txt", "test": "testing_list.txt"}
WAVEGAN_FOLDERS = {"train": "train", "valid": "valid", "test": "test"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aif", ".aiff", ".opus")
YOUTUBEMIX_TRAIN_FRACTION = 0.88
SILENCE_PEAK = 1e-4  # about -80 dBFS: a file whose loudest sample is below this holds nothing to learn
IGNORE_INDEX = -100  # label of padding: cross-entropy skips it


def natural_key(path: Path) -> list[int | str]:
    """Sort key that puts 'clip2' before 'clip10', as people number files."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _audio_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]


def sc09_split_files(root: str | Path) -> dict[str, list[Path]]:
    """SC09 clips per split (train/valid/test), in either public layout, sorted for reproducibility."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder; give the folder that holds zero/..nine/ (or train/ valid/ test/)")
    if not (root / SC09_LABELS[0]).is_dir() and all((root / f).is_dir() for f in WAVEGAN_FOLDERS.values()):
        return {split: sorted(_audio_files(root / folder)) for split, folder in WAVEGAN_FOLDERS.items()}
    missing = [name for name in (*SC09_LABELS, *SC09_LISTS.values()) if not (root / name).exists()]
    if missing:
        raise InputError(root, f"not an SC09 folder: {', '.join(missing)} missing; expected folders zero..nine "
                               "with validation_list.txt and testing_list.txt (make one: seqmamba data make-digits)")
    held_out = {split: _read_list(root / name) for split, name in SC09_LISTS.items()}
    splits: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for label in SC09_LABELS:
        for path in sorted(_audio_files(root / label)):
            relative = f"{label}/{path.name}"
            split = next((s for s, names in held_out.items() if relative in names), "train")
            splits[split].append(path)
    return splits


def _read_list(path: Path) -> set[str]:
    """Entries of a Speech Commands split list ('zero/abc_nohash_0.wav' per line)."""
    return {line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()}


def sc09_label(path: str | Path) -> int:
    """Digit (index into SC09_LABELS) of an SC09 clip, from its folder or WaveGAN's 'Seven_...' file prefix."""
    path = Path(path)
    for name in (path.parent.name.lower(), path.name.split("_", 1)[0].lower()):
        if name in SC09_LABELS:
            return SC09_LABELS.index(name)
    raise InputError(path, f"cannot tell the digit: neither its folder nor its name starts with one of {SC09_LABELS}")


def youtubemix_split_files(root: str | Path) -> dict[str, list[Path]]:
    """Recordings per split: natural order, first 88% train, then half of the rest valid, the rest test."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "no such folder; give the folder of one-minute recordings")
    files = sorted(_audio_files(root), key=natural_key)
    if len(files) < len(SPLITS):
        raise InputError(root, f"{len(files)} audio files found; the YouTubeMix layout needs at least 3 "
                               f"(one per split) with suffixes {', '.join(AUDIO_SUFFIXES)}")
    n_train = min(int(len(files) * YOUTUBEMIX_TRAIN_FRACTION), len(files) - 2)
    n_valid = max(1, (len(files) - n_train) // 2)
    return {"train": files[:n_train], "valid": files[n_train:n_train + n_valid], "test": files[n_train + n_valid:]}


@dataclass(frozen=True)
class AudioFile:
    """A decodable, non-silent file and its length in samples at SAMPLE_RATE."""

    path: Path
    num_samples: int


def scan_audio_files(files: list[Path], what: str, sample_rate: int = SAMPLE_RATE) -> tuple[list[AudioFile], list[str]]:
    """Decode every file once; report corrupt, empty or silent ones by name, skip them, and count them."""
    usable, skipped = [], []
    for path in files:
        try:
            waveform = load_audio(path, sample_rate)
        except InputError as error:
            skipped.append(f"{path}: {error.problem}")
            continue
        if np.abs(waveform).max() < SILENCE_PEAK:
            skipped.append(f"{path}: silent (no sample above {SILENCE_PEAK})")
            continue
        usable.append(AudioFile(path, len(waveform)))
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if skipped:
        print(f"{what}: skipped {len(skipped)} of {len(files)} files (corrupt, empty or silent)", file=sys.stderr)
    return usable, skipped


@dataclass(frozen=True)
class Segment:
    """Samples [start, start + num_samples) of one file: one training or evaluation sequence."""

    path: Path
    start: int
    num_samples: int


def clip_segments(files: list[AudioFile], seq_len: int) -> list[Segment]:
    """One segment per clip, its first seq_len samples (SC09: a clip is one sequence)."""
    return [Segment(f.path, 0, min(f.num_samples, seq_len)) for f in files]


def tiled_segments(files: list[AudioFile], seq_len: int) -> list[Segment]:
    """Consecutive non-overlapping seq_len segments covering every file, the last one short (s4's chunking)."""
    return [Segment(f.path, start, min(seq_len, f.num_samples - start))
            for f in files for start in range(0, f.num_samples, seq_len)]


def autoregressive_pair(codes: torch.Tensor, seq_len: int, bits: int) -> dict[str, torch.Tensor]:
    """Labels = codes padded with IGNORE_INDEX to seq_len; inputs = the start token then the codes shifted by one."""
    n = min(len(codes), seq_len)
    labels = torch.full((seq_len,), IGNORE_INDEX, dtype=torch.int64)
    labels[:n] = codes[:n]
    input_ids = torch.full((seq_len,), start_token(bits), dtype=torch.int64)
    input_ids[1:n] = codes[:n - 1]
    return {"input_ids": input_ids, "labels": labels}


class QuantizedSegments(Dataset):
    """Segments decoded, min-max scaled and quantized per segment (as s4 does) into autoregressive pairs."""

    def __init__(self, segments: list[Segment], seq_len: int, quantization: str = "mu-law", bits: int = 8) -> None:
        self.segments, self.seq_len, self.quantization, self.bits = segments, seq_len, quantization, bits

    def __len__(self) -> int:
        return len(self.segments)

    def waveform(self, index: int) -> np.ndarray:
        """The raw samples of one segment, (T,) float32, T <= seq_len."""
        segment = self.segments[index]
        return load_audio_segment(segment.path, segment.start, segment.num_samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        codes = encode(torch.from_numpy(self.waveform(index)), self.quantization, self.bits)  # (T,)
        return autoregressive_pair(codes, self.seq_len, self.bits)
