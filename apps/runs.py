"""What a run directory holds, read from the files the training commands write: kind, status, figures, checkpoints."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from seqmamba.training.run_folder import resume_command

APP_FOLDER = "app"  # RUNS/app/... : everything the app writes
RUNNING_WITHIN_S = 120  # a run whose metrics changed this recently, without summary.json, is running
KINDS = {  # kind -> the command that makes it
    "pretrain": "pretrain", "finetune": "finetune", "audio": "audio train", "sc09-classifier": "sc09 train-classifier"}


@dataclass
class Run:
    """One run directory as a page shows it."""

    path: Path
    name: str  # relative to the runs folder
    kind: str
    command: str
    status: str  # finished | stopped | running
    status_line: str
    config_text: str
    summary: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    checkpoints: list[tuple[Path, int]] = field(default_factory=list)
    clips: list[Path] = field(default_factory=list)


def run_kind(config: dict) -> str | None:
    """The training command a resolved config.yaml came from, by its model and data sections."""
    model, data = config.get("model") or {}, config.get("data") or {}
    if "unet" in model:
        return "audio"
    if "resnext" in model:
        return "sc09-classifier"
    if "backbone" in model:
        return "finetune" if "manifest" in data else "pretrain"
    return None


def last_progress(run_dir: Path) -> tuple[int, int, float]:
    """(step, epoch, seconds since the metrics were written) from the newest logs*/metrics.csv."""
    csvs = sorted(run_dir.glob("logs*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not csvs:
        return 0, 0, float("inf")
    step = epoch = 0
    with open(csvs[-1], newline="") as f:
        for row in csv.DictReader(f):
            step = max(step, int(row.get("step") or 0))
            epoch = max(epoch, int(float(row.get("epoch") or 0)))
    return step, epoch, time.time() - csvs[-1].stat().st_mtime


def run_status(run_dir: Path, command: str, config: dict) -> tuple[str, str]:
    """finished (summary.json), running (metrics fresh) with its progress, or stopped with the line that resumes it."""
    if (run_dir / "summary.json").is_file():
        return "finished", "finished"
    step, epoch, age = last_progress(run_dir)
    trainer = config.get("trainer") or {}
    if age < RUNNING_WITHIN_S:
        goal = (f" of {trainer['max_steps']} steps" if (trainer.get("max_steps") or -1) > 0 else
                f", epoch {epoch + 1} of {trainer['max_epochs']}" if trainer.get("max_epochs") else "")
        return "running", f"running: step {step}{goal}"
    return "stopped", f"stopped at step {step}; continue with `{resume_command(command, run_dir)}`"


def read_run(run_dir: Path, root: Path) -> Run | None:
    """A run directory (one holding config.yaml of a training command) as a Run, else None."""
    config_path = run_dir / "config.yaml"
    try:
        config_text = config_path.read_text()
        config = yaml.safe_load(config_text) or {}
    except (OSError, yaml.YAMLError):
        return None
    kind = run_kind(config) if isinstance(config, dict) else None
    if kind is None:
        return None
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        summary = {}
    status, status_line = run_status(run_dir, KINDS[kind], config)
    checkpoints = [(p, p.stat().st_size) for p in sorted((run_dir / "checkpoints").glob("*.ckpt"))]
    figures = sorted(run_dir.glob("*.png")) + sorted(run_dir.glob("*/spectrograms.png"))  # the run's, its samples'
    return Run(run_dir, run_dir.relative_to(root).as_posix(), kind, f"seqmamba {KINDS[kind]}", status, status_line,
               config_text, summary, figures, checkpoints,
               sorted(p for p in run_dir.rglob("*.wav") if "checkpoints" not in p.parts)[:8])


def find_runs(root: Path) -> list[Run]:
    """Every run directory under the runs folder (the app's own outputs excluded), by name."""
    runs = []
    for config_path in sorted(root.rglob("config.yaml")):
        if config_path.relative_to(root).parts[0] != APP_FOLDER and (run := read_run(config_path.parent, root)):
            runs.append(run)
    return runs


def checkpoints_of(root: Path, kind: str) -> list[Path]:
    """Checkpoints of finished or stopped runs of one kind, relative to the runs folder: what a form offers."""
    return [path.relative_to(root) for run in find_runs(root) if run.kind == kind for path, _ in run.checkpoints]


def inside(root: Path, relative: str) -> Path | None:
    """The file `relative` names under `root`, or None for absolute paths, '..', and links that lead out."""
    if not relative or relative.startswith(("/", "\\")) or ".." in Path(relative).parts:
        return None
    path = (root / relative).resolve()
    return path if path.is_relative_to(root.resolve()) and path.exists() else None
