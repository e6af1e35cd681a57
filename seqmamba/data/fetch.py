"""Download public datasets named by a YAML manifest: resumable, checksummed, decompressed or unpacked.

A manifest (`<name>.yaml` in seqmamba/data/manifests/, shipped in the package) lists files with
their URL and, where the publisher gives one, a sha256. Where none is published the manifest says
`sha256: null`: the first download's sha256 is printed and recorded in `DEST/SHA256SUMS` (trust on first use) and later
fetches are checked against it. Downloads go to `FILENAME.part` and resume with an HTTP Range
request; a file whose checksum does not match is kept as `FILENAME.corrupt`, never deleted.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from seqmamba.errors import InputError
from seqmamba.outputs import output_folder
from seqmamba.yaml_files import load_yaml

MANIFEST_DIR = Path(str(resources.files("seqmamba.data") / "manifests"))  # package data: works where installed
SUMS_NAME = "SHA256SUMS"
CHUNK = 1 << 20
TIMEOUT_S = 60
_SHA256 = re.compile(r"[0-9a-f]{64}")
ARCHIVES = ("tar", "zip")


@dataclass(frozen=True)
class ManifestFile:
    """One downloadable file: where it lives, what it must hash to, and how to unpack it."""

    url: str
    filename: str
    sha256: str | None
    size: int | None
    decompress: str | None  # "gzip" (one file), "tar" or "zip" (an archive unpacked into DEST), or None
    note: str
    unpacks_to: str | None = None  # the folder an archive holds at its top

    @property
    def output_name(self) -> str:
        """The name users read: the decompressed file or unpacked folder where there is one."""
        if self.decompress in ARCHIVES:
            return str(self.unpacks_to)
        return self.filename.removesuffix(".gz") if self.decompress else self.filename


@dataclass(frozen=True)
class Manifest:
    """A named dataset: the files that make it up, read from one YAML file."""

    name: str
    description: str
    files: tuple[ManifestFile, ...]
    path: Path


def load_manifest(name_or_path: str) -> Manifest:
    """Read a manifest by name (one shipped in the package) or by path, so mirrors and tests can bring their own."""
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise InputError(path, "no such manifest file; give a manifest name or an existing .yaml path")
    else:
        path = MANIFEST_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in MANIFEST_DIR.glob("*.yaml"))) or "none"
            raise InputError(name_or_path, f"unknown dataset; known datasets: {known}")
    raw = load_yaml(path, "manifest")
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), list) or not raw["files"]:
        raise InputError(path, "a manifest needs a non-empty 'files' list; see seqmamba/data/manifests/hg38.yaml")
    files = tuple(_file_entry(path, i, entry) for i, entry in enumerate(raw["files"], start=1))
    return Manifest(str(raw.get("name", path.stem)), str(raw.get("description", "")), files, path)


def _file_entry(path: Path, index: int, raw: object) -> ManifestFile:
    """Check one `files` entry so that a bad manifest fails before anything is downloaded."""
    where = f"files entry {index}"
    if not isinstance(raw, dict) or not raw.get("url") or not raw.get("filename"):
        raise InputError(path, f"{where}: needs at least 'url' and 'filename'")
    filename = str(raw["filename"])
    if "/" in filename or "\\" in filename or filename.startswith("."):
        raise InputError(path, f"{where}: filename {filename!r} must be a plain file name")
    if filename == SUMS_NAME or filename.endswith((".part", ".tmp")) or ".corrupt" in filename:
        raise InputError(path, f"{where}: filename {filename!r} is reserved for fetch's own bookkeeping; rename it")
    if not str(raw["url"]).lower().startswith(("https://", "http://")):
        raise InputError(path, f"{where}: url {raw['url']!r} must start with https:// or http://")
    sha256 = raw.get("sha256")
    if sha256 is not None and not _SHA256.fullmatch(str(sha256).lower()):
        raise InputError(path, f"{where}: sha256 must be 64 hex digits or null")
    decompress = raw.get("decompress")
    if decompress not in (None, "gzip", *ARCHIVES) or (decompress == "gzip" and not filename.endswith(".gz")):
        raise InputError(path, f"{where}: decompress must be null, gzip for a file ending in .gz, tar or zip")
    unpacks_to = raw.get("unpacks_to")
    if decompress in ARCHIVES and (not unpacks_to or "/" in str(unpacks_to) or str(unpacks_to).startswith(".")):
        raise InputError(path, f"{where}: a {decompress} archive needs unpacks_to: the plain name of its top folder")
    size = raw.get("size")
    return ManifestFile(
        url=str(raw["url"]),
        filename=filename,
        sha256=str(sha256).lower() if sha256 else None,
        size=int(size) if size is not None else None,
        decompress=decompress,
        note=str(raw.get("note", "")),
        unpacks_to=str(unpacks_to) if decompress in ARCHIVES else None,
    )


def fetch(manifest: Manifest, dest: Path, *, base_url: str | None = None, progress: bool = True) -> list[Path]:
    """Make every file of a manifest present and verified in dest, downloading only what is missing."""
    if base_url is not None and not base_url.lower().startswith(("https://", "http://")):
        raise InputError(base_url, "--base_url must start with https:// or http:// (local and other schemes are "
                                   "refused, as in manifests); serve a local mirror over HTTP")
    output_folder(dest, "--out")
    sums_path = dest / SUMS_NAME
    sums = _read_sums(sums_path)
    outputs = []
    for entry in manifest.files:
        target = dest / entry.filename
        url = f"{base_url.rstrip('/')}/{entry.url.rsplit('/', 1)[-1]}" if base_url else entry.url
        if entry.sha256:
            expected, source = entry.sha256, str(manifest.path)
        else:
            expected, source = sums.get(entry.filename), str(sums_path)
        downloaded = not target.exists()
        output = dest / entry.output_name
        if downloaded:
            part = dest / f"{entry.filename}.part"
            _download(url, part, entry.size, progress)
            actual = _verify(part, entry, expected, source)
            if entry.decompress:  # a truncated archive fails here, before its hash could be trusted
                _extract(entry, part, output, keep_as=target)
            part.replace(target)
        else:
            actual = _verify(target, entry, expected, source)
            if entry.decompress and not output.exists():  # before its hash is recorded: it must unpack first
                _extract(entry, target, output, keep_as=target)
        if expected is None:
            print(
                f"{entry.filename}: sha256 {actual}\n  NOT verified: no published checksum exists; recorded in "
                f"{sums_path} (trust on first use), later fetches are checked against it",
                file=sys.stderr,
            )
        if sums.get(entry.filename) != actual:
            sums[entry.filename] = actual
            _write_sums(sums_path, sums)
        outputs.append(output)
    return outputs


def _read_sums(path: Path) -> dict[str, str]:
    """Checksums recorded by earlier fetches, in `sha256sum` format."""
    if not path.exists():
        return {}
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not _SHA256.fullmatch(digest) or not name:
            raise InputError(path, f"line {number}: expected '<sha256>  <filename>'; fix or delete the line")
        sums[name.lstrip("*")] = digest
    return sums


def _write_sums(path: Path, sums: dict[str, str]) -> None:
    """Record checksums atomically, readable by `sha256sum -c`."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())))
    tmp.replace(path)


