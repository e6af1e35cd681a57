"""A spoken-digit stand-in for SC09: espeak-ng voices saying zero..nine, 1 s at 16 kHz, in the SC09 layout.

A voice is one espeak-ng English accent with one voice variant (`en-gb+f3`). Each clip draws its
pitch, speed, loudness, position in the second and a light background noise, so no two takes are
alike. The split holds out whole variants: no variant of the valid or test split speaks in train,
so test speakers are unseen. Layout: DIR/zero..nine/<voice>_nohash_<take>.wav,
DIR/validation_list.txt, DIR/testing_list.txt, and DIR/clips.tsv describing every clip.

`clean=True` makes the set a short training budget learns from fastest: every word at the same
loudness (speech RMS CLEAN_RMS), no background noise, so silence is digital silence; stored as
FLAC it is small enough (about 8 KB a clip) to carry to a machine without espeak-ng.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from seqmamba.data.audio_datasets import SC09_LABELS, SC09_LISTS
from seqmamba.data.audio_io import SAMPLE_RATE, write_wav
from seqmamba.errors import InputError
from seqmamba.limits import check_disk, check_memory
from seqmamba.outputs import check_empty_folder, written_atomically

ESPEAK = "espeak-ng"
PITCH_RANGE = (25, 75)  # espeak-ng -p, 0..99 (50 is the voice's own)
SPEED_RANGE = (130, 210)  # words per minute; every digit fits in 1 s at 130
PEAK_RANGE = (0.2, 0.9)  # loudest sample of a clip
SNR_DB_RANGE = (25.0, 45.0)  # speech RMS over white-noise RMS
MAX_SHIFT_S = 0.1  # the word sits at the centre of its second, moved by up to this much
CLEAN_RMS = 0.1  # speech RMS of every clip of a clean set (-20 dBFS)
VALID_FRACTION = TEST_FRACTION = 0.1  # of the variants
PROBE_THREADS = 8
CLIP_COLUMNS = ("file", "digit", "voice", "split", "pitch", "speed", "peak", "snr_db")
SPEC_BYTES = 1024  # a planned clip's settings in memory, generously
WAV_BYTES = 2 * SAMPLE_RATE + 44  # a written clip: 1 s of 16-bit PCM and its header


@dataclass(frozen=True)
class Voice:
    """An espeak-ng English accent spoken with one voice variant: one speaker of the stand-in."""

    accent: str
    variant: str

    @property
    def name(self) -> str:
        """File-name-safe speaker id (no '_', which SC09 names use before 'nohash')."""
        return f"{self.variant}-{self.accent}".replace("_", "-")

    @property
    def espeak_voice(self) -> str:
        return f"{self.accent}+{self.variant}"


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip, drawn up front so the set does not depend on worker order."""

    voice: Voice
    digit: int
    take: int
    split: str
    pitch: int
    speed: int
    peak: float | None  # None: loudness-normalised to CLEAN_RMS instead
    snr_db: float | None  # None: no background noise
    shift_s: float
    noise_seed: int
    suffix: str = ".wav"

    @property
    def relative_path(self) -> str:
        return f"{SC09_LABELS[self.digit]}/{self.voice.name}_nohash_{self.take}{self.suffix}"


