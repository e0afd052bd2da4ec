"""The builder: a checkpoint (or the bundled demo model) + its codecs -> one HarmonyPipeline.

The only module that knows model, codecs and loading together (DESIGN.md's layering): loading reads files,
codecs/registry builds codecs from their configs, pipeline runs them.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .codecs.registry import build_audio_codec, build_video_codec
from .config import preset
from .model.harmony import HarmonyModel
from .model.kit import MemoryKit, apply_kit
from .model.load import load_model
from .pipeline import HarmonyPipeline

log = logging.getLogger(__name__)

DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "harmony_demo.safetensors"


@dataclass(frozen=True)
class CodecFiles:
    """The codec files a real checkpoint needs (the demo model needs none): the Wan2.2 VAE, and the audio
    codec's VAE and vocoder (.safetensors each)."""

    video_vae: str | os.PathLike | None = None
    audio_vae: str | os.PathLike | None = None
    vocoder: str | os.PathLike | None = None


def load_pipeline(model_path: str | os.PathLike | None = None, files: CodecFiles = CodecFiles(),
                  device: str | torch.device = "cpu", attention: str = "sdpa", dtype: torch.dtype | None = None,
                  allow_untrained: bool = False, kit: MemoryKit = MemoryKit()) -> HarmonyPipeline:
    """A HarmonyPipeline for `model_path` (default: the bundled demo model) with the codecs its config names.

    allow_untrained: when the bundled demo file is missing, fall back to the randomly initialised `demo`
    preset (for tests and first setup); it is logged loudly, never silent.
    kit: fp8 weights (quantized while loading), block swap (the model loads on the CPU, then everything but
    the swapped layers moves to `device`), torch.compile per block (model/kit.py).
    """
    path = Path(model_path) if model_path is not None else DEMO_CHECKPOINT
    kit.validate()
    load_device = "cpu" if kit.swap_blocks else device
    if path.is_file():
        model, report = load_model(path, attention=attention, dtype=dtype, device=load_device,
                                   fp8=kit.fp8_scaling if kit.fp8 else None)
        log.info("loaded %s (%s): %s", path.name, report.format, report.describe())
    elif model_path is None and allow_untrained:
        log.warning("the bundled demo model (%s) is not there: using the UNTRAINED demo preset; its clip "
                    "is noise, not a synchronized scene", path)
        with torch.random.fork_rng(devices=[]):  # the same untrained weights every time, no global side effect
            torch.manual_seed(0)
            model = HarmonyModel(preset("demo"), attention).to(load_device).eval()
    else:
        raise FileNotFoundError(f"model file not found: {path}")
    if kit != MemoryKit():
        apply_kit(model, kit, device)
        log.info("memory kit: %s", kit.describe())
    codecs = model.cfg.codecs
    video = build_video_codec(codecs.get("video"), files.video_vae).to(device)
    audio = build_audio_codec(codecs.get("audio"), files.audio_vae, files.vocoder).to(device)
    return HarmonyPipeline(model, video, audio, device)
