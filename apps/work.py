"""The app's three jobs, each a call of the command that does it, then a read of the files it wrote."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from apps.jobs import Job

TABLE_ROWS = 5000  # rows of the per-read table a page shows (the TSV has all)


def classify_job(job: Job, reads: Path, checkpoint: Path, device: str) -> dict:
    """`seqmamba classify` on the uploaded reads, then the per-species counts and a Kraken-style report."""
    from seqmamba.commands.classify import classify

    predictions = job.folder / "predictions.tsv"
    job.message = "classifying reads"
    classify([reads], ckpt=checkpoint, out=predictions, report=job.folder / "report.kraken.txt", device=device)
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    counts = Counter(row["call"] for row in rows)
    header = [name for name in (rows[0].keys() if rows else []) if name != "file"]
    return {"header": header, "rows": [[row[name] for name in header] for row in rows[:TABLE_ROWS]],
            "total": len(rows), "counts": counts.most_common()}


def generate_job(job: Job, checkpoint: Path, n: int, seconds: float, temperature: float, top_p: float,
                 device: str) -> dict:
    """`seqmamba audio generate` into the job's folder, then one spectrogram per clip; clips best first."""
    from seqmamba.commands.audio import generate
    from seqmamba.data.audio_io import SAMPLE_RATE, load_audio
    from seqmamba.spectrograms import spectrogram_sheet

    job.message = f"generating {n} clips of {seconds:g} s"
    generate(ckpt=checkpoint, out=job.folder, n=n, seconds=seconds, temperature=temperature, top_p=top_p, device=device)
    job.message = "drawing spectrograms"
    with open(job.folder / "samples.tsv", newline="") as f:
        clips = [(row["file"], float(row["log_likelihood"])) for row in csv.DictReader(f, delimiter="\t")][::-1]
    for name, _ in clips:
        wave = np.asarray(load_audio(job.folder / name, SAMPLE_RATE))
        spectrogram_sheet({name: [wave]}, job.folder / f"{Path(name).stem}.png", columns=1)
    return {"clips": clips}


def score_job(job: Job, classifier: Path, samples: Path, device: str) -> dict:
    """`seqmamba sc09 score` of a samples folder beside the classifier's train and test rows."""
    from seqmamba.commands.sc09 import score

    job.message = "scoring clips"
    result = score(ckpt=classifier, samples=samples, rows="train,test", out=job.folder / "scores.json", device=device)
    rows = {"samples": {k: v for k, v in result.items() if k not in ("rows", "reference", "likelihood_filter")},
            **result.get("rows", {})}
    return {"rows": rows, "reference": result.get("reference", {})}
