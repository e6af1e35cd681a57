"""The floors of the house: components (nn, metrics, ops, data) import no run machinery, and no Lightning."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "seqmamba"
COMPONENTS = ("nn", "metrics", "ops", "data")
ABOVE = ("seqmamba.training", "seqmamba.commands", "seqmamba.tasks", "seqmamba.cli")


def imported_modules(path: Path) -> list[str]:
    """Every module a source file imports, at any depth (imports inside functions count too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_components_import_nothing_from_the_floors_above():
    files = [path for folder in COMPONENTS for path in sorted((PACKAGE / folder).rglob("*.py"))]
    assert len(files) > 20
    upward = [f"{path.relative_to(PACKAGE)} imports {name}" for path in files for name in imported_modules(path)
              if name.startswith(ABOVE) or name.split(".")[0] in ("lightning", "pytorch_lightning")]
    assert upward == []


def test_importing_the_models_loads_no_lightning():
    code = "import seqmamba.nn, seqmamba.metrics, seqmamba.ops, sys; assert 'lightning' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
