"""Measured peak activation memory of one forward against `model.memory.forward_bytes` (demo preset,
random weights, CPU float32, each case in a fresh process)."""
from __future__ import annotations

from typing import Any

import torch

from .measure import measured, run_in_subprocess

CASES = ((1, 21, 16, 102), (4, 21, 16, 102), (2, 21, 32, 102), (8, 41, 16, 204))  # rows, Tv, h = w, Ta


def forward_peak(args: dict[str, Any]) -> dict[str, Any]:
    """Subprocess side: one forward of the demo preset over `rows` rows of a [Tv, h, w] video latent and
    Ta audio latents; peak resident growth (MB) beside the estimate (MB)."""
    from ..config import preset
    from ..model.conditioning import Conditioning
    from ..model.harmony import HarmonyModel
    from ..model.memory import forward_bytes

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = preset("demo")
    model = HarmonyModel(cfg).eval()
    b, tv, hw, ta = args["rows"], args["tv"], args["hw"], args["ta"]
    video = torch.randn(b, cfg.video.in_dim, tv, hw, hw)
    audio = torch.randn(b, cfg.audio.in_dim, ta)
    cond = Conditioning(torch.randn(b, cfg.video.text_len, cfg.video.text_dim),
                        torch.randn(b, cfg.audio.text_len, cfg.audio.text_dim),
                        torch.full((b, ta), 256, dtype=torch.long))
    t_video, t_audio = torch.full((b, tv), 0.5), torch.full((b, ta), 0.5)
    with torch.no_grad():
        # warm-up on a small input: first-call costs (kernel workspaces, thread pools) are not activations
        small = Conditioning(cond.video_context[:1], cond.audio_context[:1], cond.transcript[:1, :8])
        model(video[:1, :, :2], audio[:1, :, :8], t_video[:1, :2], t_audio[:1, :8], small)
        _, seconds, peak_mb, method = measured(lambda: model(video, audio, t_video, t_audio, cond),
                                               torch.device("cpu"))
    _, ph, pw = cfg.video.patch_size
    tokens = tv * (hw // ph) * (hw // pw)
    estimate = forward_bytes(cfg, b, tokens, ta, element_size=4) / 2**20
    return {"rows": b, "video_tokens": tokens, "audio_latents": ta,
            "measured_mb": peak_mb, "estimate_mb": estimate,
            "estimate/measured": estimate / max(peak_mb, 1e-9),
            "forward_s": seconds, "peak_method": method}


def rows(cases: tuple[tuple[int, int, int, int], ...] = CASES) -> list[dict]:
    return [run_in_subprocess(forward_peak,
                              {"rows": r, "tv": tv, "hw": hw, "ta": ta}) for r, tv, hw, ta in cases]
