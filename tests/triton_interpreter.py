"""Run a check script under Triton's CPU interpreter: the Triton kernels' tests on machines without a GPU."""

import os
import subprocess
import sys


def run_in_interpreter(script: str, timeout: int = 300) -> None:
    """Run `script` in a fresh Python with TRITON_INTERPRET=1 (read at import); it must print only "ok"."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
