"""`seqmamba app`: the local web page over a folder of runs (Runs, Classify, Generate, Score); code in `apps/`."""

from __future__ import annotations

import socket
from pathlib import Path

from seqmamba.errors import InputError


def app(*, runs: Path = Path("runs"), host: str = "127.0.0.1", port: int = 8765, max_upload_mb: float = 200,
        device: str = "auto") -> None:
    """Serve the app on host:port (this machine only unless --host says otherwise) until Ctrl+C.

    Args:
        runs: folder of run directories; the app writes only under RUNS/app/
        host: address to listen on; 0.0.0.0 opens it to the network
        port: TCP port
        max_upload_mb: largest read file the Classify page accepts
        device: where classify, generate and score run (cpu, cuda, auto)
    """
    from werkzeug.serving import make_server

    from apps.server import create_app

    if not runs.is_dir():
        raise InputError(runs, "no such runs folder; give --runs DIR, the folder your runs' --out point into")
    if not 0 < port < 65536:
        raise InputError("--port", f"must lie in 1..65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:  # werkzeug would exit on its own
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise InputError(f"{host}:{port}", f"cannot listen there ({error.strerror}); choose another --port") \
                from None
    server = make_server(host, port, create_app(runs, max_upload_mb, device), threaded=True)
    print(f"seqmamba app: http://{host}:{port}/ over {runs.resolve()} (Ctrl+C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("seqmamba app: stopped")
