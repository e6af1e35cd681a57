"""report.html: one self-contained page per run (figures and short clips embedded), from the app's templates."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

import jinja2

from apps.runs import read_run
from seqmamba.outputs import check_replaceable, record_written, written_atomically

TEMPLATES = Path(__file__).parent / "templates"
EMBED_LIMIT = 2_000_000  # bytes: larger files are linked by name instead of embedded


def embedded(path: Path) -> str:
    """A data: URI of a file (a figure or a short clip), or its file name when it is too large to embed."""
    if path.stat().st_size > EMBED_LIMIT:
        return path.name
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def render_report(run_dir: Path) -> str:
    """The run page of `seqmamba app`, with everything it shows embedded, as one HTML string."""
    run = read_run(run_dir, run_dir.parent)
    if run is None:
        raise ValueError(f"{run_dir} holds no config.yaml of a training command")
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    return environment.get_template("report.html").render(run=run, report=True, asset=embedded, page="")


def write_report(run_dir: Path) -> Path:
    """RUN_DIR/report.html, written to a temporary file and renamed into place; a report.html that seqmamba did not
    write there (a user's own) is never replaced: InputError naming it."""
    path = run_dir / "report.html"
    check_replaceable(run_dir, [path.name], "RUN_DIR")
    record_written(run_dir, [path.name])
    with written_atomically(path) as tmp:
        tmp.write_text(render_report(run_dir))
    return path
