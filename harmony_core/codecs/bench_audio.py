"""MMAudio audio decode (VAE decode + BigVGAN vocoder) speed and peak memory at the real sizes.

`bench_mmaudio_decode` measures one decode; `bench_audio_rows` returns rows {codec, setting,
sec_per_media_sec, peak_mb} for `python -m harmony_core bench`.

Method
- Random weights with the real shapes (`MMAudioCodec.random(mode, small=False)`): 16k = VAE_16k (hidden
  384) + BigVGAN v1 (upsample_initial_channel 1536, x256); 44k = VAE_44k (hidden 512) + BigVGAN v2
  44 kHz 512x (1536). Input: an N(0, 1) latent covering the requested seconds.
- Each measurement runs in a fresh Python subprocess so that earlier work and the allocator's cache
  neither hide nor inflate the figure. The child decodes 4 latents once (warm-up), then times one
  decode of the whole latent. `sec_per_media_sec` = decode seconds / audio seconds produced.
- CPU peak memory: right before the timed decode the child resets the kernel's peak-RSS counter
  (writes "5" to /proc/self/clear_refs) and reads VmRSS; afterwards it reads VmHWM. `peak_mb` is the
  growth (activations and output; weights excluded). Where clear_refs cannot be written it falls back
  to getrusage's lifetime peak (an upper bound). CUDA: max_memory_allocated growth over
  memory_allocated before the decode.
"""
from __future__ import annotations

import json
import logging
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .mmaudio_codec import MMAudioCodec

logger = logging.getLogger(__name__)

WARMUP_LATENTS = 4
_CHILD = "import sys; from harmony_core.codecs.bench_audio import _child_main; _child_main(sys.argv[1])"
_REPO = Path(__file__).resolve().parents[2]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(f"{field} not in /proc/self/status")


def _cpu_reset_peak() -> tuple[str, float]:
    """Reset the peak-RSS counter where allowed; (method, resident MB now)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM after clear_refs", _status_mb("VmRSS")
    except OSError:
        return "ru_maxrss (lifetime peak)", _status_mb("VmRSS")


def _cpu_peak(method: str) -> float:
    if method.startswith("VmHWM"):
        return _status_mb("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _measure_decode(args: dict[str, Any]) -> dict[str, Any]:
    """Child side: build the real-size codec, warm up, time one decode, return seconds and peak MB."""
    torch.set_num_threads(args["threads"])
    device = torch.device(args["device"])
    codec = MMAudioCodec.random(args["mode"], seed=0, small=False).to(device)
    ta = math.ceil(args["seconds"] * codec.latent_rate)
    gen = torch.Generator().manual_seed(0)
    latent = torch.randn(1, codec.latent_channels, ta, generator=gen).to(device)  # [1, C_a, Ta]
    codec.decode(latent[..., :WARMUP_LATENTS])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        method, before = "cuda max_memory_allocated", torch.cuda.memory_allocated(device) / 2 ** 20
    else:
        method, before = _cpu_reset_peak()
    start = time.perf_counter()
    wave = codec.decode(latent)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else _cpu_peak(method)
    return {"decode_sec": seconds, "peak_mb": max(0.0, peak - before), "peak_method": method,
            "media_sec": wave.shape[-1] / codec.sample_rate, "vae_hidden": codec.vae.cfg.hidden_dim,
            "vocoder_channels": codec.vocoder.cfg.upsample_initial_channel, "hop": codec.vocoder.cfg.hop}


def _child_main(payload: str) -> None:
    """Entry point of the measuring subprocess: JSON args in, one JSON line out on stdout."""
    sys.stdout.write(json.dumps(_measure_decode(json.loads(payload))) + "\n")


def bench_mmaudio_decode(mode: str = "16k", seconds: float = 2.0, device: str = "cpu",
                         threads: int | None = None) -> dict[str, Any]:
    """Decode `seconds` of audio with the real-size MMAudio VAE + BigVGAN in a fresh process.

    Returns codec, setting, sec_per_media_sec, peak_mb, decode_sec, media_sec, peak_method, threads.
    """
    threads = threads or torch.get_num_threads()
    args = {"mode": mode, "seconds": seconds, "device": device, "threads": threads}
    path = os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True,
                          env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"MMAudio decode bench subprocess failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
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
    return [{k: bench_mmaudio_decode(mode, seconds, device)[k] for k in keys}
            for mode in (("16k",) if quick else ("16k", "44k"))]
