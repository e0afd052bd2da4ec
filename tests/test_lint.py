"""ruff with the project's rule set (pyproject.toml [tool.ruff.lint]: pyflakes, import order, no print, annotated
arguments and public returns, exec/eval) over the whole repository, as part of `make test`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_passes_with_the_project_rules() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO), "--no-cache",
                             "--output-format", "concise"], capture_output=True, text=True, cwd=REPO)
    if "No module named ruff" in result.stderr:
        pytest.skip("ruff is not installed (requirements-dev.txt pins it)")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_set_is_real() -> None:
    """Negative control: the configured rules catch an unused import, a print and an unannotated argument."""
    bad = "import os\n\n\ndef f(x):\n    print(x)\n"
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--stdin-filename", "harmony_core/x.py",
                             "--output-format", "concise", "-"], input=bad, capture_output=True, text=True,
                            cwd=REPO)
    if "No module named ruff" in result.stderr:
        pytest.skip("ruff is not installed (requirements-dev.txt pins it)")
    assert {"F401", "T201", "ANN001", "ANN201"} <= {w for w in result.stdout.split() if w[:1].isupper()}
