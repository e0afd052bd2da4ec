"""`python -m harmony_core bench gpu`: the real layouts on one GPU (issue #12), prepared to run in < 8 minutes.

What it does, per model (UniAVGen 7.06 B and harmony-5b, presets "uniavgen" / "harmony-5b"):
1. builds the model with random weights directly on the GPU in bf16 (torch.nn.init on the device, no file, no
   CPU copy);
2. at 704 x 1248, 109 frames, batch 1 (or the largest frame count that fits: 109, 81, 61, 41, 21), times one
   joint step (one forward of 1 row) and one SyncCFG step (one forward of 3 rows: joint + the two anchors, as
   the sampler batches them) with CUDA events, `REPEATS` timed calls after one warm-up, median;
3. does that for bf16 weights, then fp8 weights (the same model quantized in place), then fp8 + block swap of
   half the layers; peak VRAM = torch.cuda.max_memory_allocated during the SyncCFG step (weights included);
4. compares each step time with the FLOP-count limit of the card: limit = FLOPs / peak FLOP/s, FLOPs from
   `bench.flops.forward_flops` (printed per row; the formula is in that module), the card's dense bf16 peak
   from `PEAK_TFLOPS` (by name; HARMONY_PEAK_TFLOPS=... overrides) and, beside it, the best measured bf16
   matmul (8192^3) on the same card. `time_over_limit` = measured / limit (1.0 would be the roofline).
Attention is SDPA. Without CUDA it returns one row saying why it skipped. `quick`: 41 frames, 1 timed call.
"""
from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from ..config import HarmonyConfig, preset
from .flops import Layout, forward_flops

log = logging.getLogger(__name__)

