"""A solo-piano stand-in for YouTubeMix: music21's Bach chorales played on a General MIDI piano by fluidsynth.

Pieces are drawn in a seeded order, each transposed and given its own tempo, rendered at 16 kHz,
trimmed, levelled and joined with short pauses into one long recording, then cut into one-minute
files `DIR/piano-1.wav .. piano-N.wav` (the YouTubeMix layout: natural order gives the split).
`DIR/pieces.tsv` says which piece starts where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmamba.data.audio_datasets import youtubemix_split_files
from seqmamba.data.audio_io import SAMPLE_RATE, load_audio, write_wav
from seqmamba.errors import InputError
from seqmamba.limits import check_disk, check_memory
from seqmamba.outputs import check_empty_folder, output_folder, written_atomically

FLUIDSYNTH = "fluidsynth"
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/default-GM.sf2"))
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml")
TEMPO_RANGE = (60, 110)  # quarter notes per minute
TRANSPOSE_RANGE = (-5, 6)  # semitones, upper bound exclusive
PIECE_PEAK = 0.8
PAUSE_S = 0.75
FILE_SECONDS = 60
MAX_PIECE_MINUTES = 2.5  # a chorale is at most ~150 quarter notes: 2.5 minutes at the slowest tempo


@dataclass(frozen=True)
class PiecePlan:
    """One score to render and how: its corpus file, transposition and tempo."""

    score: str
    semitones: int
    tempo: int


def soundfont() -> Path:
    """The General MIDI soundfont of Debian's fluid-soundfont-gm."""
    for path in SOUNDFONTS:
        if path.is_file():
            return path
    raise InputError(SOUNDFONTS[0], "no General MIDI soundfont; install the Debian package fluid-soundfont-gm")


def chorale_scores() -> list[str]:
    """Paths of the Bach chorales shipped in music21's corpus (MusicXML only), sorted."""
    try:
        from music21 import corpus
    except ImportError:
        raise InputError("music21", "not installed; pip install music21 (its corpus ships with it)") from None
    return sorted(str(p) for p in corpus.getComposer("bach") if str(p).endswith(SCORE_SUFFIXES))


def render_piece(plan: PiecePlan, sf2: Path) -> np.ndarray:
    """One score as piano audio at 16 kHz, trimmed of silence and levelled to PIECE_PEAK: (T,) float32."""
    from music21 import converter, instrument, tempo

    score = converter.parse(plan.score).transpose(plan.semitones)
    for part in score.parts:
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            part.remove(old, recurse=True)
        part.insert(0, instrument.Piano())
    score.insert(0, tempo.MetronomeMark(number=plan.tempo))
    with tempfile.TemporaryDirectory() as tmp:
        midi, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        score.write("midi", fp=midi)
        result = subprocess.run([FLUIDSYNTH, "-ni", "-q", "-F", str(wav), "-r", str(SAMPLE_RATE), str(sf2), str(midi)],
                                capture_output=True, check=False)
        if result.returncode != 0 or not wav.is_file():
            raise InputError(plan.score, f"fluidsynth failed: {result.stderr.decode(errors='replace').strip()}")
        audio = load_audio(wav)
    loud = np.flatnonzero(np.abs(audio) > 1e-3 * max(float(np.abs(audio).max()), 1e-9))
    audio = audio[loud[0]:loud[-1] + 1] if len(loud) else audio[:0]
    return audio * (PIECE_PEAK / max(float(np.abs(audio).max(initial=0.0)), 1e-9))


def make_piano(out: str | Path, minutes: int = 20, seed: int = 0, workers: int | None = None) -> dict[str, int]:
    """Render `minutes` one-minute piano files into an empty folder; returns file counts per split."""
    out = check_empty_folder(out, "--out")
    if minutes < 3:
        raise InputError("--minutes", f"must be at least 3 (one file per split), got {minutes}")
    if shutil.which(FLUIDSYNTH) is None:
        raise InputError(FLUIDSYNTH, "not found; install the Debian package fluidsynth (apt-get install fluidsynth)")
    sf2 = soundfont()
    rng = np.random.default_rng(seed)
    scores = [str(s) for s in rng.permutation(chorale_scores())]
    if minutes > len(scores) * MAX_PIECE_MINUTES:
        raise InputError("--minutes", f"{minutes} is more than music21's {len(scores)} chorales can fill (under "
                                      f"{len(scores) * MAX_PIECE_MINUTES:.0f} minutes); ask for fewer")
    samples = minutes * FILE_SECONDS * SAMPLE_RATE
    check_memory("--minutes", samples * 4 * 2, f"{minutes} minutes of audio")  # float32, pieces and their join
    check_disk("--minutes", out, samples * 2, f"{minutes} minutes of 16-bit WAV")
    plans = [PiecePlan(s, int(rng.integers(*TRANSPOSE_RANGE)), int(rng.integers(*TEMPO_RANGE, endpoint=True)))
             for s in scores]
    needed, pieces, starts, total = minutes * FILE_SECONDS * SAMPLE_RATE, [], [], 0
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), dtype=np.float32)
    workers = workers or os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for first in range(0, len(plans), workers):  # render a batch at a time until there is enough
            batch = plans[first:first + workers]
            for plan, audio in zip(batch, pool.map(render_piece, batch, [sf2] * len(batch))):
                starts.append((plan, total))
                pieces += [audio, pause]
                total += len(audio) + len(pause)
            if total >= needed:
                break
    if total < needed:
        raise InputError("--minutes", f"music21's chorales fill {total / SAMPLE_RATE / 60:.1f} minutes; ask for fewer")
    recording = np.concatenate(pieces)[:needed]
    output_folder(out, "--out")
    file_len = FILE_SECONDS * SAMPLE_RATE
    for i in range(minutes):
        with written_atomically(out / f"piano-{i + 1}.wav") as tmp:
            write_wav(tmp, recording[i * file_len:(i + 1) * file_len])
    rows = [f"{Path(p.score).name}\t{p.semitones}\t{p.tempo}\t{start / SAMPLE_RATE:.2f}\n"
            for p, start in starts if start < needed]
    with written_atomically(out / "pieces.tsv") as tmp:
        tmp.write_text("score\tsemitones\ttempo\tstart_s\n" + "".join(rows))
    return {split: len(files) for split, files in youtubemix_split_files(out).items()}
