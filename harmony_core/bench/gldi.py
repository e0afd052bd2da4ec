"""`python -m harmony_core bench gldi [--json]`: what GLDI costs (issue #17), in one process on 1 thread.

1. Kernels at Harmony-5B's token layout (28 latent frames x 858 video tokens, 137 audio latents, head_dim
   128, the real head counts: 24 for A2V at the video width, 12 for V2A at the audio width): the gathered
   local attention the model runs (`attention.local`) against the dense masked form (SDPA over all tokens
   with the equivalent boolean mask): seconds, FLOPs, their ratios and the largest difference. FLOP ratios:
   `flop_ratio` from the window sizes, `flop_ratio_computed` what the kernel runs (A2V pads its windows to
   16 keys). The A2V kernel writes over its queries as the model's inference does; `speedup_fresh_output`
   is the same kernel writing a new tensor (SDPA: the training path).
2. The interaction's share of a dual-tower layer: measured at the scaled config of `gldi_layer` (every
   width and the video tokens per frame / 6, which keeps the 5B compute balance) against the analytic FLOP
   share at the same config; the analytic shares at the real size; the Ovi-style global cross-attention
   (the paper's ablation baseline, interaction kind "global") at the same dims.
3. One batched denoiser step of the demo model (3 guidance passes, its default 81-frame clip).

Seconds are the minimum over `repeats` rounds in which every variant runs once, in turn (alternating, so
load from other processes hits all of them alike). Ratios, not seconds, are the result.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .. import timeline
from ..attention.local import neighbour_frame_attention, padded_windows, window_attention
from ..config import preset
from . import gldi_layer

FRAMES, PER_FRAME, AUDIO, HEAD_DIM = 28, 858, 137, 128
A2V_HEADS, V2A_HEADS = 24, 12          # 3072 / 128 and 1536 / 128
_WINDOWS = preset("harmony-5b").interaction
A2V_MARGIN, V2A_MARGIN = _WINDOWS.a2v_margin, _WINDOWS.v2a_margin   # the preset's windows (0.5 frames, 1 frame)


def alternate(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best seconds of each call over `repeats` rounds; each round runs every call once, in turn."""
    for call in calls.values():   # warm-up: allocator, lazy init
        call()
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


# ------------------------------------------------------------------------------------------------
# 1. kernels at the 5B layout
# ------------------------------------------------------------------------------------------------
def _qkv(lq: int, lk: int, heads: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(1, n, heads, HEAD_DIM, generator=g) for n in (lq, lk, lk))


