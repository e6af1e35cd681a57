"""`seqmamba app` at the HTTP level (Flask's test client): every route, every bad input; and `seqmamba report`."""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import time
import zipfile

import pytest

from apps.server import create_app
from seqmamba.cli import main
from seqmamba.data.species import JoinedGenome, read_manifest
from seqmamba.outputs import WRITTEN_NAME


def wait_for(client, job_url: str) -> str:
    """Poll a job's JSON until it ends; returns its result page."""
    job_id = job_url.rsplit("/", 1)[1]
    for _ in range(1200):
        state = client.get(f"/jobs/{job_id}").get_json()["state"]
        if state != "running":
            return client.get(job_url).get_data(as_text=True)
        time.sleep(0.1)
    raise AssertionError(f"job {job_url} did not end")


@pytest.fixture(scope="module")
def client(app_runs):
    app = create_app(app_runs[0], max_upload_mb=1)
    return app.test_client()


def fastq_of(manifest, per_species: int = 3) -> str:
    """Reads cut from each species' genome, named after it."""
    lines = []
    for entry in read_manifest(manifest):
        name, genome = entry.name, JoinedGenome(entry.fasta)
        for k in range(per_species):
            seq = genome.fetch(100 * k, 100 * k + 80)
            lines += [f"@{name}_{k}", seq, "+", "I" * len(seq)]
    return "\n".join(lines) + "\n"


def test_runs_page_lists_every_run_with_status_and_curve(client):
    page = client.get("/runs").get_data(as_text=True)
    for name in ("pretrain", "finetune", "audio", "classifier", "stopped"):
        assert f'href="/runs/{name}"' in page
    assert page.count('class="status-finished"') == 4
    assert "seqmamba pretrain --config" in page and "--resume last" in page
    curve = re.search(r'src="(/files/pretrain/loss.png)"', page).group(1)
    response = client.get(curve)
    assert response.status_code == 200 and response.data[:4] == b"\x89PNG"
    assert client.get("/").status_code == 302


def test_run_page_shows_command_config_summary_figures_checkpoints(client):
    page = client.get("/runs/finetune").get_data(as_text=True)
    assert "seqmamba finetune" in page and "test_accuracy" in page and "manifest:" in page
    assert "/files/finetune/confusion.png" in page and "checkpoints/last.ckpt" in page
    stopped = client.get("/runs/stopped").get_data(as_text=True)
    assert 'class="status-stopped"' in stopped and "/curve/stopped" in stopped
    assert client.get("/curve/stopped").data[:4] == b"\x89PNG"
    assert client.get("/runs/nothing-here").status_code == 404


@pytest.mark.parametrize("url", ["/files/../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd", "/files//etc/passwd",
                                 "/files/pretrain/../../outside.txt", "/files/link-out/passwd", "/files/missing.png",
                                 "/runs/..%2f..", "/curve/..%2f.."])
def test_files_only_from_under_runs(client, app_runs, url):
    runs = app_runs[0]
    (runs.parent / "outside.txt").write_text("secret")
    if not (runs / "link-out").exists():
        (runs / "link-out").symlink_to("/etc")
    response = client.get(url, follow_redirects=True)  # werkzeug merges '//' by a redirect first
    assert response.status_code == 404 and b"secret" not in response.data and b"root:" not in response.data


def test_classify_upload_gzip_and_paste_give_table_downloads_and_chart(client, app_runs):
    runs, manifest = app_runs
    fastq = fastq_of(manifest)
    reads = (io.BytesIO(gzip.compress(fastq.encode())), "r.fq.gz")
    form = {"checkpoint": "finetune/checkpoints/last.ckpt", "reads": reads}
    response = client.post("/classify", data=form, content_type="multipart/form-data")
    assert response.status_code == 303
    page = wait_for(client, response.location)
    assert page.count("<tr><td>sp0_") == 3 and page.count("<tr><td>sp1_") == 3 and 'id="species"' in page
    folder = re.search(r'href="(/files/app/classify/\w+/)predictions.tsv', page).group(1)
    table = client.get(folder + "predictions.tsv").get_data(as_text=True).splitlines()
    assert table[0].startswith("file\tread_id") and len(table) == 7
    kraken = client.get(folder + "report.kraken.txt").get_data(as_text=True).splitlines()
    rows = [line.split("\t") for line in kraken]  # Kraken 2's six columns, no header: U first, then root, species
    assert [row[3] for row in rows[:2]] == ["U", "R"] and rows[0][5] == "unclassified"
    assert sum(int(row[2]) for row in rows) == 6 and int(rows[0][1]) + int(rows[1][1]) == 6
    pasted = client.post("/classify", data={"checkpoint": "finetune/checkpoints/last.ckpt",
                                            "pasted": ">one\n" + fastq.splitlines()[1] + "\n"})
    assert "<tr><td>one</td>" in wait_for(client, pasted.location)
    assert all(path.is_relative_to(runs) for path in runs.parent.rglob("reads")), "uploads stay under the runs folder"


@pytest.mark.parametrize("content, checkpoint, message", [
    (b"hello, these are not reads\n", "finetune/checkpoints/last.ckpt", "neither FASTA"),
    (gzip.compress("".join(f"@r{k}\nACGT\n+\nIIII\n" for k in range(5000)).encode())[:3000],
     "finetune/checkpoints/last.ckpt", "truncated"),
    (b"@r\nACGT\n+\nIIII\n", "pretrain/checkpoints/last.ckpt", "not a species classifier"),
])
def test_bad_upload_is_one_clear_message_in_the_page(client, content, checkpoint, message):
    response = client.post("/classify", data={"checkpoint": checkpoint, "reads": (io.BytesIO(content), "x.fq")},
                           content_type="multipart/form-data")
    page = wait_for(client, response.location)
    errors = re.findall(r'<div class="error" id="error">([^<]*)</div>', page)
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in page