def _sha256(path: Path) -> str:
    """Hash a file in chunks: the genome does not fit comfortably in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, entry: ManifestFile, expected: str | None, source: str) -> str:
    """Return the file's sha256; on a mismatch keep it as .corrupt and tell the user what to do."""
    actual = _sha256(path)
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        problem = f"has {size} bytes, {source} says {entry.size}"
    elif expected is not None and actual != expected:
        problem = f"sha256 is {actual}, {source} expects {expected}"
    else:
        return actual
    corrupt = _keep_corrupt(path, entry.filename)
    raise InputError(
        path.with_name(entry.filename),
        f"{problem}; the download was kept as {corrupt.name}. Delete it and re-run to download again, "
        f"or correct {source} if the published file has legitimately changed",
    )


def _keep_corrupt(path: Path, filename: str) -> Path:
    """Move a bad download aside as FILENAME.corrupt (.corrupt-1, -2 ... if kept ones exist): never overwrite evidence."""
    corrupt, k = path.with_name(f"{filename}.corrupt"), 0
    while corrupt.exists():
        k += 1
        corrupt = path.with_name(f"{filename}.corrupt-{k}")
    path.replace(corrupt)
    return corrupt


def _download(url: str, part: Path, size: int | None, progress: bool) -> None:
    """Fetch url into part, continuing from what an interrupted run left there."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            if response.status != 206:
                offset = 0  # the server ignored the Range header: start over
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else size
            meter = _Meter(part.name.removesuffix(".part"), offset, total) if progress else None
            with open(part, "ab" if offset else "wb") as out:
                try:
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        if meter:
                            meter.advance(len(chunk))
                finally:
                    if meter:
                        meter.finish()
            if length is not None and part.stat().st_size < total:
                raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return  # the .part already holds the whole file; verification decides
        raise InputError(url, f"server answered HTTP {err.code} {err.reason}; check the URL or the mirror") from None
    except (OSError, http.client.HTTPException) as err:
        kept = part.stat().st_size if part.exists() else 0
        raise InputError(
            url, f"download interrupted ({err!r}); {part.name} keeps {kept} bytes: re-run the same command to resume"
        ) from None


class _Meter:
    """A one-line progress report on stderr, so long downloads show they are alive."""

    def __init__(self, name: str, done: int, total: int | None) -> None:
        self.name, self.done, self.total = name, done, total
        self.start_done, self.start, self.shown = done, time.monotonic(), 0.0

    def advance(self, n: int) -> None:
        """Count n more bytes; redraw at most twice a second."""
        self.done += n
        if time.monotonic() - self.shown > 0.5:
            self._show("")

    def finish(self) -> None:
        """Draw the final numbers and end the line, so later messages start clean."""
        self._show("\n")

    def _show(self, end: str) -> None:
        self.shown = time.monotonic()
        rate = (self.done - self.start_done) / max(self.shown - self.start, 1e-9) / 1e6
        total = f"/{self.total / 1e6:.1f}" if self.total else ""
        print(f"\r{self.name}: {self.done / 1e6:.1f}{total} MB  {rate:.1f} MB/s", end=end, file=sys.stderr, flush=True)


def _extract(entry: ManifestFile, src: Path, out: Path, keep_as: Path) -> None:
    """Decompress or unpack a download as its manifest entry says."""
    if entry.decompress in ARCHIVES:
        _unpack(src, out, entry.decompress, keep_as)
    else:
        _gunzip(src, out, keep_as)


def _unpack(src: Path, out: Path, kind: str, keep_as: Path) -> None:
    """Extract a tar (any compression) or zip archive through a scratch folder, then move its top folder to out.

    Nothing half-extracted is left at out; an archive that does not unpack is moved aside as .corrupt.
    """
    scratch = out.with_name(f"{keep_as.name}.unpacking")
    shutil.rmtree(scratch, ignore_errors=True)  # our own leftover from an interrupted run
    try:
        if kind == "zip":
            with zipfile.ZipFile(src) as archive:
                archive.extractall(scratch)
        else:
            with tarfile.open(src) as archive:
                archive.extractall(scratch, filter="data")  # no absolute paths, links out or devices
    except (OSError, EOFError, zlib.error, tarfile.TarError, zipfile.BadZipFile) as err:
        shutil.rmtree(scratch, ignore_errors=True)
        corrupt = _keep_corrupt(src, keep_as.name)
        raise InputError(keep_as, f"cannot unpack ({err}); kept as {corrupt.name}, nothing recorded: re-run the "
                                  f"same command to download it again") from None
    if not (scratch / out.name).is_dir():
        found = ", ".join(sorted(p.name for p in scratch.iterdir())) or "nothing"
        raise InputError(keep_as, f"unpacked into {scratch.name}, which holds {found} but no folder {out.name}; "
                                  "correct unpacks_to in the manifest")
    (scratch / out.name).replace(out)
    shutil.rmtree(scratch)


def _gunzip(src: Path, out: Path, keep_as: Path) -> None:
    """Stream-decompress a .gz next to it, because pyfaidx reads only plain or bgzip FASTA.

    A .gz that does not decompress (truncated, not gzip) is moved aside as .corrupt, so a re-run downloads it again.
    """
    tmp = out.with_name(out.name + ".part")
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK)
    except (OSError, EOFError, zlib.error) as err:
        tmp.unlink(missing_ok=True)
        corrupt = _keep_corrupt(src, keep_as.name)
        raise InputError(keep_as, f"cannot decompress ({err}); kept as {corrupt.name}, nothing recorded: re-run the "
                                  f"same command to download it again") from None
    tmp.replace(out)
