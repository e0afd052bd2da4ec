"""MMAudio audio decode (VAE decode + BigVGAN vocoder) speed and peak memory at the real sizes.

`bench_mmaudio_decode` measures one decode; `bench_audio_rows` returns rows {codec, setting,
sec_per_media_sec, peak_mb} for `python -m harmony_core bench`.

Method
- Random weights with the real shapes (`MMAudioCodec.random(mode, small=False)`): 16k = VAE_16k (hidden
  384) + BigVGAN v1 (upsample_initial_channel 1536, x256); 44k = VAE_44k (hidden 512) + BigVGAN v2
  44 kHz 512x (1536). Input: an N(0, 1) latent covering the requested seconds.
- Each measurement runs in a fresh subprocess (`bench.measure`, which also defines peak_mb). The child
  decodes 4 latents once (warm-up), then times one decode of the whole latent. `sec_per_media_sec` =
  decode seconds / audio seconds produced.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import torch

from ..codecs.mmaudio.codec import MMAudioCodec
from .measure import measured, run_in_subprocess

logger = logging.getLogger(__name__)

WARMUP_LATENTS = 4


def _measure_decode(args: dict[str, Any]) -> dict[str, Any]:
    """Child side: build the real-size codec, warm up, time one decode, return seconds and peak MB."""
    device = torch.device(args["device"])
    codec = MMAudioCodec.random(args["mode"], seed=0, small=False).to(device)
    ta = math.ceil(args["seconds"] * codec.latent_rate)
    gen = torch.Generator().manual_seed(0)
    latent = torch.randn(1, codec.latent_channels, ta, generator=gen).to(device)  # [1, C_a, Ta]
    codec.decode(latent[..., :WARMUP_LATENTS])
    wave, seconds, peak, method = measured(lambda: codec.decode(latent), device)
    return {"decode_sec": seconds, "peak_mb": peak, "peak_method": method,
            "media_sec": wave.shape[-1] / codec.sample_rate, "vae_hidden": codec.vae.cfg.hidden_dim,
            "vocoder_channels": codec.vocoder.cfg.upsample_initial_channel, "hop": codec.vocoder.cfg.hop}


def bench_mmaudio_decode(mode: str = "16k", seconds: float = 2.0, device: str = "cpu",
                         threads: int | None = None) -> dict[str, Any]:
    """Decode `seconds` of audio with the real-size MMAudio VAE + BigVGAN in a fresh process.

    Returns codec, setting, sec_per_media_sec, peak_mb, decode_sec, media_sec, peak_method, threads.
    """
    threads = threads or torch.get_num_threads()
    args = {"mode": mode, "seconds": seconds, "device": device, "threads": threads}
    r = run_in_subprocess(_measure_decode, args)
    row = {"codec": f"mmaudio-{mode}", "sec_per_media_sec": round(r["decode_sec"] / r["media_sec"], 2),
           "peak_mb": round(r["peak_mb"], 1),
           "setting": f"decode {r['media_sec']:.2f} s: VAE hidden {r['vae_hidden']} + BigVGAN "
                      f"{r['vocoder_channels']} ch x{r['hop']}, {device} float32 {threads} threads",
           "decode_sec": round(r["decode_sec"], 2), "media_sec": r["media_sec"],
           "peak_method": r["peak_method"], "threads": threads}
    logger.info("MMAudio decode bench: %s", row)
    return row


def bench_audio_rows(quick: bool, device: str = "cpu") -> list[dict[str, Any]]:
    """MMAudio decode at the real sizes: 16k for 2 s (`quick`), else 16k and 44k for 4 s each.

    Rows: {codec, setting, sec_per_media_sec, peak_mb}.
    """
    seconds = 2.0 if quick else 4.0
    keys = ("codec", "setting", "sec_per_media_sec", "peak_mb")
    rows = [bench_mmaudio_decode(mode, seconds, device) for mode in (("16k",) if quick else ("16k", "44k"))]
    return [{k: row[k] for k in keys} for row in rows]   # one decode per mode (not one per column)
