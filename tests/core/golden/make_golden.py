"""Regenerate tests/core/golden/tiny.safetensors (only when a numerics change is intended and explained).

    .venv/bin/python tests/core/golden/make_golden.py
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from harmony_core.config import preset
from harmony_core.model.conditioning import Conditioning, HarmonyDenoiser
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.transcript import encode_transcripts
from harmony_core.sampling import Guidance, SyncAnchors, SyncCFG, TextCFG, joint, sample

HERE = Path(__file__).resolve().parent


def build() -> tuple[HarmonyModel, dict[str, torch.Tensor]]:
    torch.manual_seed(1234)
    model = HarmonyModel(preset("tiny")).eval()
    with torch.no_grad():
        for p in model.interaction.parameters():      # make the cross-modal paths live
            p.normal_(0, 0.2)
    g = torch.Generator().manual_seed(99)
    t = {
        "video": torch.randn(1, 48, 5, 8, 12, generator=g), "audio": torch.randn(1, 20, 31, generator=g),
        "t_video": torch.rand(1, 5, generator=g), "t_audio": torch.rand(1, 31, generator=g),
        "video_context": torch.randn(1, 6, 32, generator=g), "audio_context": torch.randn(1, 4, 32, generator=g),
        "ref_audio": torch.randn(1, 20, 6, generator=g), "transcript": encode_transcripts(["golden words"]),
        "mute_audio": torch.randn(1, 20, 31, generator=g), "static_video": torch.randn(1, 48, 5, 8, 12, generator=g),
    }
    return model, t


def run(model: HarmonyModel, t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    cond = Conditioning(t["video_context"], t["audio_context"], t["transcript"], t["ref_audio"])
    negative = Conditioning(torch.zeros_like(t["video_context"]), torch.zeros_like(t["audio_context"]),
                            encode_transcripts([""]), t["ref_audio"])
    with torch.no_grad():
        out_v, out_a = model(t["video"], t["audio"], t["t_video"], t["t_audio"], cond)
        guidance = Guidance(SyncCFG(3.0, 2.0), TextCFG(1.5, 1.5), SyncAnchors(t["mute_audio"], t["static_video"]))
        step_v, step_a = sample(HarmonyDenoiser(model, cond, negative), t["video"], t["audio"], joint(5, 31),
                                guidance, [1.0, 0.8])
    return {"out_video": out_v, "out_audio": out_a, "step_video": step_v, "step_audio": step_a}


if __name__ == "__main__":
    model, inputs = build()
    outputs = run(model, inputs)
    weights = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file({**weights, **{f"in.{k}": v for k, v in inputs.items()}, **{f"out.{k}": v.contiguous() for k, v in outputs.items()}},
              HERE / "tiny.safetensors")
