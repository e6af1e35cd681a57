"""`seqmamba report RUN_DIR`: one self-contained report.html of a run (figures and short clips embedded)."""

from __future__ import annotations

from pathlib import Path

from seqmamba.errors import InputError


def report(run_dir: Path) -> Path:
    """Write RUN_DIR/report.html from the app's run page, to read or send without the app.

    Args:
        run_dir: a run directory of pretrain, finetune, audio train or sc09 train-classifier
    """
    from apps.report import write_report

    if not (run_dir / "config.yaml").is_file():
        raise InputError(run_dir, "holds no config.yaml; give the --out folder of a training run")
    try:
        path = write_report(run_dir)
    except InputError:
        raise
    except ValueError as error:
        raise InputError(run_dir, str(error)) from None
    print(f"report: {path}")
    return path
