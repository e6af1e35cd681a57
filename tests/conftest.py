import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # test helpers (sequential_scan) import by name


def pytest_collection_modifyitems(config, items):
    """CUDA tests run only where a GPU and mamba-ssm's kernels are both present."""
    from seqmamba.ops import kernels_available

    if torch.cuda.is_available() and kernels_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and mamba-ssm")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


from app_fixtures import app_runs  # noqa: E402,F401  one runs folder shared by the app's HTTP and browser tests
