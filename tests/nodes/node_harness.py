"""How tests/nodes reaches the pack: the ComfyUI stand-in on sys.path, the pack imported as ComfyUI imports a
custom node, and V3 nodes executed as ComfyUI's execution.py executes them.

The stand-in (comfy_stub/) goes on sys.path here only, never in shipped code. The pack's `__init__.py` is
imported as a package (so relative imports resolve, harmony_core included), here under the name
`harmony_pack`. A node call gets a per-call class clone carrying the hidden inputs, locked against class
attribute writes, called through EXECUTE_NORMALIZED.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

STUB = Path(__file__).resolve().parent / "comfy_stub"
REPO = Path(__file__).resolve().parents[2]
PACK = "harmony_pack"

if str(STUB) not in sys.path:
    sys.path.insert(0, str(STUB))

from comfy_api.latest import io  # noqa: E402  (the stand-in, after the path insert)


def load_pack():
    """Import the repository as ComfyUI imports a pack (spec_from_file_location of its __init__.py)."""
    if PACK not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACK, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK]


def pack_module(name: str):
    load_pack()
    return importlib.import_module(f"{PACK}.{name}")


def _lock(cls: type) -> type:
    """A copy of `cls` whose class attributes cannot be set (ComfyUI's lock_class)."""

    class Locked(type(cls)):
        def __setattr__(self, name, value):
            raise AttributeError(f"Cannot modify class attribute '{name}' on locked class '{self.__name__}'")

    return Locked(cls.__name__, cls.__bases__, dict(cls.__dict__))


def run_node(cls: type, hidden: dict | None = None, **inputs) -> io.NodeOutput:
    """Execute a V3 node as ComfyUI does; `hidden` maps io.Hidden members to values."""
    cls.GET_SCHEMA()
    clone = cls.PREPARE_CLASS_CLONE({"hidden_inputs": hidden or {}})
    return getattr(cls, cls.FUNCTION).__func__(_lock(clone), **inputs)


# HarmonySampler widget values for fast tests: a 9-frame 64x64 clip in 2 Euler steps, SyncCFG 1.5.
SAMPLER_WIDGETS = dict(mode="joint", width=64, height=64, frames=9, fps=25.0, steps=2, shift=5.0, seed=7,
                       solver="euler", sync_video_scale=1.5, sync_audio_scale=1.5, sync_start=0.0, sync_end=1.0,
                       text_video_scale=1.0, text_audio_scale=1.0, batch=1)
