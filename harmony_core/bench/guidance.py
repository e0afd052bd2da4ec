"""SyncCFG passes as ONE batched forward (batch 3) vs three sequential forwards, on the tiny preset."""
from __future__ import annotations

import torch

from ..config import preset
from ..model.conditioning import Conditioning
from ..model.harmony import HarmonyModel
from ..model.transcript import encode_transcripts
from .measure import time_call


def rows(repeats: int = 5, frames: int = 5, audio: int = 31) -> list[dict]:
    torch.manual_seed(0)
    cfg = preset("tiny")
    model = HarmonyModel(cfg).eval()
    video = torch.randn(1, cfg.video.in_dim, frames, 8, 12)
    sound = torch.randn(1, cfg.audio.in_dim, audio)
    cond = Conditioning(torch.randn(1, 6, cfg.video.text_dim), torch.randn(1, 6, cfg.audio.text_dim),
                        encode_transcripts(["hello"]))
    sigma_v, sigma_a = torch.full((1, frames), 0.7), torch.full((1, audio), 0.7)
    # three passes: joint, audio-driven negative (mute audio at t_a = 0), video-driven negative (static video, t_v = 0)
    vids = [video, video, torch.zeros_like(video)]
    auds = [sound, torch.zeros_like(sound), sound]
    tvs = [sigma_v, sigma_v, torch.zeros_like(sigma_v)]
    tas = [sigma_a, torch.zeros_like(sigma_a), sigma_a]
    cond3 = cond.select(torch.zeros(3, dtype=torch.long))

    def batched():
        return model(torch.cat(vids), torch.cat(auds), torch.cat(tvs), torch.cat(tas), cond3)

    def sequential():
        return [model(v, a, tv, ta, cond) for v, a, tv, ta in zip(vids, auds, tvs, tas)]

    with torch.no_grad():
        out_b, out_s = batched(), sequential()
        diff = max(float((out_b[0][i:i + 1] - out_s[i][0]).abs().max()) for i in range(3))
        t_batched = time_call(batched, repeats=repeats)
        t_seq = time_call(sequential, repeats=repeats)
    return [{"preset": "tiny", "passes": 3, "batched_s": t_batched, "sequential_s": t_seq,
             "speedup_batched": t_seq / t_batched, "max_abs_diff": diff}]
