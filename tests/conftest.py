"""Shared fixtures: the parity fixture folder and deterministic torch settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def parity_root() -> Path:
    """../shared/parity beside the repo (CI lays shared/ there), or $HARMONY_PARITY_DIR."""
    env = os.environ.get("HARMONY_PARITY_DIR")
    return Path(env) if env else REPO.parent / "shared" / "parity"


@pytest.fixture
def parity_dir() -> Path:
    root = parity_root()
    if not root.is_dir():
        pytest.skip(f"parity fixtures not found at {root} (set HARMONY_PARITY_DIR)")
    return root


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
