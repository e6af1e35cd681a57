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


def create_app(runs: Path, max_upload_mb: float = 200, device: str = "auto") -> Flask:
    """The app over one runs folder; its own outputs go under RUNS/app/."""
    root = runs.resolve()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = int(max_upload_mb * 2**20)
    board = JobBoard(root / APP_FOLDER)

    @app.context_processor
    def helpers() -> dict:
        """Templates name files by path; the page links them through /files/ (which refuses links that lead out)."""
        return {"asset": lambda path: url_for("files", relative=Path(path).relative_to(root).as_posix()),
                "report": False}

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
        curve_url = None if has_curve else url_for("curve", name=name)
        return render_template("run.html", run=run, page="runs", curve=curve_url)

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

    def choices(kind: str) -> dict:
        if kind == "classify":
            return {"checkpoints": checkpoints_of(root, "finetune")}
        if kind == "generate":
            return {"checkpoints": checkpoints_of(root, "audio")}
        return {"checkpoints": checkpoints_of(root, "sc09-classifier"),
                "folders": sorted({p.parent.relative_to(root) for p in root.rglob("*.wav")
                                   if "checkpoints" not in p.parts})}

    def chosen_checkpoint() -> Path | None:
        relative = request.form.get("checkpoint", "")
        path = inside(root, relative)
        return path if path is not None and path.is_file() and path.suffix == ".ckpt" else None

    def start(kind: str, problem: str | None, work, prepare=None):
        """The form again with the problem (400), or a new job and a redirect to its page."""
        if problem:
            return render_template(f"{kind}.html", job=None, page=kind, error=problem, **choices(kind)), 400
        job = board.new_job(kind)
        if prepare is not None:
            prepare(job)
        board.start(job, work)
        return redirect(url_for("job_page", kind=kind, job_id=job.id), 303)

    @app.get("/<any(classify, generate, score):kind>")
    def form(kind: str):
        return render_template(f"{kind}.html", job=None, page=kind, **choices(kind))

    @app.get("/<any(classify, generate, score):kind>/<job_id>")
    def job_page(kind: str, job_id: str):
        job = board.get(job_id)
        if job is None or job.kind != kind:
            abort(404)
        return render_template(f"{kind}.html", job=job, folder=job.folder, page=kind, **choices(kind))

    @app.post("/classify")
    def classify_start():
        checkpoint = chosen_checkpoint()
        upload, pasted = request.files.get("reads"), request.form.get("pasted", "").strip()
        has_file = bool(upload and upload.filename)
        problem = ("choose a species checkpoint found under the runs folder" if checkpoint is None else
                   "upload a FASTA/FASTQ file (plain or .gz) or paste reads" if not has_file and not pasted else
                   f"pasted text is over {PASTE_LIMIT:,} characters; upload a file" if len(pasted) > PASTE_LIMIT
                   else None)

        def save_reads(job) -> None:  # in the request: the upload is read from it
            if has_file:
                upload.save(job.folder / "reads")
            else:
                (job.folder / "reads").write_text(pasted + "\n")

        return start("classify", problem, lambda job: classify_job(job, job.folder / "reads", checkpoint, device),
                     save_reads)

    @app.post("/generate")
    def generate_start():
        checkpoint = chosen_checkpoint()
        try:
            n, seconds = int(request.form.get("n", 4)), float(request.form.get("seconds", 1))
            temperature, top_p = float(request.form.get("temperature", 1)), float(request.form.get("top_p", 1))
        except ValueError:
            n = seconds = temperature = top_p = 0
        problem = ("choose an audio checkpoint found under the runs folder" if checkpoint is None else
                   "n must be a whole number from 1 to 256 and the numbers valid" if not 1 <= n <= 256 else
                   "seconds must lie in (0, 60]" if not 0 < seconds <= 60 else None)
        return start("generate", problem,
                     lambda job: generate_job(job, checkpoint, n, seconds, temperature, top_p, device))

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

    @app.post("/score")
    def score_start():
        classifier, samples = chosen_checkpoint(), request.form.get("samples", "")
        problem = ("choose a digit classifier checkpoint found under the runs folder" if classifier is None else
                   "choose a folder of .wav clips under the runs folder"
                   if Path(samples) not in choices("score")["folders"] else None)
        return start("score", problem, lambda job: score_job(job, classifier, root / samples, device))

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
