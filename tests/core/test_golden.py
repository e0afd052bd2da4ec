"""A stored seeded tiny-model forward and one guided sampler step: refactors and "speedups" must reproduce
them (regenerate with tests/core/golden/make_golden.py only for an intended, explained numerics change)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from safetensors.torch import load_file

from harmony_core.config import preset
from harmony_core.model.harmony import HarmonyModel

GOLDEN = Path(__file__).resolve().parent / "golden"


def _maker():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_forward_and_guided_step_match_golden():
    stored = load_file(GOLDEN / "tiny.safetensors")
    model = HarmonyModel(preset("tiny")).eval()
    model.load_state_dict({k[6:]: v for k, v in stored.items() if k.startswith("model.")}, strict=True)
    inputs = {k[3:]: v for k, v in stored.items() if k.startswith("in.")}
    outputs = _maker().run(model, inputs)
    for name, value in outputs.items():
        torch.testing.assert_close(value, stored[f"out.{name}"], atol=1e-5, rtol=1e-5, msg=name)
