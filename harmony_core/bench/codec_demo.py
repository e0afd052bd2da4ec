"""Speed and memory of the demo codecs (`bench_demo_rows`), for `python -m harmony_core bench` and the docs.

Measured the way every bench measures (`bench.measure`): each row runs in a fresh subprocess; peak_mb is the
resident growth during one call (CPU) or the allocator's peak growth (CUDA); the time is the best of
`repeats` calls after that first one.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from .measure import measured, run_in_subprocess, time_call

logger = logging.getLogger(__name__)

DEMO_FPS = 25
DEMO_SIZE = (64, 64)
DEMO_FRAMES = 101  # 4 s at 25 fps, rounded to 4k + 1
HD_SIZE = (480, 832)
HD_FRAMES = 49  # ~2 s at 25 fps
DEMO_AUDIO_LATENTS = 125  # 4 s at 31.25 latents/s


def _measure_call(args: dict[str, Any]) -> dict[str, Any]:
    """Child side: build the demo codec and its input, measure one call's peak, then time `repeats` calls."""
    from ..codecs.demo.audio import DemoAudioCodec
    from ..codecs.demo.video import DemoVideoCodec

    device = torch.device(args["device"])
    gen = torch.Generator().manual_seed(0)
    if args["codec"] == "video":
        codec = DemoVideoCodec.default().to(device)
        h, w = args["size"]
        media = (torch.rand(1, 3, args["frames"], h, w, generator=gen) * 2 - 1).to(device)  # [1, 3, F, H, W]
    else:
        codec = DemoAudioCodec.default().to(device)
        media = (torch.rand(1, args["samples"], generator=gen) - 0.5).to(device)  # [1, L]
    data = codec.encode(media) if args["op"] == "decode" else media
    call = getattr(codec, args["op"])
    _, _, peak, method = measured(lambda: call(data), device)
    return {"seconds": time_call(lambda: call(data), repeats=args["repeats"], warmup=0), "peak_mb": peak,
            "peak_method": method}


def _row(codec: str, setting: str, seconds: float, media_seconds: float, peak: float) -> dict[str, Any]:
    return {"codec": codec, "setting": setting, "sec_per_media_sec": round(seconds / media_seconds, 5),
            "peak_mb": round(peak, 1)}


def bench_demo_rows(quick: bool, device: str | torch.device = "cpu") -> list[dict[str, Any]]:
    """Times the demo codecs: video encode/decode at the demo size (64x64, 101 frames = 4.04 s) and at 480p
    (480x832, 49 frames = 1.96 s), audio encode/decode of 4 s. `quick`: one timed call per row instead of the
    best of three. Rows: {codec, setting, sec_per_media_sec, peak_mb}."""
    from ..codecs.demo.audio import DemoAudioCodec

    device = torch.device(device)
    base = {"device": str(device), "repeats": 1 if quick else 3}
    rows = []
    for (h, w), frames in ((DEMO_SIZE, DEMO_FRAMES), (HD_SIZE, HD_FRAMES)):
        setting = f"{h}x{w} {frames} frames, {device.type}"
        for op in ("decode", "encode"):
            r = run_in_subprocess(_measure_call,
                                  {**base, "codec": "video", "op": op, "size": (h, w), "frames": frames})
            rows.append(_row("demo_video", f"{op} {setting}", r["seconds"], frames / DEMO_FPS, r["peak_mb"]))
    audio = DemoAudioCodec.default()
    samples = DEMO_AUDIO_LATENTS * audio.samples_per_latent
    seconds = samples / audio.sample_rate
    setting = f"16 kHz {seconds:g} s, {audio.config.griffin_lim_iters} Griffin-Lim iters, {device.type}"
    for op in ("decode", "encode"):
        r = run_in_subprocess(_measure_call,
                              {**base, "codec": "audio", "op": op, "samples": samples})
        rows.append(_row(audio.name, f"{op} {setting}", r["seconds"], seconds, r["peak_mb"]))
    logger.info("demo codec bench: %s", rows)
    return rows
