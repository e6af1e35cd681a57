"""A trained digit classifier's view of folders of clips: class probabilities and 1024-d features.

The classifier is one a `seqmamba sc09 train-classifier` run trained, with the mel settings it was
trained on (the command loads both from its checkpoint). Reference sets (the training split) are embedded
once and cached beside the checkpoint, keyed by the classifier file and the reference files' names,
sizes and mtimes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torch.nn.functional as F

from seqmamba.data.audio_datasets import AUDIO_SUFFIXES
from seqmamba.errors import InputError
from seqmamba.metrics.mel_features import MelFeatures, MelSettings, load_clip
from seqmamba.nn.resnext import ResNeXt

CACHE_FOLDER = "sc09_features"


@dataclass
class Embedding:
    """What the classifier makes of a set of clips."""

    files: list[Path]
    probs: np.ndarray  # (N, classes) p(y|x)
    features: np.ndarray  # (N, feature_size) penultimate activations


class DigitScorer:
    """Mel front-end and ResNeXt of one trained classifier, in eval mode on the classifier's device."""

    def __init__(self, classifier: ResNeXt, settings: MelSettings, source: str | Path, batch_size: int = 256) -> None:
        """`source`: the classifier's file, which keys the reference features cached beside it."""
        self.device = next(classifier.parameters()).device
        self.checkpoint_path = Path(source)
        self.settings = settings
        self.batch_size = batch_size
        self.mel = MelFeatures(settings).to(self.device)
        self.classifier = classifier.eval()

    @torch.no_grad()
    def embed_waveforms(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, T) clips -> probabilities (N, classes) and features (N, D), batch by batch."""
        probs, features = [], []
        for start in range(0, len(waveforms), self.batch_size):
            batch = torch.from_numpy(waveforms[start:start + self.batch_size]).to(self.device)  # (B, T)
            feature = self.classifier.features(self.mel(batch)).float()  # (B, D)
            probs.append(F.softmax(self.classifier.classifier(feature), dim=1).cpu().numpy())
            features.append(feature.cpu().numpy())
        return np.concatenate(probs), np.concatenate(features)

    def embed_files(self, files: list[Path], what: str) -> Embedding:
        """Read (reporting odd and unreadable files, counted) and embed clips; InputError when none is readable."""
        waveforms, readable = read_clips(files, self.settings, what)
        return Embedding(readable, *self.embed_waveforms(waveforms))

    def embed_reference(self, files: list[Path], what: str) -> Embedding:
        """embed_files, cached beside the checkpoint (recomputed when any file or the classifier changes)."""
        cache = self.checkpoint_path.parent / CACHE_FOLDER / f"{cache_key(self.checkpoint_path, files)}.npz"
        if cache.is_file():
            with np.load(cache) as stored:
                return Embedding([Path(p) for p in stored["files"]], stored["probs"], stored["features"])
        embedding = self.embed_files(files, what)
        try:
            cache.parent.mkdir(exist_ok=True)
            tmp = cache.with_name(f".{cache.stem}.tmp-{os.getpid()}.npz")
            np.savez(tmp, files=np.array([str(p) for p in embedding.files]), probs=embedding.probs,
                     features=embedding.features)
            os.replace(tmp, cache)
        except OSError as error:  # a read-only checkpoint folder: score anyway, uncached
            print(f"{what}: features not cached ({error.strerror or error})", file=sys.stderr)
        return embedding


def cache_key(checkpoint_path: Path, files: list[Path]) -> str:
    """Hash of the classifier file and every reference file's path, size and mtime."""
    def stamp(path: Path) -> list:
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]

    text = json.dumps([stamp(checkpoint_path), *map(stamp, files)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def audio_files(folder: str | Path) -> list[Path]:
    """The audio files directly inside a folder, sorted; InputError when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "no such folder of clips")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise InputError(folder, f"holds no audio files ({', '.join(AUDIO_SUFFIXES)}); give the folder the clips "
                                 "were written to")
    return files


def read_clips(files: list[Path], settings: MelSettings, what: str) -> tuple[np.ndarray, list[Path]]:
    """(N, T) clips of the protocol's rate and length; odd files counted on stderr, unreadable ones skipped by name."""
    clips, readable, skipped, odd = [], [], [], Counter()
    for path in files:
        try:
            clips.append(load_clip(path, settings))
        except InputError as error:
            skipped.append(f"{path.name} ({error.problem})")
            continue
        readable.append(path)
        try:
            info = soundfile.info(path)
        except (soundfile.LibsndfileError, RuntimeError):
            continue  # decoded by librosa's fallback: no header to inspect
        odd["stereo or multichannel, mixed to mono"] += info.channels > 1
        odd[f"not at {settings.sample_rate} Hz, resampled"] += info.samplerate != settings.sample_rate
        length = round(info.frames * settings.sample_rate / info.samplerate)
        odd[f"not {settings.clip_samples} samples long, padded or cut"] += length != settings.clip_samples
    if skipped:
        print(f"{what}: skipped {len(skipped)} of {len(files)} files that are not readable audio: "
              f"{'; '.join(skipped[:5])}{' ...' if len(skipped) > 5 else ''}", file=sys.stderr)
    for problem, count in odd.items():
        if count:
            print(f"{what}: {count} of {len(readable)} clips {problem}", file=sys.stderr)
    if not clips:
        raise InputError(files[0].parent if files else what, "no readable audio clip to score")
    return np.stack(clips), readable


def read_likelihoods(tsv: str | Path, folder: str | Path) -> tuple[list[Path], np.ndarray]:
    """`seqmamba audio generate`'s samples.tsv (columns file, log_likelihood) -> clip paths in folder, (N,) values."""
    tsv, folder = Path(tsv), Path(folder)
    if not tsv.is_file():
        raise InputError(tsv, "no such likelihood file; `seqmamba audio generate` writes DIR/samples.tsv")
    try:
        lines = tsv.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise InputError(tsv, f"not UTF-8 text (byte {error.start}); give the samples.tsv of audio generate") from None
    header = lines[0].split("\t") if lines else []
    if "file" not in header or "log_likelihood" not in header:
        raise InputError(tsv, f"needs tab-separated columns file and log_likelihood, found {header}")
    file_col, ll_col = header.index("file"), header.index("log_likelihood")
    files, values, lines_of = [], [], {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            value = float(fields[ll_col])
            name = fields[file_col]
        except (IndexError, ValueError):
            raise InputError(f"{tsv}:{number}", "needs a file name and a numeric log_likelihood") from None
        if not np.isfinite(value):
            raise InputError(f"{tsv}:{number}", f"log_likelihood {fields[ll_col]} is not finite")
        path = Path(name) if Path(name).is_absolute() else folder / Path(name).name
        if not path.is_file():
            raise InputError(f"{tsv}:{number}", f"names {name}, which is not in {folder}")
        if path.resolve() in lines_of:
            raise InputError(f"{tsv}:{number}", f"lists {name} again (first on line {lines_of[path.resolve()]}); "
                                                "each clip needs one likelihood")
        lines_of[path.resolve()] = number
        files.append(path)
        values.append(value)
    if not files:
        raise InputError(tsv, "lists no clips")
    if missing := [f for f in audio_files(folder) if f.resolve() not in lines_of]:
        raise InputError(tsv, f"has no likelihood for {len(missing)} of the {len(missing) + len(files)} clips in "
                              f"{folder} (e.g. {missing[0].name}); give the samples.tsv written with these clips")
    return files, np.array(values)