@pytest.mark.parametrize("form, message", [
    ({"checkpoint": "/etc/passwd", "pasted": ">r\nACGT"}, "choose a species checkpoint"),
    ({"checkpoint": "../outside.ckpt", "pasted": ">r\nACGT"}, "choose a species checkpoint"),
    ({"checkpoint": "finetune/checkpoints/last.ckpt"}, "upload a FASTA/FASTQ"),
])
def test_classify_form_refuses_missing_or_outside_inputs(client, form, message):
    response = client.post("/classify", data=form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_upload_over_the_limit_is_refused_with_a_message(client):
    big = io.BytesIO(b">r\n" + b"A" * (2 * 2**20))
    response = client.post("/classify", data={"checkpoint": "finetune/checkpoints/last.ckpt", "reads": (big, "big.fa")},
                           content_type="multipart/form-data")
    assert response.status_code == 413 and "Upload too large" in response.get_data(as_text=True)


def test_generate_clips_best_first_with_spectrograms_and_zip(client):
    assert "audio/checkpoints/last.ckpt" in client.get("/generate").get_data(as_text=True)
    response = client.post("/generate", data={"checkpoint": "audio/checkpoints/last.ckpt", "n": "3",
                                              "seconds": "0.01", "temperature": "1", "top_p": "0.9"})
    page = wait_for(client, response.location)
    likelihoods = [float(x) for x in re.findall(r"log-likelihood (-?[\d.]+) nats", page)]
    assert len(likelihoods) == 3 and likelihoods == sorted(likelihoods, reverse=True)
    assert page.count("<audio") == 3 and page.count("spectrogram of") == 3
    archive = zipfile.ZipFile(io.BytesIO(client.get(response.location + "/clips.zip").data))
    assert sorted(archive.namelist()) == ["sample_0.wav", "sample_1.wav", "sample_2.wav", "samples.tsv"]


@pytest.mark.parametrize("form, message", [
    ({"checkpoint": "finetune/checkpoints/last.ckpt", "n": "0"}, "n must be"),
    ({"checkpoint": "audio/checkpoints/last.ckpt", "n": "two"}, "n must be"),
    ({"checkpoint": "audio/checkpoints/last.ckpt", "n": "2", "seconds": "0"}, "seconds must"),
    ({"checkpoint": "audio/checkpoints/nope.ckpt", "n": "2"}, "choose an audio checkpoint"),
])
def test_generate_form_refuses_bad_settings(client, form, message):
    response = client.post("/generate", data=form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_generate_with_a_species_checkpoint_fails_with_one_message(client):
    response = client.post("/generate", data={"checkpoint": "finetune/checkpoints/last.ckpt", "n": "1",
                                              "seconds": "0.01"})
    page = wait_for(client, response.location)
    assert len(re.findall(r'class="error"', page)) == 1 and "audio train" in page


def test_score_gives_samples_train_and_test_rows(client):
    form_page = client.get("/score").get_data(as_text=True)
    assert "classifier/checkpoints/last.ckpt" in form_page
    response = client.post("/score", data={"checkpoint": "classifier/checkpoints/last.ckpt", "samples": "audio"})
    assert response.status_code == 400  # the audio run holds no clips
    folder = re.search(r'<option value="(app/generate/\w+)"', client.get("/score").get_data(as_text=True))
    if folder is None:
        pytest.skip("needs the generate test's clips")
    response = client.post("/score", data={"checkpoint": "classifier/checkpoints/last.ckpt",
                                           "samples": folder.group(1)})
    page = wait_for(client, response.location)
    assert all(f"<tr><th>{row}</th>" in page for row in ("samples", "train", "test"))


def test_unknown_job_is_404(client):
    assert client.get("/jobs/nope").status_code == 404 and client.get("/generate/nope").status_code == 404
    assert client.get("/generate/nope/clips.zip").status_code == 404


def test_report_is_one_self_contained_file(app_runs, tmp_path, capsys):
    runs = app_runs[0]
    page = (runs / "finetune" / "report.html").read_text()  # written by the training run itself
    assert "data:image/png;base64," in page and "/files/" not in page and "<script" not in page
    assert main(["report", str(runs / "audio")]) == 0
    assert "report.html" in capsys.readouterr().out
    assert "test_bits_per_sample" in (runs / "audio" / "report.html").read_text()
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no config.yaml" in capsys.readouterr().err


def test_report_never_replaces_a_report_html_seqmamba_did_not_write(app_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(app_runs[0] / "pretrain", run)
    (run / "report.html").unlink()
    (run / "report.html").write_text("<p>my own notes</p>\n")  # the user's, not in the run's record
    record = json.loads((run / WRITTEN_NAME).read_text())
    (run / WRITTEN_NAME).write_text(json.dumps({**record, "files": [f for f in record["files"] if f != "report.html"]}))
    assert main(["report", str(run)]) == 2
    assert "report.html: exists and was not written by seqmamba" in capsys.readouterr().err
    assert (run / "report.html").read_text() == "<p>my own notes</p>\n"


def test_app_command_refuses_a_missing_runs_folder(tmp_path, capsys):
    assert main(["app", "--runs", str(tmp_path / "none")]) == 2
    assert "no such runs folder" in capsys.readouterr().err


def test_a_figure_linked_out_of_the_runs_folder_is_not_served(client, app_runs, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    link = app_runs[0] / "pretrain" / "linked.png"
    link.symlink_to(outside)
    try:
        page = client.get("/runs/pretrain")
        assert page.status_code == 200 and "/files/pretrain/linked.png" in page.get_data(as_text=True)
        assert client.get("/files/pretrain/linked.png").status_code == 404
    finally:
        link.unlink()
