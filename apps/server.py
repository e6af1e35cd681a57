"""Routes of `seqmamba app`: Runs, Classify, Generate, Score; files served only from under the runs folder."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from flask import Flask, abort, jsonify, redirect, render_template, request, send_file, url_for

from apps.jobs import JobBoard
from apps.runs import APP_FOLDER, checkpoints_of, find_runs, inside, read_run
from apps.work import classify_job, generate_job, score_job
from seqmamba.training.summaries import plot_losses

PASTE_LIMIT = 10_000_000  # characters of pasted reads


def create_app(runs: Path, max_upload_mb: float = 200, device: str = "cpu") -> Flask:
    """The app over one runs folder; its own outputs go under RUNS/app/."""
    root = runs.resolve()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 2**20)
    board = JobBoard(root / APP_FOLDER)
    app.extensions["seqmamba_jobs"] = board

    @app.context_processor
    def helpers() -> dict:
        return {"asset": lambda path: url_for("files", relative=Path(path).resolve().relative_to(root).as_posix()),
                "report": False}

    def form_page(template: str, status: int = 200, **values):
        return render_template(template, **values), status

    def under_root(relative: str) -> Path:
        if (path := inside(root, relative)) is None:
            abort(404)
        return path

    @app.get("/")
    def home():
        return redirect(url_for("runs_page"))

    @app.get("/runs")
    def runs_page():
        return render_template("runs.html", runs=find_runs(root), root=root, page="runs")

    @app.get("/runs/<path:name>")
    def run_page(name: str):
        path = under_root(name)
        if not path.is_dir() or (run := read_run(path, root)) is None:
            abort(404)
        has_curve = any(f.name == "loss.png" for f in run.figures) or not any(path.glob("logs*/metrics.csv"))
        return render_template("run.html", run=run, page="runs", curve=None if has_curve else url_for("curve", name=name))

    @app.get("/curve/<path:name>")
    def curve(name: str):
        """The loss curve so far of a run that has no loss.png yet (running or stopped)."""
        csvs = sorted(under_root(name).glob("logs*/metrics.csv"))
        if not csvs:
            abort(404)
        buffer = io.BytesIO()
        plot_losses(csvs, buffer)
        buffer.seek(0)
        return send_file(buffer, mimetype="image/png")

    @app.get("/files/<path:relative>")
    def files(relative: str):
        path = under_root(relative)
        if not path.is_file():
            abort(404)
        return send_file(path, as_attachment=request.args.get("download") == "1")

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str):
        if (job := board.get(job_id)) is None:
            abort(404)
        return jsonify(job.as_json())

    def job_page(kind: str, job_id: str):
        job = board.get(job_id)
        if job is None or job.kind != kind:
            abort(404)
        return render_template(f"{kind}.html", job=job, folder=job.folder, page=kind,
                               **choices(kind))

    def choices(kind: str) -> dict:
        if kind == "classify":
            return {"checkpoints": checkpoints_of(root, "finetune")}
        if kind == "generate":
            return {"checkpoints": checkpoints_of(root, "audio")}
        return {"checkpoints": checkpoints_of(root, "sc09-classifier"),
                "folders": sorted({p.parent.relative_to(root) for p in root.rglob("*.wav")
                                   if "checkpoints" not in p.parts})}

    def chosen_checkpoint(kind: str) -> Path | None:
        relative = request.form.get("checkpoint", "")
        path = inside(root, relative)
        return path if path is not None and path.is_file() and path.suffix == ".ckpt" else None

    @app.get("/classify")
    def classify_form():
        return render_template("classify.html", job=None, page="classify", **choices("classify"))

    @app.post("/classify")
    def classify_start():
        checkpoint = chosen_checkpoint("classify")
        upload, pasted = request.files.get("reads"), request.form.get("pasted", "").strip()
        problem = ("choose a species checkpoint found under the runs folder" if checkpoint is None else
                   "upload a FASTA/FASTQ file (plain or .gz) or paste reads" if not (upload and upload.filename) and not pasted
                   else f"pasted text is over {PASTE_LIMIT:,} characters; upload a file" if len(pasted) > PASTE_LIMIT
                   else None)
        if problem:
            return form_page("classify.html", 400, job=None, page="classify", error=problem, **choices("classify"))
        job = board.folder("classify")
        reads = job.folder / "reads"
        if upload and upload.filename:
            upload.save(reads)
        else:
            reads.write_text(pasted + "\n")
        board.start(job, lambda job: classify_job(job, reads, checkpoint, device))
        return redirect(url_for("classify_result", job_id=job.id), 303)

    @app.get("/classify/<job_id>")
    def classify_result(job_id: str):
        return job_page("classify", job_id)

    @app.get("/generate")
    def generate_form():
        return render_template("generate.html", job=None, page="generate", **choices("generate"))

    @app.post("/generate")
    def generate_start():
        checkpoint = chosen_checkpoint("generate")
        try:
            n, seconds = int(request.form.get("n", 4)), float(request.form.get("seconds", 1))
            temperature, top_p = float(request.form.get("temperature", 1)), float(request.form.get("top_p", 1))
        except ValueError:
            n = 0
        problem = ("choose an audio checkpoint found under the runs folder" if checkpoint is None else
                   "n must be a whole number from 1 to 256 and the numbers valid" if not 1 <= n <= 256 else
                   "seconds must lie in (0, 60]" if not 0 < seconds <= 60 else None)
        if problem:
            return form_page("generate.html", 400, job=None, page="generate", error=problem, **choices("generate"))
        job = board.folder("generate")
        board.start(job, lambda job: generate_job(job, checkpoint, n, seconds, temperature, top_p, device))
        return redirect(url_for("generate_result", job_id=job.id), 303)

    @app.get("/generate/<job_id>")
    def generate_result(job_id: str):
        return job_page("generate", job_id)

    @app.get("/generate/<job_id>/clips.zip")
    def generate_zip(job_id: str):
        job = board.get(job_id)
        if job is None or job.kind != "generate" or job.state != "done":
            abort(404)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path in sorted(job.folder.glob("*.wav")) + [job.folder / "samples.tsv"]:
                archive.write(path, path.name)
        buffer.seek(0)
        return send_file(buffer, mimetype="application/zip", as_attachment=True, download_name=f"clips-{job_id}.zip")

    @app.get("/score")
    def score_form():
        return render_template("score.html", job=None, page="score", **choices("score"))

    @app.post("/score")
    def score_start():
        classifier = chosen_checkpoint("score")
        samples = request.form.get("samples", "")
        problem = ("choose a digit classifier checkpoint found under the runs folder" if classifier is None else
                   "choose a folder of .wav clips under the runs folder"
                   if Path(samples) not in choices("score")["folders"] else None)
        if problem:
            return form_page("score.html", 400, job=None, page="score", error=problem, **choices("score"))
        job = board.folder("score")
        board.start(job, lambda job: score_job(job, classifier, root / samples, device))
        return redirect(url_for("score_result", job_id=job.id), 303)

    @app.get("/score/<job_id>")
    def score_result(job_id: str):
        return job_page("score", job_id)

    @app.errorhandler(404)
    def not_found(error):
        return render_template("message.html", title="Not found", text="No such page or file under the runs folder.",
                               page=""), 404

    @app.errorhandler(413)
    def too_large(error):
        return render_template("message.html", title="Upload too large",
                               text=f"Uploads are limited to {max_upload_mb:g} MB (seqmamba app --max_upload_mb).",
                               page=""), 413

    return app
