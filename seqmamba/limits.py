"""What the machine can hold: "how much" settings are checked against it before any work starts."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

from seqmamba.errors import InputError


def available_memory() -> int:
    """Bytes of memory free for new work (MemAvailable on Linux; all physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_finite(setting: str, value: float) -> None:
    """Refuse nan and inf where a count or a length is meant."""
    if not math.isfinite(value):
        raise InputError(setting, f"must be a finite number, got {value}")


def check_memory(setting: str, n_bytes: float, what: str) -> None:
    """Refuse a setting whose work would need more memory than is free."""
    free = available_memory()
    if n_bytes > free:
        raise InputError(setting, f"{what} would need {n_bytes / 2**30:.1f} GiB of memory, and "
                                  f"{free / 2**30:.1f} GiB are free; ask for less")


def check_disk(setting: str, folder: Path, n_bytes: float, what: str) -> None:
    """Refuse a setting whose outputs would not fit on the disk of `folder` (or its nearest existing parent)."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if n_bytes > free:
        raise InputError(setting, f"{what} would take {n_bytes / 2**30:.1f} GiB on disk, and {existing} has "
                                  f"{free / 2**30:.1f} GiB free; ask for less")
