"""Output folders named by users (--dest, --out, -o): made on demand, never over an existing file."""

from __future__ import annotations

from pathlib import Path

from seqmamba.errors import InputError


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


def check_output_file(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output file path that names a folder or lies under a file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, f"{flag} names a folder; give a file path")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(path, f"{flag}: {parent} is a file, not a folder; choose another path")
    return path
