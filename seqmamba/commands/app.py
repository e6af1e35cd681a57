"""`seqmamba app`: the local web page over a folder of runs (Runs, Classify, Generate, Score); code in `apps/`."""

from __future__ import annotations

from pathlib import Path

from seqmamba.errors import InputError


def app(runs: Path = Path("runs"), host: str = "127.0.0.1", port: int = 8765, max_upload_mb: float = 200,
        device: str = "auto") -> None:
    """Serve the app on host:port (this machine only unless --host says otherwise) until Ctrl+C.

    Args:
        runs: folder of run directories; the app writes only under RUNS/app/
        host: address to listen on; 0.0.0.0 opens it to the network
        port: TCP port
        max_upload_mb: largest read file the Classify page accepts
        device: where classify, generate and score run (cpu, cuda, auto)
    """
    from apps.server import create_app

    if not runs.is_dir():
        raise InputError(runs, "no such runs folder; give --runs DIR, the folder your runs' --run_dir point into")
    if not 0 < port < 65536:
        raise InputError("--port", f"must lie in 1..65535, got {port}")
    print(f"seqmamba app: http://{host}:{port}/ over {runs.resolve()} (Ctrl+C stops it)", flush=True)
    create_app(runs, max_upload_mb, device).run(host=host, port=port, threaded=True)


def main(argv: list[str]) -> None:
    """Parse the flags of `app` and serve."""
    from jsonargparse import CLI

    CLI(app, args=argv)
