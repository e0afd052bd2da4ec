"""tests/e2e: the pack in a real ComfyUI (`main.py --cpu`), skipped unless COMFYUI_DIR names a checkout.

COMFYUI_PYTHON (default: this interpreter) runs ComfyUI; it needs ComfyUI's requirements. One server is
started for the whole session (see comfy_server.py); wall times of the workflow runs are printed at the end.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "workflows")]

from comfy_server import FUZZ_TABLE, STREAMS, WALL_TIMES, ComfyServer, start_server  # noqa: E402  (after the path insert)

def comfy_checkout() -> Path | None:
    value = os.environ.get("COMFYUI_DIR")
    return Path(value) if value else None


@pytest.fixture(scope="session")
def comfy_dir() -> Path:
    path = comfy_checkout()
    if path is None:
        pytest.skip("COMFYUI_DIR is not set: the end-to-end tests need a ComfyUI checkout "
                    "(see tests/e2e/README.md)")
    if not (path / "main.py").is_file():
        pytest.skip(f"COMFYUI_DIR={path} is not a ComfyUI checkout (no main.py there)")
    return path


@pytest.fixture(scope="session")
def server(comfy_dir, tmp_path_factory) -> ComfyServer:
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    # the input folder starts empty, as on a fresh install: the pack itself provides the workflows' media
    running = start_server(comfy_dir, python, tmp_path_factory.mktemp("comfyui"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def object_info(server) -> dict:
    return server.get("/object_info")


MODULE_ORDER = ("test_e2e_server", "test_e2e_workflows", "test_e2e_uniavgen", "test_e2e_browser", "test_e2e_fuzz")


def pytest_collection_modifyitems(items):
    """Among the e2e tests: server checks, then the API runs (timed before the browser run could warm
    ComfyUI's cache), then the browser. Other tests keep their places."""
    places = [i for i, item in enumerate(items) if getattr(item.module, "__name__", "") in MODULE_ORDER]
    ordered = sorted((items[i] for i in places), key=lambda item: MODULE_ORDER.index(item.module.__name__))
    for place, item in zip(places, ordered):
        items[place] = item


def pytest_terminal_summary(terminalreporter):
    if WALL_TIMES:
        terminalreporter.write_sep("-", "ComfyUI wall time per workflow (CPU)")
        for name, seconds in WALL_TIMES.items():
            clips = "; ".join(STREAMS.get(name, []))
            terminalreporter.write_line(f"{name}: {seconds:.1f} s  ({clips})")
    if FUZZ_TABLE:
        terminalreporter.write_sep("-", "bad-input cases through ComfyUI (outcome, wall time, message)")
        for name, kind, seconds, message in FUZZ_TABLE:
            terminalreporter.write_line(f"{name:<48} {kind:<6} {seconds:5.1f} s  {message}")
