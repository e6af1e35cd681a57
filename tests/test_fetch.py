"""fetch against a local HTTP server on 127.0.0.1: resume, checksums, trust on first use, gunzip."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from seqmamba.data.fetch import SUMS_NAME, fetch, load_manifest
from seqmamba.errors import InputError

GENOME = b">chr1\n" + b"ACGTNacgtn" * 2000 + b"\n"
BED = b"chr1\t0\t100\ttrain\nchr1\t100\t200\tvalid\n"


class _Handler(BaseHTTPRequestHandler):
    """Serves `files`, honours `Range: bytes=N-` (unless told not to), can cut one response after N bytes."""

    files: dict[str, bytes] = {}
    ranges: list[str | None] = []
    cut_after: int | None = None
    honour_range = True

    def do_GET(self) -> None:
        body = self.files.get(self.path.removeprefix("/files/"))
        if body is None:
            self.send_error(404)
            return
        requested = self.headers.get("Range")
        self.ranges.append(requested)
        requested = requested if self.honour_range else None
        start = int(requested.removeprefix("bytes=").rstrip("-")) if requested else 0
        self.send_response(206 if requested else 200)
        if requested:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut, type(self).cut_after = type(self).cut_after, None
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"files": {}, "ranges": [], "cut_after": None, "honour_range": True})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/files", handler
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def _manifest(tmp_path: Path, files: list[dict]) -> Path:
    path = tmp_path / "test.yaml"
    path.write_text(yaml.safe_dump({"name": "test", "description": "tiny", "files": files}))
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_download_verifies_and_skips_on_rerun(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files = {"genome.fa": GENOME}
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/x/genome.fa", "filename": "genome.fa", "sha256": _sha(GENOME)},
    ])))
    dest = tmp_path / "dest"
    assert fetch(manifest, dest, base_url=base, progress=False) == [dest / "genome.fa"]
    assert (dest / "genome.fa").read_bytes() == GENOME
    assert not (dest / "genome.fa.part").exists()
    fetch(manifest, dest, base_url=base, progress=False)
    assert handler.ranges == [None]  # the second run found the verified file and sent no request


def test_interrupted_download_resumes_with_range(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files = {"genome.fa": GENOME}
    handler.cut_after = 5000
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/genome.fa", "filename": "genome.fa", "sha256": _sha(GENOME)},
    ])))
    dest = tmp_path / "dest"
    with pytest.raises(InputError, match="re-run the same command to resume"):
        fetch(manifest, dest, base_url=base, progress=False)
    assert (dest / "genome.fa.part").stat().st_size == 5000
    fetch(manifest, dest, base_url=base, progress=True)
    assert handler.ranges == [None, "bytes=5000-"]
    assert (dest / "genome.fa").read_bytes() == GENOME


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files = {"genome.fa": GENOME}
    handler.honour_range = False
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "genome.fa.part").write_bytes(b"stale bytes that must not stay in front")
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/genome.fa", "filename": "genome.fa", "sha256": _sha(GENOME)},
    ])))
    fetch(manifest, dest, base_url=base, progress=False)
    assert handler.ranges == ["bytes=39-"]
    assert (dest / "genome.fa").read_bytes() == GENOME


def test_checksum_mismatch_keeps_corrupt_file(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files = {"genome.fa": GENOME, "good.bed": BED}
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/good.bed", "filename": "good.bed", "sha256": _sha(BED)},
        {"url": "https://example.org/genome.fa", "filename": "genome.fa", "sha256": "0" * 64},
    ])))
    dest = tmp_path / "dest"
    with pytest.raises(InputError, match="genome.fa.corrupt"):
        fetch(manifest, dest, base_url=base, progress=False)
    assert (dest / "genome.fa.corrupt").read_bytes() == GENOME
    assert not (dest / "genome.fa").exists()
    assert (dest / "good.bed").read_bytes() == BED  # what was verified stays


def test_gzip_is_decompressed_after_verification(tmp_path: Path, server) -> None:
    base, handler = server
    packed = gzip.compress(GENOME)
    handler.files = {"genome.fa.gz": packed}
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/genome.fa.gz", "filename": "genome.fa.gz", "sha256": _sha(packed),
         "decompress": "gzip"},
    ])))
    dest = tmp_path / "dest"
    assert fetch(manifest, dest, base_url=base, progress=False) == [dest / "genome.fa"]
    assert (dest / "genome.fa").read_bytes() == GENOME
    assert (dest / "genome.fa.gz").read_bytes() == packed


def test_trust_on_first_use_records_and_then_checks(tmp_path: Path, server, capsys) -> None:
    base, handler = server
    handler.files = {"remote.bed": BED}
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/remote.bed", "filename": "local.bed", "sha256": None},
    ])))
    dest = tmp_path / "dest"
    fetch(manifest, dest, base_url=base, progress=False)
    assert (dest / SUMS_NAME).read_text() == f"{_sha(BED)}  local.bed\n"
    assert "NOT verified" in capsys.readouterr().err
    (dest / "local.bed").write_bytes(BED + b"tampered\n")
    with pytest.raises(InputError, match=SUMS_NAME):
        fetch(manifest, dest, base_url=base, progress=False)
    assert (dest / "local.bed.corrupt").exists()


def test_unknown_manifest_name_lists_known_ones() -> None:
    with pytest.raises(InputError, match="known datasets: .*hg38"):
        load_manifest("no-such-dataset")


def test_hg38_manifest_is_valid() -> None:
    manifest = load_manifest("hg38")
    assert [f.output_name for f in manifest.files] == ["hg38.ml.fa", "human-sequences.bed"]
    assert all(f.url.startswith("https://storage.googleapis.com/basenji_barnyard2/") for f in manifest.files)


def test_truncated_first_download_is_not_trusted_and_a_rerun_recovers(tmp_path: Path, server) -> None:
    base, handler = server
    packed = gzip.compress(GENOME)
    handler.files = {"genome.fa.gz": packed[: len(packed) // 2]}  # the server itself serves a cut file
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/genome.fa.gz", "filename": "genome.fa.gz", "sha256": None, "decompress": "gzip"},
    ])))
    dest = tmp_path / "dest"
    with pytest.raises(InputError, match="cannot decompress.*nothing recorded"):
        fetch(manifest, dest, base_url=base, progress=False)
    assert not (dest / SUMS_NAME).exists() or "genome.fa.gz" not in (dest / SUMS_NAME).read_text()
    handler.files = {"genome.fa.gz": packed}
    assert fetch(manifest, dest, base_url=base, progress=False) == [dest / "genome.fa"]
    assert (dest / "genome.fa").read_bytes() == GENOME
    assert (dest / SUMS_NAME).read_text() == f"{_sha(packed)}  genome.fa.gz\n"


def test_kept_corrupt_files_are_never_replaced(tmp_path: Path, server) -> None:
    base, handler = server
    handler.files = {"genome.fa": GENOME}
    manifest = load_manifest(str(_manifest(tmp_path, [
        {"url": "https://example.org/genome.fa", "filename": "genome.fa", "sha256": _sha(b"other")},
    ])))
    dest = tmp_path / "dest"
    for _ in range(2):
        with pytest.raises(InputError, match="corrupt"):
            fetch(manifest, dest, base_url=base, progress=False)
    assert (dest / "genome.fa.corrupt").read_bytes() == GENOME and (dest / "genome.fa.corrupt-1").read_bytes() == GENOME