def _espeak(*args: str) -> bytes:
    """Run espeak-ng, turning a missing binary or a failure into an InputError the CLI prints."""
    if shutil.which(ESPEAK) is None:
        raise InputError(ESPEAK, "not found; install the Debian package espeak-ng (apt-get install espeak-ng)")
    result = subprocess.run([ESPEAK, *args], capture_output=True, check=False)
    if result.returncode != 0:
        raise InputError(ESPEAK, f"'{' '.join(args)}' failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def english_accents() -> list[str]:
    """The English accents espeak-ng itself synthesizes (its gmw/ voices; MBROLA voices need extra data)."""
    rows = [line.split() for line in _espeak("--voices=en").decode().splitlines()[1:]]
    return sorted({row[1] for row in rows if len(row) > 4 and row[4].startswith("gmw/")})


def espeak_variants() -> list[str]:
    """Names of every installed espeak-ng voice variant (`!v/<name>` files)."""
    rows = [line.split() for line in _espeak("--voices=variant").decode().splitlines()[1:]]
    return sorted({row[4].removeprefix("!v/") for row in rows if len(row) > 4 and row[4].startswith("!v/")})


def synthesize(voice: Voice, text: str, pitch: int = 50, speed: int = 175) -> np.ndarray:
    """espeak-ng speech resampled to 16 kHz, (T,) float32."""
    wav = _espeak("-v", voice.espeak_voice, "-p", str(pitch), "-s", str(speed), "--stdout", text)
    rate = int.from_bytes(wav[24:28], "little")  # espeak's streamed header has no valid sizes: read PCM after it
    pcm = np.frombuffer(wav[44:len(wav) - (len(wav) - 44) % 2], dtype="<i2").astype(np.float32) / 32768
    divisor = np.gcd(rate, SAMPLE_RATE)
    return resample_poly(pcm, SAMPLE_RATE // divisor, rate // divisor).astype(np.float32)


def distinct_variants(accent: str, variants: list[str], limit: int) -> list[str]:
    """The first `limit` variants that do not sound exactly like an earlier one (a missing variant file
    falls back to the default voice), probed a few at a time so small sets stay quick."""
    seen, distinct = set(), []
    with ThreadPoolExecutor(max_workers=PROBE_THREADS) as threads:  # espeak-ng runs as a subprocess: threads suffice
        for first in range(0, len(variants), PROBE_THREADS):
            batch = variants[first:first + PROBE_THREADS]
            probes = threads.map(lambda variant: synthesize(Voice(accent, variant), "seven").tobytes(), batch)
            for variant, probe in zip(batch, probes):
                digest = hashlib.sha256(probe).hexdigest()
                if digest not in seen and len(distinct) < limit:
                    seen.add(digest)
                    distinct.append(variant)
            if len(distinct) == limit:
                break
    return distinct


def fit_to_second(speech: np.ndarray, shift_s: float) -> np.ndarray:
    """Trim silence, then centre the word (moved by shift_s) in exactly one second, padding with zeros."""
    loud = np.flatnonzero(np.abs(speech) > max(1e-4, 0.005 * np.abs(speech).max()))
    word = speech[loud[0]:loud[-1] + 1] if len(loud) else speech[:0]
    word = word[:SAMPLE_RATE]
    start = (SAMPLE_RATE - len(word)) // 2 + int(shift_s * SAMPLE_RATE)
    start = min(max(start, 0), SAMPLE_RATE - len(word))
    clip = np.zeros(SAMPLE_RATE, dtype=np.float32)
    clip[start:start + len(word)] = word
    return clip


def render_clip(spec: ClipSpec, out: Path) -> None:
    """Synthesize, place, scale and noise one clip, and write it (run in a worker process)."""
    clip = fit_to_second(synthesize(spec.voice, SC09_LABELS[spec.digit], spec.pitch, spec.speed), spec.shift_s)
    speech = clip[np.abs(clip) > 0]
    rms = float(np.sqrt(np.mean(speech**2))) if len(speech) else 0.0
    if spec.peak is None:  # loudness normalisation, never clipping
        clip *= min(CLEAN_RMS / max(rms, 1e-9), 0.99 / max(float(np.abs(clip).max()), 1e-9))
    else:
        clip *= spec.peak / max(float(np.abs(clip).max()), 1e-9)
    if spec.snr_db is not None:
        noise_rms = float(np.sqrt(np.mean(clip[np.abs(clip) > 0] ** 2))) * 10 ** (-spec.snr_db / 20) if rms else 0.0
        clip += np.random.default_rng(spec.noise_seed).normal(0.0, noise_rms, SAMPLE_RATE).astype(np.float32)
    write_wav(out / spec.relative_path, clip)


def choose_voices(n_voices: int, seed: int) -> dict[str, list[Voice]]:
    """n_voices voices spread over as many variants as possible, split by variant (valid and test unseen in train)."""
    accents = english_accents()
    if not accents:
        raise InputError(ESPEAK, "has no English voices installed; reinstall espeak-ng (espeak-ng-data)")
    rng = np.random.default_rng(seed)
    if n_voices < 3:
        raise InputError("--voices", f"must be at least 3 (one voice per split), got {n_voices}")
    shuffled = [str(v) for v in rng.permutation(espeak_variants())]
    variants = distinct_variants(accents[0], shuffled, limit=n_voices)
    if len(variants) < 3:
        raise InputError(ESPEAK, f"has {len(variants)} distinct voice variants installed; 3 are needed (one per split)")
    voices_of = []  # per variant: the accents it speaks in, spread evenly over the variants
    for k, variant in enumerate(variants):
        count = min(n_voices // len(variants) + (k < n_voices % len(variants)), len(accents))
        voices_of.append([Voice(str(accent), variant) for accent in rng.permutation(accents)[:count]])
    n_held = [max(1, round(len(variants) * f)) for f in (VALID_FRACTION, TEST_FRACTION)]
    bounds = {"test": (0, n_held[1]), "valid": (n_held[1], n_held[1] + n_held[0]),
              "train": (n_held[1] + n_held[0], len(variants))}
    return {split: [v for voices in voices_of[lo:hi] for v in voices] for split, (lo, hi) in bounds.items()}


def plan_clips(n_voices: int, per_voice: int, seed: int, clean: bool = False) -> list[ClipSpec]:
    """Every clip of the set with its drawn pitch, speed, loudness, shift and noise (clean: one loudness, no noise)."""
    rng = np.random.default_rng([seed, 1])
    voices_of_split = choose_voices(n_voices, seed)
    n_clips = sum(map(len, voices_of_split.values())) * len(SC09_LABELS) * per_voice
    check_memory("--per_voice", n_clips * SPEC_BYTES, f"planning {n_clips} clips")
    specs = []
    for split, voices in voices_of_split.items():
        for voice in voices:
            for digit in range(len(SC09_LABELS)):
                for take in range(per_voice):
                    pitch = int(rng.integers(*PITCH_RANGE, endpoint=True))
                    speed = int(rng.integers(*SPEED_RANGE, endpoint=True))
                    peak, snr_db = float(rng.uniform(*PEAK_RANGE)), float(rng.uniform(*SNR_DB_RANGE))
                    specs.append(ClipSpec(
                        voice, digit, take, split, pitch, speed, peak=None if clean else peak,
                        snr_db=None if clean else snr_db, shift_s=float(rng.uniform(-MAX_SHIFT_S, MAX_SHIFT_S)),
                        noise_seed=int(rng.integers(2**31)), suffix=".flac" if clean else ".wav"))
    return specs


def make_digits(out: str | Path, voices: int = 200, per_voice: int = 3, seed: int = 0,
                workers: int | None = None, clean: bool = False) -> dict[str, int]:
    """Render the stand-in into an empty folder with a process pool; returns clip counts per split."""
    out = check_empty_folder(out, "--out")
    if per_voice < 1:
        raise InputError("--per_voice", f"must be at least 1, got {per_voice}")
    specs = plan_clips(voices, per_voice, seed, clean)
    check_disk("--voices, --per_voice", out, len(specs) * WAV_BYTES, f"{len(specs)} clips")
    out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        list(pool.map(render_clip, specs, [out] * len(specs), chunksize=16))
    for split, name in SC09_LISTS.items():
        with written_atomically(out / name) as tmp:
            tmp.write_text("".join(f"{s.relative_path}\n" for s in specs if s.split == split))
    rows = [(s.relative_path, SC09_LABELS[s.digit], s.voice.name, s.split, s.pitch, s.speed,
             "rms" if s.peak is None else f"{s.peak:.3f}", "none" if s.snr_db is None else f"{s.snr_db:.1f}")
            for s in specs]
    lines = ["\t".join(map(str, row)) + "\n" for row in [CLIP_COLUMNS, *rows]]
    with written_atomically(out / "clips.tsv") as tmp:
        tmp.write_text("".join(lines))
    return {split: sum(s.split == split for s in specs) for split in ("train", "valid", "test")}
