"""docs/uniavgen.md shows the memory and time tables that tests/workflows/uniavgen_estimates.py computes now (a
change to the model, the memory plan or the FLOP count that moves a figure fails here until the guide is updated
with `python tests/workflows/uniavgen_estimates.py`)."""
from __future__ import annotations

from pathlib import Path

from uniavgen_estimates import markdown

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "uniavgen.md"


def test_the_guide_shows_the_computed_tables_labelled_as_computed():
    guide = GUIDE.read_text()
    assert markdown() in guide
    assert "computed, not measured" in guide