def dense_masked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """q [1, Lq, H, D], k, v [1, Lk, H, D], mask [Lq, Lk] bool -> [1, Lq, H, D] (SDPA, one call)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         attn_mask=mask[None, None])
    return out.transpose(1, 2)


def a2v_case(heads: int = A2V_HEADS) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, float]]:
    lv = FRAMES * PER_FRAME
    q, k, v = _qkv(lv, AUDIO, heads, seed=0)
    w = timeline.a2v_windows(FRAMES, AUDIO, A2V_MARGIN)
    rows = torch.arange(FRAMES)[:, None].expand_as(w.index)
    frame_mask = torch.zeros(FRAMES, AUDIO, dtype=torch.bool)
    frame_mask[rows[w.valid], w.index[w.valid]] = True
    mask = frame_mask.repeat_interleave(PER_FRAME, 0)                        # [Lv, Ta]
    index, key_mask = padded_windows(w.index, w.valid)
    grouped = q.view(1, FRAMES, PER_FRAME, heads, HEAD_DIM)
    scratch = grouped.clone()   # the model's queries are a temporary the kernel may overwrite

    def gathered(overwrite: bool = True) -> torch.Tensor:   # the model's path (model/interaction.py A2V)
        out = window_attention(scratch if overwrite else grouped, k[:, index], v[:, index], key_mask,
                               overwrite=overwrite)
        return out.reshape(q.shape)

    keys, _ = gldi_layer.window_widths(gldi_layer.InteractionConfig(a2v_margin=A2V_MARGIN), gldi_layer.FULL)
    flops = {"gathered": 4 * lv * index.shape[1] * heads * HEAD_DIM, "window": 4 * lv * keys * heads * HEAD_DIM,
             "dense": 4 * lv * AUDIO * heads * HEAD_DIM}
    calls = {"gathered": gathered, "dense": lambda: dense_masked(q, k, v, mask),
             "gathered_fresh": lambda: gathered(overwrite=False)}
    return calls, flops


def v2a_case(heads: int = V2A_HEADS) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, float]]:
    lv = FRAMES * PER_FRAME
    q, k, v = _qkv(AUDIO, lv, heads, seed=1)
    owner = timeline.audio_frame_of(FRAMES, AUDIO)
    frame_mask = (torch.arange(FRAMES)[None, :] - owner[:, None]).abs() <= V2A_MARGIN   # [Ta, Tv]
    mask = frame_mask.repeat_interleave(PER_FRAME, 1)                                   # [Ta, Lv]
    groups, _ = timeline.v2a_groups(FRAMES, AUDIO, V2A_MARGIN)
    slot = torch.empty(AUDIO, dtype=torch.long)
    slot[groups.index[groups.valid]] = torch.arange(groups.index.numel()).view_as(groups.index)[groups.valid]
    kf, vf = (t.view(1, FRAMES, PER_FRAME, heads, HEAD_DIM) for t in (k, v))

    def gathered() -> torch.Tensor:   # the model's path (model/interaction.py V2A)
        out = neighbour_frame_attention(q[:, groups.index], kf, vf, V2A_MARGIN)
        return out.flatten(1, 2)[:, slot]

    _, queries = gldi_layer.window_widths(gldi_layer.InteractionConfig(v2a_margin=V2A_MARGIN), gldi_layer.FULL)
    flops = {"gathered": 4 * FRAMES * queries * PER_FRAME * heads * HEAD_DIM,
             "dense": 4 * AUDIO * lv * heads * HEAD_DIM}
    return {"gathered": gathered, "dense": lambda: dense_masked(q, k, v, mask)}, flops


def kernel_rows(repeats: int, head_divisor: int = 1) -> list[dict]:
    """Both directions; `head_divisor` > 1 runs fewer heads (quick mode: every cost is linear in heads)."""
    out = []
    for direction, case, heads in (("a2v", a2v_case, A2V_HEADS), ("v2a", v2a_case, V2A_HEADS)):
        calls, flops = case(heads // head_divisor)
        diff = float((calls["gathered"]() - calls["dense"]()).abs().max())
        sec = alternate(calls, repeats)
        row = {"direction": direction, "gathered_s": sec["gathered"], "dense_s": sec["dense"],
               "speedup": sec["dense"] / sec["gathered"],
               "flop_ratio": flops["dense"] / flops.get("window", flops["gathered"]),
               "flop_ratio_computed": flops["dense"] / flops["gathered"],
               "gathered_gflops": flops["gathered"] / sec["gathered"] / 1e9,
               "dense_gflops": flops["dense"] / sec["dense"] / 1e9, "max_abs_diff": diff}
        if "gathered_fresh" in sec:   # the same kernel writing a fresh output (training, GPU-style SDPA)
            row["speedup_fresh_output"] = sec["dense"] / sec["gathered_fresh"]
        out.append(row)
        del calls
    return out


# ------------------------------------------------------------------------------------------------
# 2. the layer at the scaled config, 3. the demo step
# ------------------------------------------------------------------------------------------------
def layer_row(repeats: int) -> dict:
    cfg, lay = gldi_layer.scaled_config()
    with_ref = gldi_layer.Layout(**{**lay.__dict__, "ref": gldi_layer.REF_LATENTS})
    sec = alternate(gldi_layer.layer_callables(cfg, lay), repeats)
    towers, towers_ref = sec["video_block"] + sec["audio_block"], sec["video_block"] + sec["audio_block_ref"]
    glob = cfg.replace(**{"interaction.kind": "global"})
    return {
        "config": cfg.name, "video_tokens": lay.video_tokens, "video_dim": cfg.video.dim,
        "audio_dim": cfg.audio.dim, **{f"{k}_s": s for k, s in sec.items()},
        "overhead_fraction": sec["gldi"] / towers, "flop_share": gldi_layer.flop_share(cfg, lay),
        "overhead_fraction_ref": sec["gldi_ref"] / towers_ref,
        "flop_share_ref": gldi_layer.flop_share(cfg, with_ref),
        "global_overhead_fraction": sec["global"] / towers,
        "global_flop_share": gldi_layer.flop_share(glob, lay),
    }


def demo_step(repeats: int) -> float:
    """Seconds of one batched denoiser call of the demo model: 3 guidance passes, its default clip."""
    from ..model.conditioning import Conditioning
    from ..model.harmony import HarmonyModel
    from ..model.transcript import encode_transcripts

    torch.manual_seed(0)
    cfg = preset("demo")
    model = gldi_layer._randomised(HarmonyModel(cfg), 0)
    d = cfg.defaults
    tv = timeline.latent_frames_for(d.num_frames)
    ta = timeline.audio_latents_for_frames(d.num_frames, d.fps, timeline.audio_latent_rate(16000, 512))
    b = 3
    video = torch.randn(b, cfg.video.in_dim, tv, d.height // 8, d.width // 8)
    audio = torch.randn(b, cfg.audio.in_dim, ta)
    cond = Conditioning(torch.randn(b, 8, cfg.video.text_dim), torch.randn(b, 8, cfg.audio.text_dim),
                        encode_transcripts(["a red ball bounces"] * b))
    t_v, t_a = torch.rand(b, tv), torch.rand(b, ta)
    return alternate({"step": lambda: model(video, audio, t_v, t_a, cond)}, repeats)["step"]


def report(quick: bool = False, repeats: int = 7) -> tuple[dict[str, list[dict]], dict]:
    """({table title: rows}, summary). 1 thread for everything, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            kernels = kernel_rows(repeats, head_divisor=4 if quick else 1)
            layer = layer_row(repeats)
            demo = demo_step(repeats)
    finally:
        torch.set_num_threads(threads)
    a2v, v2a = kernels
    summary = {
        "a2v_speedup": a2v["speedup"], "v2a_speedup": v2a["speedup"],
        "a2v_flop_ratio": a2v["flop_ratio"], "v2a_flop_ratio": v2a["flop_ratio"],
        "a2v_flop_ratio_computed": a2v["flop_ratio_computed"], "v2a_flop_ratio_computed": v2a["flop_ratio_computed"],
        "a2v_speedup_fresh_output": a2v["speedup_fresh_output"],
        **{k: layer[k] for k in ("overhead_fraction", "flop_share", "overhead_fraction_ref", "flop_share_ref",
                                 "global_overhead_fraction", "global_flop_share")},
        **gldi_layer.full_size_shares(),
        "demo_step_s": demo, "scaled_config": layer["config"], "threads": 1, "repeats": repeats,
    }
    return {"kernels (5B layout)": kernels, "layer (scaled config)": [layer]}, summary
