"""GLDI's share of a dual-tower layer: analytic FLOPs at any size, measured seconds at a scaled config.

Harmony-5B's full layer (24,024 video tokens at width 3072) does not run on a CPU in bench time, so time is
measured at `scaled_config()`: every width divided by 6 (video 512, audio 256, FFNs and caption lengths
with them) and the video tokens divided by 6 as well (28 latent frames x 143 tokens), head_dim 128 kept.
That keeps the 5B layer's compute balance: self-attention (L^2 d) against projections (L d^2) is L / d,
the same 7.82 at both sizes, and the time layout (28 video frames, 137 audio latents, the A2V / V2A
windows) is the 5B one exactly. The FLOP share is counted for the same config, so the two compare.

FLOPs count 2 per multiply-add in every matmul and attention product (what torch's FlopCounterMode
counts; tests/core/test_gldi_bench.py holds the formulas to it on the real modules).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import timeline
from ..attention.local import LANES, key_frame_queries
from ..config import AudioConfig, HarmonyConfig, InteractionConfig, VideoConfig, preset

REF_LATENTS = 63   # a 2 s reference voice at MMAudio-16k's 31.25 latents per second


@dataclass(frozen=True)
class Layout:
    """Token counts of one generation: video frames x tokens per frame, audio and caption lengths."""

    frames: int = 28           # 109 frames at 25 fps (the 5B defaults) -> 28 latent frames
    per_frame: int = 858       # 704 x 1248 -> 22 x 39 tokens
    audio: int = 137           # MMAudio-16k latents covering the clip
    ref: int = 0               # reference-voice latents (0: no voice clone)
    video_text: int = 512
    audio_text: int = 512

    @property
    def video_tokens(self) -> int:
        return self.frames * self.per_frame


FULL = Layout()


def scaled_config(divisor: int = 6) -> tuple[HarmonyConfig, Layout]:
    """Harmony-5B with widths, FFNs, caption lengths and video tokens per frame divided by `divisor`."""
    full = preset("harmony-5b")
    v, a = full.video, full.audio

    def shrink(c: VideoConfig | AudioConfig, cls: type) -> VideoConfig | AudioConfig:
        dim = c.dim // divisor
        return cls(**{**c.__dict__, "dim": dim, "num_heads": dim // c.head_dim, "num_layers": 1,
                      "ffn_dim": round(c.ffn_dim / divisor), "text_len": round(c.text_len / divisor)})

    cfg = HarmonyConfig(name=f"harmony-5b/{divisor}", video=shrink(v, VideoConfig), audio=shrink(a, AudioConfig),
                        interaction=InteractionConfig(layers=(0,)), codecs=full.codecs).validate()
    layout = Layout(per_frame=round(FULL.per_frame / divisor), video_text=cfg.video.text_len,
                    audio_text=cfg.audio.text_len)
    return cfg, layout


# ------------------------------------------------------------------------------------------------
# analytic FLOPs
# ------------------------------------------------------------------------------------------------
def _linear(tokens: int, c_in: int, c_out: int) -> int:
    return 2 * tokens * c_in * c_out


def _attention(queries: int, keys: int, width: int) -> int:
    """q k^T and p v over all heads: 2 * 2 * Lq * Lk * (heads * head_dim)."""
    return 4 * queries * keys * width


def video_block_flops(v: VideoConfig, lay: Layout) -> int:
    n, c = lay.video_tokens, v.dim
    self_attn = 4 * _linear(n, c, c) + _attention(n, n, c)
    cross = 2 * _linear(n, c, c) + 2 * _linear(lay.video_text, c, c) + _attention(n, lay.video_text, c)
    return self_attn + cross + 2 * _linear(n, c, v.ffn_dim)


def audio_block_flops(a: AudioConfig, lay: Layout) -> int:
    """MM-DiT block: both streams project and run their FFN; one joint attention over both."""
    latent, ctx, c = lay.ref + lay.audio, lay.audio_text, a.dim
    per_token = 4 * _linear(1, c, c) + 2 * _linear(1, c, a.ffn_dim)
    return (latent + ctx) * per_token + _attention(latent + ctx, latent + ctx, c)


def tower_flops(cfg: HarmonyConfig, lay: Layout) -> int:
    return video_block_flops(cfg.video, lay) + audio_block_flops(cfg.audio, lay)


def window_widths(ic: InteractionConfig, lay: Layout) -> tuple[int, int]:
    """(A2V keys per video frame, V2A queries per key frame): the window sizes, before A2V's padding to
    `attention.local.LANES` keys (`interaction_flops` counts the padded width, which the kernel runs)."""
    a2v = timeline.a2v_windows(lay.frames, lay.audio, ic.a2v_margin).width
    v2a = key_frame_queries(timeline.v2a_groups(lay.frames, lay.audio, ic.v2a_margin)[0].width, ic.v2a_margin)
    return a2v, v2a


def interaction_flops(cfg: HarmonyConfig, lay: Layout) -> dict[str, int]:
    """One interacting layer, by part: A2V, V2A and global style (zero without a reference voice)."""
    v, a, ic = cfg.video.dim, cfg.audio.dim, cfg.interaction
    lv, ta, tr = lay.video_tokens, lay.audio, lay.ref
    if ic.kind == "gldi":
        a2v_keys, v2a_queries = window_widths(ic, lay)
        a2v_keys = LANES * -(-a2v_keys // LANES)
        a2v_attn = _attention(lv, a2v_keys, v)
        v2a_attn = _attention(lay.frames * v2a_queries, lay.per_frame, a)
    else:
        a2v_attn, v2a_attn = _attention(lv, ta, v), _attention(ta, lv, a)
    a2v = 2 * _linear(lv, v, v) + 2 * _linear(ta, a, v) + a2v_attn
    v2a = 2 * _linear(ta, a, a) + 2 * _linear(lv, v, a) + v2a_attn
    style = 0
    if tr and ic.kind == "gldi" and ic.global_style:
        style = 2 * _linear(tr, a, a) + 2 * _linear(lv, v, a) + _attention(tr, lv, a)
    return {"a2v": a2v, "v2a": v2a, "global_style": style}


def flop_share(cfg: HarmonyConfig, lay: Layout) -> float:
    """Interaction FLOPs over the two towers' FLOPs, one layer."""
    return sum(interaction_flops(cfg, lay).values()) / tower_flops(cfg, lay)


