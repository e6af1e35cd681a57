"""Output folders named by users (--dest, --out, -o): made on demand, never over an existing file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


@contextlib.contextmanager
def replaced_on_success(paths: list[Path]) -> Iterator[list[Path]]:
    """Temporary files beside `paths`, renamed onto them only if the block ends without error, else removed."""
    tmps = [path.with_name(f".{path.name}.tmp") for path in paths]
    try:
        yield tmps
        for tmp, path in zip(tmps, paths):
            tmp.replace(path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
