"""Outputs named by users (--out): never written over an input or a file we did not write.

- a folder is made on demand; a path naming a file where a folder is wanted is refused;
- `folder_lock` lets one seqmamba command at a time write into a folder (a lock file held with flock, which the
  OS releases when the process ends, so a killed command never leaves a folder locked);
- `record_written` keeps, in the folder, the names of the files our commands wrote there: what a later run may
  replace or remove, and nothing else;
- `written_atomically` gives a temporary path that is renamed over the output once it is complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from seqmamba.errors import InputError

LOCK_NAME = ".seqmamba.lock"
WRITTEN_NAME = ".seqmamba-written.json"  # {"files": [paths relative to the folder]}
BOOKKEEPING = (LOCK_NAME, WRITTEN_NAME)  # ours, in every folder we write; a folder holding only these is empty


def check_output_folder(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output path that names an existing file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(path, f"{flag} names an existing file; give a folder path")
    return path


def output_folder(path: str | Path, flag: str) -> Path:
    """Create (if needed) and return a folder for a command's outputs; a path naming a file is refused."""
    path = check_output_folder(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(path, f"cannot create the {flag} folder ({error.strerror})") from None
    return path


def other_entries(folder: Path) -> list[str]:
    """Names in a folder other than our bookkeeping files, sorted: what makes a folder not empty."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in BOOKKEEPING)


def check_empty_folder(path: str | Path, flag: str) -> Path:
    """Refuse an output folder that already holds files: a command that fills a folder replaces nothing in it."""
    path = check_output_folder(path, flag)
    if names := other_entries(path):
        raise InputError(path, f"is not empty (holds {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}); "
                               f"give a new or empty {flag} folder (files already there are kept)")
    return path


@contextmanager
def folder_lock(folder: str | Path, flag: str) -> Iterator[Path]:
    """Hold the folder for this process: a second seqmamba command writing into it is refused with one line.

    A command that fails leaves no trace: the lock file goes again if this command made it, and so do the folders it
    created while nothing else is in them.
    """
    created = [p for p in (Path(folder), *Path(folder).parents) if not p.exists()]  # innermost first
    folder = output_folder(folder, flag)
    new_lock = not (folder / LOCK_NAME).exists()
    try:
        handle = open(folder / LOCK_NAME, "a")
    except OSError as error:
        remove_if_unused(folder, created, new_lock)
        raise InputError(folder, f"cannot write into the {flag} folder ({error.strerror})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno != errno.EWOULDBLOCK:  # a file system without locks: write, unguarded
            print(f"warning: {folder / LOCK_NAME}: cannot lock it ({error.strerror}); make sure no other seqmamba "
                  "command writes into this folder", file=sys.stderr)
        else:
            handle.close()
            raise InputError(folder, f"another seqmamba command is writing into this folder now; wait for it to end "
                                     f"or choose another {flag}") from None
    try:
        yield folder
    except BaseException:
        remove_if_unused(folder, created, new_lock)  # while still held
        raise
    finally:
        handle.close()  # releases the lock; the lock file stays (removing it would race with a waiting command)


def remove_if_unused(folder: Path, created: list[Path], new_lock: bool) -> None:
    """Undo a failed command's traces: its lock file, and the folders it created (innermost first) if left empty."""
    with contextlib.suppress(OSError):
        if new_lock:
            (folder / LOCK_NAME).unlink(missing_ok=True)
        if created and not other_entries(folder):
            for path in created:
                path.rmdir()


def written_files(folder: Path) -> set[str]:
    """The files (relative paths) our commands recorded writing into a folder."""
    path = folder / WRITTEN_NAME
    if not path.is_file():
        return set()
    try:
        names = json.loads(path.read_text())["files"]
        if not isinstance(names, list) or not all(isinstance(n, str) and safe_relative(n) for n in names):
            raise ValueError
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InputError(path, "is not a list of the files seqmamba wrote here (damaged or edited); move it away "
                               "and remove the files of the earlier output yourself") from None
    return set(names)


def safe_relative(name: str) -> bool:
    """A recorded name stays inside its folder: relative, no '..', nothing outside."""
    parts = PurePosixPath(name).parts
    return bool(parts) and not PurePosixPath(name).is_absolute() and ".." not in parts


def record_written(folder: Path, names: Iterable[str]) -> None:
    """Add names to the folder's record, before they are written (a kill then leaves nothing unrecorded)."""
    files = sorted(written_files(folder) | set(names))
    with written_atomically(folder / WRITTEN_NAME) as tmp:
        tmp.write_text(json.dumps({"written_by": "seqmamba", "files": files}, indent=1) + "\n")


def forget_written(folder: Path) -> None:
    """Drop the record once the files it names are removed."""
    (folder / WRITTEN_NAME).unlink(missing_ok=True)


def check_replaceable(folder: Path, names: Iterable[str], flag: str) -> None:
    """Refuse to write over files in a folder that our commands did not write (a user's own, of the same name)."""
    ours = written_files(folder)
    for name in names:
        if (folder / name).exists() and name not in ours:
            raise InputError(folder / name, f"exists and was not written by seqmamba; move it away or choose "
                                            f"another {flag} folder")


def check_output_file(path: Path, flag: str, inputs: Iterable[Path], header: str | re.Pattern) -> None:
    """Refuse an output file that is one of the command's inputs, or an existing file not written by us.

    An existing file counts as ours when it starts with `header` (the first line this output always has, or a
    pattern of it).
    """
    if path.exists():
        for source in inputs:
            if source.exists() and os.path.samefile(path, source):
                raise InputError(path, f"{flag} names an input of this command ({source}); choose another output path")
        if not path.is_file():
            raise InputError(path, f"{flag} names an existing folder or device; give a file path")
        with open(path, "rb") as handle:
            start = handle.read(256).decode("utf-8", "replace")
        ours = header.match(start) if isinstance(header, re.Pattern) else start.startswith(header)
        if not ours:
            raise InputError(path, f"{flag} names an existing file that seqmamba did not write; choose another "
                                   "output path or move it away")


@contextmanager
def written_atomically(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` (same suffix, for writers that choose the format by it), renamed over it once
    the block completes; removed if the block fails, so a crash never leaves a half-written output."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_path(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output file path that names a folder or lies under a file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, f"{flag} names a folder; give a file path")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(path, f"{flag}: {parent} is a file, not a folder; choose another path")
    return path
