"""HarmonySyncCFGGuider's schema and input checks against the ComfyUI stand-in (no ComfyUI needed).

Sampling with it needs ComfyUI's sampler internals: tests/e2e/test_e2e_ltx_guider.py runs it in a real ComfyUI.
"""

from __future__ import annotations

import sys

import pytest
from comfy_api.latest import io

from node_harness import pack_module, run_node

INPUTS = {"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING", "video_scale": "FLOAT",
          "audio_scale": "FLOAT", "cfg": "FLOAT", "sync_start": "FLOAT", "sync_end": "FLOAT", "audio_vae": "VAE",
          "vae": "VAE", "image": "IMAGE"}
WIDGETS = dict(video_scale=3.0, audio_scale=2.0, cfg=1.0, sync_start=0.0, sync_end=1.0)


@pytest.fixture
def node(monkeypatch):
    if not hasattr(io, "Guider"):  # ComfyUI's io.Guider (GUIDER socket); the stand-in may predate it
        monkeypatch.setattr(io, "Guider", io.Custom("GUIDER"), raising=False)
    return pack_module("nodes.guider").HarmonySyncCFGGuider


def test_schema_is_a_guider_with_tooltips_and_native_types(node):
    info = node.GET_NODE_INFO_V1()
    assert info["name"] == "HarmonySyncCFGGuider" and info["category"].startswith("Harmony/")
    assert info["output"] == ["GUIDER"] and all(info["output_tooltips"])
    seen = {}
    for kind in ("required", "optional"):
        for name, (io_type, options) in info["input"].get(kind, {}).items():
            seen[name] = io_type
            assert options.get("tooltip"), name
            assert (kind == "optional") == (name in ("audio_vae", "vae", "image")), name
            if io_type == "FLOAT":
                assert options["min"] <= options["default"] <= options["max"], name
    assert seen == INPUTS


def test_defaults_are_harmony_s(node):
    floats = node.GET_NODE_INFO_V1()["input"]["required"]
    assert {k: floats[k][1]["default"] for k in WIDGETS} == WIDGETS


@pytest.mark.parametrize(("name", "value"), [("video_scale", 11.0), ("cfg", float("nan")), ("sync_end", 1.5)])
def test_values_out_of_range_are_refused_before_comfyui_is_touched(node, name, value):
    with pytest.raises(ValueError, match=name):
        run_node(node, model=object(), positive=[], negative=[], **{**WIDGETS, name: value})


def test_importing_the_node_does_not_import_comfyui_sampler_internals(node):
    assert "comfy.samplers" not in sys.modules  # the adapter is imported when the node runs