def full_size_shares() -> dict[str, float]:
    """The analytic shares at Harmony-5B's real widths and layout (nothing runs)."""
    cfg = preset("harmony-5b")
    ref = Layout(ref=REF_LATENTS)
    glob = cfg.replace(**{"interaction.kind": "global"})
    return {"flop_share_full": flop_share(cfg, FULL), "flop_share_ref_full": flop_share(cfg, ref),
            "global_flop_share_full": flop_share(glob, FULL)}


# ------------------------------------------------------------------------------------------------
# measured seconds at the scaled config
# ------------------------------------------------------------------------------------------------
def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Trained-like weights: the zero-initialised output projections would make no difference to the
    time, but non-zero values keep every path live."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    return module.eval()


def layer_callables(cfg: HarmonyConfig, lay: Layout, seed: int = 0) -> dict[str, object]:
    """Zero-argument calls, one per part of a layer: the video block, the audio block (without and with
    the reference voice), GLDI (without and with it) and the Ovi-style global interaction."""
    from ..attention import resolve
    from ..model.audio import MMDiTBlock
    from ..model.embeddings import Rope, rope_angles_1d, rope_angles_3d
    from ..model.interaction import AlignmentPlan, InteractionBlock
    from ..model.video import VideoGrid, WanBlock

    sdpa = resolve("sdpa")
    g = torch.Generator().manual_seed(seed)
    v, a = cfg.video, cfg.audio
    height = max(d for d in range(1, int(lay.per_frame ** 0.5) + 1) if lay.per_frame % d == 0)
    grid = VideoGrid(lay.frames, height, lay.per_frame // height)
    video = torch.randn(1, lay.video_tokens, v.dim, generator=g)
    ctx_v = torch.randn(1, lay.video_text, v.dim, generator=g)
    e0_v = torch.randn(1, lay.frames, 6, v.dim, generator=g) * 0.1
    rope_v = Rope(rope_angles_3d(grid.frames, grid.height, grid.width, v.head_dim))
    block_v = _randomised(WanBlock(v, sdpa), seed)
    block_a = _randomised(MMDiTBlock(a, sdpa), seed + 1)
    audio = torch.randn(1, REF_LATENTS + lay.audio, a.dim, generator=g)
    ctx_a = torch.randn(1, lay.audio_text, a.dim, generator=g)
    e0_a = torch.randn(1, REF_LATENTS + lay.audio, 6, a.dim, generator=g) * 0.1
    ctx_e0 = torch.randn(1, 1, 6, a.dim, generator=g) * 0.1
    rope_a = {n: Rope(rope_angles_1d(torch.arange(n), a.head_dim, a.rope_theta))
              for n in (lay.audio, REF_LATENTS + lay.audio)}
    gldi = _randomised(InteractionBlock(cfg, sdpa), seed + 2)
    glob_cfg = cfg.replace(**{"interaction.kind": "global"})
    glob = _randomised(InteractionBlock(glob_cfg, sdpa), seed + 3)
    plan = AlignmentPlan.build(cfg, grid, lay.audio, video.device)
    glob_plan = AlignmentPlan.build(glob_cfg, grid, lay.audio, video.device)
    target, ref = audio[:, REF_LATENTS:], audio[:, :REF_LATENTS]
    return {
        "video_block": lambda: block_v(video, e0_v, grid, rope_v, ctx_v),
        "audio_block": lambda: block_a(target, ctx_a, e0_a[:, REF_LATENTS:], ctx_e0, rope_a[lay.audio]),
        "audio_block_ref": lambda: block_a(audio, ctx_a, e0_a, ctx_e0, rope_a[REF_LATENTS + lay.audio]),
        "gldi": lambda: gldi(video, target, None, plan),
        "gldi_ref": lambda: gldi(video, target, ref, plan),
        "global": lambda: glob(video, target, None, glob_plan),
    }
