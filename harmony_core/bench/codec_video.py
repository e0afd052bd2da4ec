"""Wan2.2 VAE decode speed and peak memory at the real widths (dim 160, dec_dim 256) with random weights.

`bench_wan_vae` measures one decode; `bench_video_rows` returns rows {codec, setting, sec_per_media_sec,
peak_mb} for `python -m harmony_core bench`.

Method: each measurement runs in a fresh subprocess (`bench.measure`, which also defines peak_mb). The child
builds the codec and a N(0, 1) latent, then times a single `WanVideoCodec.decode` (no warm-up: one call takes
tens of seconds on a CPU). `sec_per_media_sec` = decode seconds / (F / fps).
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

import torch

from ..codecs.wan.codec import WanVideoCodec
from ..codecs.wan.tiling import TileSpec, tile_spans
from ..codecs.wan.vae import WanVAEConfig
from ..timeline import causal_frames_covering, latent_frames_for
from .measure import measured, run_in_subprocess

logger = logging.getLogger(__name__)

BENCH_TILE = TileSpec(tile=16, overlap=2, context=2)  # 256-px cores: 8 tiles at 480x832


def _measure_decode(args: dict[str, Any]) -> dict[str, Any]:
    """Child side: build the real-width codec, decode once, return seconds and peak MB."""
    device, dtype = torch.device(args["device"]), getattr(torch, args["dtype"])
    codec = WanVideoCodec.random(WanVAEConfig(), seed=0).to(device, dtype)
    codec.tiling = TileSpec(**args["tile"]) if args["tiled"] else None
    shape = (1, codec.latent_channels, args["latent_frames"], args["height"] // 16, args["width"] // 16)
    latent = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    video, seconds, peak, method = measured(lambda: codec.decode(latent), device)
    return {"decode_sec": seconds, "peak_mb": peak, "peak_method": method, "frames": int(video.shape[2])}


def bench_wan_vae(height: int = 480, width: int = 832, seconds: float = 0.2, fps: float = 24,
                  tiled: bool = False, tile: TileSpec = BENCH_TILE, device: str = "cpu",
                  dtype: str = "float32", threads: int | None = None) -> dict[str, Any]:
    """Decode a random latent covering `seconds` at `fps` with the real-width Wan2.2 VAE, in a fresh process.

    Returns codec, setting, sec_per_media_sec, peak_mb, decode_sec, frames, media_sec, peak_method, threads.
    """
    if height % 16 or width % 16:
        raise ValueError(f"height and width must be multiples of 16, got {height}x{width}")
    frames = causal_frames_covering(seconds, fps)
    threads = threads or torch.get_num_threads()
    args = {"height": height, "width": width, "latent_frames": latent_frames_for(frames), "tiled": tiled,
            "tile": asdict(tile), "device": device, "dtype": dtype, "threads": threads}
    result = run_in_subprocess(_measure_decode, args)
    media = frames / fps
    n_tiles = len(tile_spans(height // 16, tile.tile, tile.overlap)) * len(tile_spans(width // 16, tile.tile,
                                                                                        tile.overlap))
    how = f"tiled {n_tiles} x (tile {tile.tile}, overlap {tile.overlap}, context {tile.context})" if tiled \
        else "untiled"
    row = {"codec": "wan2.2", "sec_per_media_sec": round(result["decode_sec"] / media, 2),
           "peak_mb": round(result["peak_mb"], 1),
           "setting": f"decode {height}x{width} {frames} frames ({media:.3g} s @ {fps:g} fps), {how}, "
                      f"{device} {dtype} {threads} threads",
           "decode_sec": round(result["decode_sec"], 2), "frames": frames, "media_sec": media,
           "peak_method": result["peak_method"], "threads": threads}
    logger.info("Wan VAE bench: %s", row)
    return row


def bench_video_rows(quick: bool, device: str = "cpu") -> list[dict[str, Any]]:
    """Wan2.2 VAE decode at the real width: the demo size (64x64, 1 s; `quick`: 0.2 s) and 352x640 untiled vs
    tiled (6 tiles) over one frame. One frame at a size with several tiles answers what these rows ask (the
    tiled decode's peak against the untiled one, and its time cost: both grow linearly with the frame count and
    the area) without the minutes a multi-frame 480p real-width decode takes on 2 CPU cores; `bench_wan_vae`
    takes any size. Rows: {codec, setting, sec_per_media_sec, peak_mb}."""
    keys = ("codec", "setting", "sec_per_media_sec", "peak_mb")
    demo = bench_wan_vae(height=64, width=64, seconds=0.2 if quick else 1.0, fps=25, device=device)
    rows = [bench_wan_vae(height=352, width=640, seconds=1 / 24, tiled=tiled, device=device)
            for tiled in (False, True)]
    return [{k: r[k] for k in keys} for r in (demo, *rows)]
