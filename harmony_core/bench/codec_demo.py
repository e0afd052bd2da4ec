"""Speed and memory of the demo codecs (`bench_demo_rows`), for `python -m harmony_core bench` and the docs.

Peak memory (`peak_mb`), on any device: the largest total size of tensors allocated by one call and alive
at the same time, including its output, excluding its inputs; tracked op by op with a TorchDispatchMode
during the warm-up call (timed calls run without it). Allocator caching and library workspaces are not
included.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from ..codecs.demo.audio import DemoAudioCodec
from ..codecs.demo.video import DemoVideoCodec

logger = logging.getLogger(__name__)

DEMO_FPS = 25
DEMO_SIZE = (64, 64)
DEMO_FRAMES = 101  # 4 s at 25 fps, rounded to 4k + 1
HD_SIZE = (480, 832)
HD_FRAMES = 49  # ~2 s at 25 fps
DEMO_AUDIO_LATENTS = 125  # 4 s at 31.25 latents/s


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created inside the `with` block and still alive, op by op.

    A storage counts from the op that creates it (views of an op's inputs are not new) until it is freed;
    `peak` is the largest total seen. Storages that existed before the block are not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.total = 0
        self.peak = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.total -= self.live.pop(key)[1]
        inputs = {StorageWeakRef(t.untyped_storage()).cdata for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                ref = StorageWeakRef(t.untyped_storage())
                if ref.cdata not in inputs and ref.cdata not in self.live:
                    self.live[ref.cdata] = (ref, t.untyped_storage().nbytes())
                    self.total += self.live[ref.cdata][1]
        self.peak = max(self.peak, self.total)
        return out


def _measure(fn: Callable[[], Any], device: torch.device, repeats: int) -> tuple[float, float]:
    """Best wall time of `repeats` calls after one warm-up, and the peak MB of tensors one call allocates."""
    with _LiveTensorBytes() as tracker:
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best, tracker.peak / 2**20


def _row(codec: str, setting: str, seconds: float, media_seconds: float, peak: float) -> dict[str, Any]:
    return {"codec": codec, "setting": setting, "sec_per_media_sec": round(seconds / media_seconds, 5),
            "peak_mb": round(peak, 1)}


@torch.no_grad()
def bench_demo_rows(quick: bool, device: str | torch.device = "cpu") -> list[dict[str, Any]]:
    """Times the demo codecs: video encode/decode at the demo size (64x64, 101 frames = 4.04 s) and at 480p
    (480x832, 49 frames = 1.96 s), audio encode/decode of 4 s. `quick`: one timed call per row instead of the
    best of three. Rows: {codec, setting, sec_per_media_sec, peak_mb}."""
    device = torch.device(device)
    repeats = 1 if quick else 3
    gen = torch.Generator().manual_seed(0)
    video = DemoVideoCodec.default().to(device)
    audio = DemoAudioCodec.default().to(device)
    rows = []
    for (h, w), frames in ((DEMO_SIZE, DEMO_FRAMES), (HD_SIZE, HD_FRAMES)):
        pixels = (torch.rand(1, 3, frames, h, w, generator=gen) * 2 - 1).to(device)  # [1, 3, F, H, W]
        latent = video.encode(pixels)
        seconds = frames / DEMO_FPS
        setting = f"{h}x{w} {frames} frames, {device.type}"
        t, peak = _measure(lambda: video.decode(latent), device, repeats)
        rows.append(_row(video.name, "decode " + setting, t, seconds, peak))
        t, peak = _measure(lambda: video.encode(pixels), device, repeats)  # noqa: F821 (pixels is bound)
        rows.append(_row(video.name, "encode " + setting, t, seconds, peak))
        del pixels, latent
    length = DEMO_AUDIO_LATENTS * audio.samples_per_latent
    wave = (torch.rand(1, length, generator=gen) - 0.5).to(device)  # [1, L]
    latent = audio.encode(wave)
    seconds = wave.shape[1] / audio.sample_rate
    setting = f"16 kHz {seconds:g} s, {audio.config.griffin_lim_iters} Griffin-Lim iters, {device.type}"
    t, peak = _measure(lambda: audio.decode(latent), device, repeats)
    rows.append(_row(audio.name, "decode " + setting, t, seconds, peak))
    t, peak = _measure(lambda: audio.encode(wave), device, repeats)
    rows.append(_row(audio.name, "encode " + setting, t, seconds, peak))
    logger.info("demo codec bench: %s", rows)
    return rows
