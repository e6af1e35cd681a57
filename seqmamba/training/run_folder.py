"""Run folders: which files a run wrote is recorded beside them, so `--overwrite` removes those and nothing else.

A run records its files (`.seqmamba-written.json`, see `seqmamba.outputs`) before it writes them: the config,
checkpoints, the loggers' files, summary.json, loss.png and the command's own (confusion.csv ...). TensorBoard's
event files, named as they are created, are known by their name. A folder written before runs kept this record
is read by the exact names a run writes. A user's own files in a run folder (figure1.png, logs/notes.txt) are
never removed, and a folder of other files that holds no run is never used for one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from seqmamba.errors import InputError
from seqmamba.outputs import forget_written, other_entries, record_written, written_files

RUN_MARKERS = ("config.yaml", "checkpoints", "summary.json")  # any of these: the folder holds a run
RUN_FILES = ("checkpoints/last.ckpt", "checkpoints/best.ckpt", "tensorboard/hparams.yaml", "summary.json", "loss.png")
RUN_SUBFOLDERS = re.compile(r"checkpoints|tensorboard|logs(-\d+)?")  # removed when --overwrite leaves them empty
EVENT_FILES = re.compile(r"tensorboard/events\.out\.tfevents\.[^/]+")  # TensorBoard's, named when created
TEMPORARIES = re.compile(r"\.summary\.json\.tmp|checkpoints/\.(last|best)\.ckpt\.tmp-\d+")  # left by a kill mid-write
UNRECORDED_RUN_FILES = re.compile(  # every name a run writes: the files of a run that predates the record
    r"config(-resumed(-\d+)?)?\.yaml|summary\.json|loss\.png|confusion\.(csv|png)|checkpoints/(last|best)\.ckpt"
    r"|logs(-\d+)?/(metrics\.csv|hparams\.yaml)|tensorboard/hparams\.yaml")


def holds_run(run_dir: Path) -> bool:
    """Whether a folder already holds a run's files."""
    return any((run_dir / marker).exists() for marker in RUN_MARKERS)


def check_run_dir(run_dir: Path, resume: Path | None, overwrite: bool) -> None:
    """A run directory is a folder that is new or empty, resumed, or explicitly overwritten."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(run_dir, "--out names an existing file; give a folder path")
    if resume is not None and overwrite:
        raise InputError(run_dir, "--resume and --overwrite contradict each other; choose one")
    if holds_run(run_dir):
        if resume is None and not overwrite:
            raise InputError(run_dir, "already holds a run; continue it with --resume last, start over with "
                                      "--overwrite (deletes the run's checkpoints, logs and results, nothing else), "
                                      "or choose another --out")
    elif names := other_entries(run_dir):
        raise InputError(run_dir, f"holds files that are not a seqmamba run ({', '.join(names[:3])}"
                                  f"{' ...' if len(names) > 3 else ''}); give a new or empty --out")


def run_files(run_dir: Path) -> list[Path]:
    """The files of the run in a folder: those it recorded (or, for an older run, named as a run names them)."""
    if not run_dir.is_dir():
        return []
    recorded = written_files(run_dir)
    candidates = {run_dir / name for name in recorded}
    for entry in run_dir.iterdir():
        inside = entry.iterdir() if entry.is_dir() and RUN_SUBFOLDERS.fullmatch(entry.name) else ()
        candidates.update([entry, *inside])
    found = []
    for path in sorted(p for p in candidates if p.is_symlink() or p.is_file()):
        name = path.relative_to(run_dir).as_posix()
        ours = name in recorded if recorded else UNRECORDED_RUN_FILES.fullmatch(name)
        if ours or EVENT_FILES.fullmatch(name) or TEMPORARIES.fullmatch(name):
            found.append(path)
    return found


def record_run_files(run_dir: Path, names: Iterable[str]) -> None:
    """Record the files a run is about to write (and adopt those of an older run kept in the folder)."""
    record_written(run_dir, [*(p.relative_to(run_dir).as_posix() for p in run_files(run_dir)), *RUN_FILES, *names])


def remove_run_files(run_dir: Path) -> None:
    """--overwrite: delete the earlier run's files, and its subfolders where they end up empty; nothing else."""
    for path in run_files(run_dir):
        path.unlink()
    for folder in run_dir.iterdir():
        if folder.is_dir() and RUN_SUBFOLDERS.fullmatch(folder.name) and not any(folder.iterdir()):
            folder.rmdir()
    forget_written(run_dir)


def resume_command(command: str, run_dir: Path) -> str:
    """The command that continues a stopped run: what a stop line, a full disk and the app's Runs page all print."""
    return f"seqmamba {command} --config {run_dir / 'config.yaml'} --resume last"
