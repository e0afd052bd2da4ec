"""CPU figures the tests deliberately do not assert (seconds depend on the machine):

- `tiny_forward`: one batch-1 forward of the tiny test preset on one thread (tests/core/test_model.py counts
  its FLOPs instead);
- `synthetic_clip`: one synthetic training clip per scene kind, one thread (tests/core/test_synthetic.py
  counts its calls instead);
- `demo_generate`: the bundled demo model's default clip (`python -m harmony_core generate`) on 1 thread and
  on every core, with the machine idle and with one core kept busy by another process: the measurement
  behind the thread policy in harmony_core/threads.py.
Each figure comes from a fresh subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

from .measure import run_in_subprocess, time_call


def tiny_forward(args: dict[str, Any]) -> dict[str, Any]:
    """Subprocess side: best of 5 forwards of the tiny preset (batch 1, 5 x 8 x 12 video, 31 audio
    latents)."""
    from ..config import preset
    from ..model.conditioning import Conditioning
    from ..model.harmony import HarmonyModel
    from ..model.transcript import encode_transcripts

    torch.manual_seed(0)
    cfg = preset("tiny")
    model = HarmonyModel(cfg).eval()
    video, audio = torch.randn(1, cfg.video.in_dim, 5, 8, 12), torch.randn(1, cfg.audio.in_dim, 31)
    cond = Conditioning(torch.randn(1, 6, cfg.video.text_dim), torch.randn(1, 4, cfg.audio.text_dim),
                        encode_transcripts(["hello"]))
    tv, ta = torch.rand(1, 5), torch.rand(1, 31)
    seconds = time_call(lambda: model(video, audio, tv, ta, cond), repeats=5)
    return {"case": "tiny_forward", "threads": torch.get_num_threads(), "busy_cores": 0, "seconds": seconds}


def synthetic_clip(args: dict[str, Any]) -> dict[str, Any]:
    """Subprocess side: best of 4 seeds, one default synthetic clip of `kind`."""
    from ..train.synthetic import SceneSpec, make_clip

    spec = SceneSpec(kind=args["kind"])
    make_clip(0, spec)
    best = float("inf")
    for seed in range(4):
        start = time.perf_counter()
        make_clip(seed, spec)
        best = min(best, time.perf_counter() - start)
    return {"case": f"synthetic_clip {args['kind']}", "threads": torch.get_num_threads(), "busy_cores": 0,
            "seconds": best}


def demo_generate(args: dict[str, Any]) -> dict[str, Any]:
    """Subprocess side: load the bundled demo model and generate its default clip with `threads` threads
    (HARMONY_THREADS, so the thread policy does not change it); seconds of the generation alone."""
    from ..build import load_pipeline
    from ..pipeline import Request
    from ..threads import ENV

    os.environ[ENV] = str(args["threads"])
    pipe = load_pipeline(allow_untrained=True)
    start = time.perf_counter()
    pipe.generate(Request(prompt="a red ball bounces on a wooden floor"))
    return {"case": "demo_generate", "threads": args["threads"], "busy_cores": args["busy"],
            "seconds": time.perf_counter() - start}


def _with_busy_cores(n: int, target: Callable[[dict[str, Any]], dict[str, Any]], args: dict[str, Any],
                     ) -> dict[str, Any]:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        return run_in_subprocess(target, {**args, "busy": n})
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def rows(quick: bool = False) -> list[dict]:
    out = [run_in_subprocess(tiny_forward, {"threads": 1})]
    out += [run_in_subprocess(synthetic_clip, {"threads": 1, "kind": k})
            for k in ("impact", "speaker")]
    cores = os.cpu_count() or 1
    for busy in (0,) if quick or cores < 2 else (0, 1):
        for threads in sorted({1, cores}):
            out.append(_with_busy_cores(busy, demo_generate, {"threads": threads}))
    return out
