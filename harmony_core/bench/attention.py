"""Gathered local attention (GLDI) vs the dense masked equivalent at the 5B preset's token layout.

Layout (paper demos, method.md §6.3): 28 latent frames x 858 video tokens (704x1248 / 32^2), 137
MMAudio-16k latents, head_dim 128. Few heads and batch 1 keep it on a CPU; `scale` multiplies the
duration (frames and audio latents) to show how each variant grows with length.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import timeline
from ..attention.local import neighbour_frame_attention, padded_windows, window_attention

FRAMES, PER_FRAME, AUDIO, HEAD_DIM = 28, 858, 137, 128


def _inputs(direction: str, scale: int, heads: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tv, ta = FRAMES * scale, AUDIO * scale
    lv = tv * PER_FRAME
    lq, lk = (lv, ta) if direction == "a2v" else (ta, lv)
    q = torch.randn(1, lq, heads, HEAD_DIM, generator=g)
    k = torch.randn(1, lk, heads, HEAD_DIM, generator=g)
    v = torch.randn(1, lk, heads, HEAD_DIM, generator=g)
    return q, k, v, tv, ta


def gathered(direction: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tv: int, ta: int,
             a2v_margin: float = 0.5, v2a_margin: int = 1) -> torch.Tensor:
    """The model's path: windows gathered into a (B*Tv, window) batch."""
    if direction == "a2v":
        w = timeline.a2v_windows(tv, ta, a2v_margin)
        index, mask = padded_windows(w.index, w.valid)
        out = window_attention(q.view(1, tv, PER_FRAME, *q.shape[2:]), k[:, index], v[:, index], mask)
        return out.reshape(q.shape)
    qw, _ = timeline.v2a_groups(tv, ta, v2a_margin)
    kf = k.view(1, tv, PER_FRAME, *k.shape[2:])                              # [1, Tv, HW, H, D] (a view)
    vf = v.view(1, tv, PER_FRAME, *v.shape[2:])
    return neighbour_frame_attention(q[:, qw.index], kf, vf, v2a_margin)[0]  # [Tv, Qw, H, D]


def dense_mask(direction: str, tv: int, ta: int, a2v_margin: float = 0.5, v2a_margin: int = 1) -> torch.Tensor:
    """The equivalent dense [Lq, Lk] boolean mask."""
    if direction == "a2v":
        w = timeline.a2v_windows(tv, ta, a2v_margin)
        frame_mask = torch.zeros(tv, ta, dtype=torch.bool)
        rows_ = torch.arange(tv)[:, None].expand_as(w.index)
        frame_mask[rows_[w.valid], w.index[w.valid]] = True
        return frame_mask.repeat_interleave(PER_FRAME, 0)                   # [Lv, Ta]
    owner = timeline.audio_frame_of(tv, ta)
    frames = torch.arange(tv)
    frame_mask = (frames[None, :] - owner[:, None]).abs() <= v2a_margin   # [Ta, Tv]
    return frame_mask.repeat_interleave(PER_FRAME, 1)                      # [Ta, Lv]


def dense(direction: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tv: int, ta: int) -> torch.Tensor:
    mask = dense_mask(direction, tv, ta)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         attn_mask=mask[None, None])
    return out.transpose(1, 2)


def measure_variant(args: dict) -> dict:
    """Subprocess side (bench.measure): peak memory of one call, then the best of `repeats` timings."""
    from .measure import measured, time_call

    q, k, v, tv, ta = _inputs(args["direction"], args["scale"], args["heads"])
    fn = gathered if args["variant"] == "gathered" else dense
    call = lambda: fn(args["direction"], q, k, v, tv, ta)  # noqa: E731
    _, _, peak, method = measured(call, torch.device("cpu"))
    return {"seconds": time_call(call, repeats=args.get("repeats", 2), warmup=0), "peak_mb": peak,
            "peak_method": method}


def check_equal(direction: str, scale: int = 1, heads: int = 2) -> float:
    """Max abs difference between the two variants (they must agree)."""
    q, k, v, tv, ta = _inputs(direction, scale, heads)
    a, b = gathered(direction, q, k, v, tv, ta), dense(direction, q, k, v, tv, ta)
    if direction == "v2a":
        qw, _ = timeline.v2a_groups(tv, ta, 1)
        a, b = a[qw.valid], b[0][qw.index][qw.valid]
    return float((a - b).abs().max())


def rows(scales: tuple[int, ...] = (1, 2), heads: int = 2, threads: int | None = None) -> list[dict]:
    from .measure import run_in_subprocess

    out = []
    for direction in ("a2v", "v2a"):
        for scale in scales:
            m = {variant: run_in_subprocess(measure_variant, {
                "variant": variant, "direction": direction, "scale": scale, "heads": heads, "threads": threads})
                for variant in ("gathered", "dense")}
            out.append({
                "direction": direction, "latent_frames": FRAMES * scale, "audio_latents": AUDIO * scale,
                "gathered_s": m["gathered"]["seconds"], "dense_s": m["dense"]["seconds"],
                "time_ratio_dense_over_gathered": m["dense"]["seconds"] / max(m["gathered"]["seconds"], 1e-9),
                "gathered_peak_mb": m["gathered"]["peak_mb"], "dense_peak_mb": m["dense"]["peak_mb"],
                "mem_ratio_dense_over_gathered": m["dense"]["peak_mb"] / max(m["gathered"]["peak_mb"], 1e-6),
                "max_abs_diff": check_equal(direction, scale, heads) if scale == 1 else math.nan,
            })
    return out
