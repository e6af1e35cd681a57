"""Audio fetch manifests: they load, and fetch unpacks a tar or zip archive found in DEST into its folder."""

import io
import tarfile
import zipfile

import pytest
import yaml

from seqmamba.data.audio_datasets import sc09_split_files, youtubemix_split_files
from seqmamba.data.fetch import SUMS_NAME, fetch, load_manifest
from seqmamba.errors import InputError


def test_audio_manifests_name_their_unpacked_folders():
    assert [f.output_name for f in load_manifest("sc09").files] == ["sc09"]
    assert [f.output_name for f in load_manifest("youtubemix").files] == ["youtube_mix"]


def manifest_like(name, tmp_path):
    """The packaged manifest pointing at an unreachable host: fetch must use the archive already in DEST."""
    raw = yaml.safe_load(load_manifest(name).path.read_text())
    raw["files"][0]["url"] = "http://127.0.0.1:9/" + raw["files"][0]["filename"]
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_manifest(str(path))


def test_fetch_unpacks_a_wavegan_sc09_tarball_into_a_readable_layout(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with tarfile.open(dest / "sc09.tar.gz", "w:gz") as archive:
        for split in ("train", "valid", "test"):
            data = f"clip of {split}".encode()
            info = tarfile.TarInfo(f"sc09/{split}/Nine_abc_nohash_0.wav")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    outputs = fetch(manifest_like("sc09", tmp_path), dest, progress=False)
    assert outputs == [dest / "sc09"]
    assert {s: [p.name for p in f] for s, f in sc09_split_files(dest / "sc09").items()} == {
        s: ["Nine_abc_nohash_0.wav"] for s in ("train", "valid", "test")}
    assert "sc09.tar.gz" in (dest / SUMS_NAME).read_text()
    assert not (dest / "sc09.tar.gz.unpacking").exists()


def test_fetch_unpacks_a_zip_and_moves_a_broken_one_aside(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with zipfile.ZipFile(dest / "youtubemix.zip", "w") as archive:
        for i in range(1, 4):
            archive.writestr(f"youtube_mix/out{i}.wav", b"x")
    manifest = manifest_like("youtubemix", tmp_path)
    fetch(manifest, dest, progress=False)
    assert [p.name for p in youtubemix_split_files(dest / "youtube_mix")["test"]] == ["out3.wav"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "youtubemix.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="cannot unpack"):
        fetch(manifest, other, progress=False)
    assert (other / "youtubemix.zip.corrupt").exists() and not (other / "youtube_mix").exists()
    assert SUMS_NAME not in {p.name for p in other.iterdir()}  # a broken archive's hash is never pinned
