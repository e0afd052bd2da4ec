"""UniAVGen's own guidance (MA-CFG + skip-layer guidance) vs Harmony's SyncCFG on the same weights: time per
sampling step of the `uniavgen-tiny` preset (random weights, toy codecs with the real latent layouts) through the
whole pipeline, in one process, one thread, alternating runs, best of `repeats`.

MA-CFG makes two model calls per step (cond, uncond: their flags differ, so they cannot share a batch); SyncCFG
one call of three rows (joint, audio-driven and video-driven anchors). Setup (conditioning, the anchors' encode)
is inside the timed call, as a user sees it; `steps` spreads it over several steps.
"""
from __future__ import annotations

import time
from typing import Any

import torch

from ..codecs.uniavgen.codec import UniAVGenAudioCodec
from ..codecs.wan.codec import WanVideoCodec
from ..codecs.wan.vae import WanVAEConfig
from ..config import preset
from ..model.harmony import HarmonyModel
from ..pipeline import Captions, HarmonyPipeline, Media, Request, Sampling
from ..sampling import Guidance, SyncCFG

# 48 latent channels and the Wan2.2 VAE's 4x16x16 strides at toy widths: the codecs only shape the latents here
TOY_VAE = WanVAEConfig(dim=4, dec_dim=4, z_dim=48, dim_mult=(1, 2, 2, 2), num_res_blocks=1,
                       temperal_downsample=(False, True, True))


def _pipeline() -> HarmonyPipeline:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = HarmonyModel(preset("uniavgen-tiny")).eval()
    return HarmonyPipeline(model, WanVideoCodec.random(TOY_VAE), UniAVGenAudioCodec.random())


def _request(pipe: HarmonyPipeline, steps: int, guidance: Guidance | None) -> Request:
    cfg, d = pipe.model.cfg, pipe.model.cfg.defaults
    h, w = d.height // 16, d.width // 16
    gen = torch.Generator().manual_seed(1)
    ref = torch.randn(1, cfg.video.in_dim, 1, h, w, generator=gen)                 # reference image latent
    ctx = torch.randn(1, 7, cfg.video.text_dim, generator=gen)
    return Request(transcript="Over the past week, it rained.", media=Media(image_latent=ref),
                   captions=Captions(video=ctx, negative_video=torch.zeros(1, 1, cfg.video.text_dim)),
                   sampling=Sampling(steps=steps), guidance=guidance)


def rows(repeats: int = 5, steps: int = 4) -> list[dict[str, Any]]:
    """One row: seconds per step for MA-CFG (the checkpoint's default) and SyncCFG (s_v 3, s_a 2), and the ratio."""
    pipe = _pipeline()
    kinds = {"macfg": _request(pipe, steps, None), "synccfg": _request(pipe, steps, Guidance(sync=SyncCFG(3.0, 2.0)))}
    best = {k: float("inf") for k in kinds}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, req in kinds.items():      # warm-up
            pipe.sample(req)
        for _ in range(repeats):             # alternating, so drift on a shared machine hits both alike
            for name, req in kinds.items():
                start = time.perf_counter()
                pipe.sample(req)
                best[name] = min(best[name], time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    d = pipe.model.cfg.defaults
    return [{"preset": "uniavgen-tiny", "size": f"{d.width}x{d.height}x{d.num_frames}", "steps": steps,
             "macfg_s_per_step": best["macfg"] / steps, "synccfg_s_per_step": best["synccfg"] / steps,
             "synccfg_over_macfg": best["synccfg"] / best["macfg"], "threads": 1}]