MODELS = ("uniavgen", "harmony-5b")
HEIGHT, WIDTH, FRAMES = 704, 1248, 109
FALLBACK_FRAMES = (109, 81, 61, 41, 21)
REPEATS = 3
SYNC_ROWS = 3
PEAK_TFLOPS = (("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("GH200", 989.4),
               ("B200", 2250.0), ("A100", 312.0), ("L40S", 362.0), ("RTX 4090", 165.2), ("RTX 3090", 71.0))
SKIP = ("skipped: no CUDA device (torch.cuda.is_available() is False); run `python -m harmony_core bench gpu` on a "
        "machine with one NVIDIA GPU (README: Memory and speed kit)")


def peak_tflops(name: str) -> float | None:
    """Dense bf16 tensor-core peak of the card called `name` (None when unknown); HARMONY_PEAK_TFLOPS overrides."""
    if os.environ.get("HARMONY_PEAK_TFLOPS"):
        return float(os.environ["HARMONY_PEAK_TFLOPS"])
    return next((tf for key, tf in PEAK_TFLOPS if key in name), None)


def layout_for(cfg: HarmonyConfig, frames: int, height: int = HEIGHT, width: int = WIDTH,
               transcript: int = 64) -> Layout:
    """Tokens of one row at `frames` x `height` x `width` (Wan2.2 VAE 4 x 16 x 16, patch 1 x 2 x 2) at the
    model's fps: UniAVGen prepends its reference frame, has 100 mel frames/s and reads `transcript` ids;
    Harmony has 31.25 MMAudio latents/s and a 512-row audio caption."""
    from fractions import Fraction

    from .. import families, timeline

    _, ph, pw = cfg.video.patch_size
    per_frame = (height // 16 // ph) * (width // 16 // pw)
    tv = timeline.latent_frames_for(frames)
    uniavgen = families.is_uniavgen(cfg)
    rate = Fraction(100) if uniavgen else Fraction(125, 4)
    audio = families.audio_frames(cfg, frames, cfg.defaults.fps, rate)
    return Layout(frames=tv + (1 if uniavgen else 0), per_frame=per_frame, audio=audio, ref_audio=0,
                  context=cfg.video.text_len, transcript=transcript if uniavgen else cfg.audio.text_len)


def build_on_device(cfg: HarmonyConfig, device: torch.device, dtype: torch.dtype = torch.bfloat16,
                    ) -> torch.nn.Module:
    """The model with random weights created on `device` in `dtype` (each module's own init, run there)."""
    from ..model.harmony import HarmonyModel

    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            return HarmonyModel(cfg, attention="sdpa").eval()
    finally:
        torch.set_default_dtype(default)


def inputs(cfg: HarmonyConfig, lay: Layout, rows: int, device: torch.device, height: int = HEIGHT,
           width: int = WIDTH) -> tuple:
    """Random latents, noise levels and conditioning of `rows` rows at `lay` (on `device`)."""
    from .. import families
    from ..model.conditioning import Conditioning
    from ..model.transcript import encode_transcripts
    from ..model.transcript_ids import transcript_ids

    g = torch.Generator(device=device).manual_seed(0)
    uniavgen = families.is_uniavgen(cfg)
    tv, h, w = lay.frames - (1 if uniavgen else 0), height // 16, width // 16

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, device=device)
    text = rand(rows, min(64, cfg.video.text_len), cfg.video.text_dim)
    if uniavgen:
        ids = transcript_ids(["The quick brown fox jumps over the lazy dog."] * rows)
        cond = Conditioning(text, None, ids.ids.to(device), ref_image=rand(rows, cfg.video.in_dim, 1, h, w),
                            transcript_lens=ids.lens.to(device))
    else:
        cond = Conditioning(text, rand(rows, min(64, cfg.audio.text_len), cfg.audio.text_dim),
                            encode_transcripts(["the quick brown fox"] * rows).to(device))
    return (rand(rows, cfg.video.in_dim, tv, h, w), rand(rows, cfg.audio.in_dim, lay.audio),
            torch.full((rows, tv), 0.7, device=device), torch.full((rows, lay.audio), 0.7, device=device), cond)


def timed(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, float | None]:
    """(median seconds of `repeats` calls after one warm-up, peak MiB allocated during the calls or None)."""
    fn()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    seconds = []
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            seconds.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return statistics.median(seconds), peak


def matmul_tflops(device: torch.device, n: int = 8192) -> float:
    """Best bf16 n x n x n matmul throughput measured on `device` (TFLOP/s)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    best, _ = timed(lambda: a @ b, device, 5)
    return 2 * n ** 3 / best / 1e12


def settings(model: torch.nn.Module, device: torch.device) -> list[tuple[str, Callable[[], None]]]:
    """(name, set-up) in the order they run on the same model: bf16, fp8, fp8 + half the layers swapped."""
    from ..model.fp8 import quantize_model
    from ..model.offload import enable_block_swap

    half = len(model.video.blocks) // 2
    return [("bf16", lambda: None), ("fp8", lambda: quantize_model(model)),
            (f"fp8 + swap {half}", lambda: enable_block_swap(model, half, device))]


def measure_model(name: str, cfg: HarmonyConfig, device: torch.device, frames: tuple[int, ...], repeats: int,
                  peak: float | None, height: int = HEIGHT, width: int = WIDTH) -> list[dict[str, Any]]:
    """Rows of one model: each setting x {joint (1 row), SyncCFG (3 rows)} at the first frame count that fits."""
    model = build_on_device(cfg, device)
    out = []
    for setting, set_up in settings(model, device):
        set_up()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        for n in frames:
            try:
                out += _setting_rows(name, setting, model, cfg, n, device, repeats, peak, height, width)
                break
            except torch.OutOfMemoryError:
                log.warning("%s %s: %d frames do not fit; trying fewer", name, setting, n)
                torch.cuda.empty_cache()
    del model
    return out


def _setting_rows(name: str, setting: str, model: torch.nn.Module, cfg: HarmonyConfig, frames: int,
                  device: torch.device, repeats: int, peak: float | None, height: int, width: int,
                  ) -> list[dict[str, Any]]:
    lay = layout_for(cfg, frames, height, width)
    rows = []
    for step, batch in (("joint", 1), ("SyncCFG", SYNC_ROWS)):
        x = inputs(cfg, lay, batch, device, height, width)
        lay = layout_for(cfg, frames, height, width, transcript=x[4].transcript.shape[1])
        with torch.no_grad():
            seconds, vram = timed(lambda: model(*x), device, repeats)
        flops = batch * forward_flops(cfg, lay)["total"]
        limit = flops / (peak * 1e12) if peak else None
        rows.append({"model": name, "setting": setting, "step": step, "frames": frames,
                     "size": f"{width}x{height}", "rows": batch, "s_per_step": round(seconds, 3),
                     "peak_vram_gib": None if vram is None else round(vram / 1024, 2),
                     "tflop_per_step": flops / 1e12,
                     "time_over_limit": None if limit is None else round(seconds / limit, 2),
                     "achieved_tflops": flops / seconds / 1e12})
    return rows


def rows(quick: bool = False) -> list[dict[str, Any]]:
    """The benchmark's rows, or one row saying why it skipped."""
    if not torch.cuda.is_available():
        log.info("bench gpu: %s", SKIP)
        return [{"suite": "gpu", "status": SKIP}]
    device = torch.device("cuda", torch.cuda.current_device())
    name = torch.cuda.get_device_name(device)
    peak = peak_tflops(name)
    measured = matmul_tflops(device)
    log.info("bench gpu on %s: spec peak %s TFLOP/s (dense bf16), measured matmul %.0f TFLOP/s", name, peak,
             measured)
    frames = (41,) if quick else FALLBACK_FRAMES
    out = []
    for model in MODELS:
        start = time.perf_counter()
        out += measure_model(model, preset(model), device, frames, 1 if quick else REPEATS, peak or measured)
        log.info("bench gpu: %s done in %.0f s", model, time.perf_counter() - start)
    for r in out:
        r.update({"card": name, "peak_tflops": peak if peak else f"unknown: matmul {measured:.0f}",
                  "matmul_tflops": round(measured, 1)})
    return out
