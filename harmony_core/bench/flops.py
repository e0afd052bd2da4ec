"""Analytic FLOPs of one HarmonyModel forward (the `bench gpu` roofline), counted from the config and the layout.

Counted: every matmul of the transformer blocks and the interaction, 2 FLOPs per multiply-add;
elementwise work (norms, RoPE, modulation, softmax, GELU), the embeddings and the heads are not (under 0.2 %
at the real sizes). Per batch row:

    linear(n, i, o)       = 2 n i o                       (n rows through an i -> o projection)
    attention(Lq, Lk, C)  = 4 Lq Lk C                     (q k^T and p v over all heads, C = heads x head_dim)

Wan block (video: L video tokens incl. a reference frame, context T = text_len rows; UniAVGen's mel tower: L = Tr
+ Ta mel frames, T = transcript length):  4 linear(L, C, C) + attention(L, L, C)          self-attention
                                          2 linear(L, C, C) + 2 linear(T, C, C) + attention(L, T, C)   cross
                                          linear(L, C, F) + linear(L, F, C)                FFN
MM-DiT block (Harmony's audio tower, latent stream La = Tr + Ta, caption stream Lc = text_len): per stream
4 linear(n, C, C) + linear(n, C, F) + linear(n, F, C), and one attention(La + Lc, La + Lc, C).
UniAVGen interaction (F frames of P tokens after the reference frame, window W): A2V 2 linear(FP, Cv, Cv) +
2 linear(Ta, Ca, Cv) + attention(FP, W, Cv) (per frame: P queries x W keys) + face mask linear(FP, Cv, 1);
V2A 2 linear(FP, Cv, Ca) (keys/values once per latent frame) + 2 linear(Ta, Ca, Ca) + attention(Ta, P, Ca).
GLDI (Harmony): A2V 2 linear(Lv, Cv, Cv) + 2 linear(Ta, Ca, Cv) + 4 P sum_f w_f Cv (frame f's window of w_f
audio latents); V2A 2 linear(Lv, Cv, Ca) + 2 linear(Ta, Ca, Ca) + 4 P Ca sum_j n_j (latent j reads n_j <=
2 margin + 1 frames); global style (Tr reference tokens) 2 linear(Lv, Cv, Ca) + 2 linear(Tr, Ca, Ca) +
attention(Tr, Lv, Ca).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import timeline
from ..config import HarmonyConfig


@dataclass(frozen=True)
class Layout:
    """Token counts of one forward row: `frames` latent frames of `per_frame` tokens (the reference frame
    included where the model prepends one), `audio` target audio tokens, `ref_audio` reference tokens,
    `context` rows of the video caption and `transcript` rows (UniAVGen) or the audio caption (Harmony)."""

    frames: int
    per_frame: int
    audio: int
    ref_audio: int = 0
    context: int = 512
    transcript: int = 512

    @property
    def video_tokens(self) -> int:
        return self.frames * self.per_frame


def linear(n: int, i: int, o: int) -> int:
    return 2 * n * i * o


def attention(lq: int, lk: int, c: int) -> int:
    return 4 * lq * lk * c


def wan_block(tokens: int, context: int, dim: int, ffn: int) -> int:
    self_attn = 4 * linear(tokens, dim, dim) + attention(tokens, tokens, dim)
    cross = 2 * linear(tokens, dim, dim) + 2 * linear(context, dim, dim) + attention(tokens, context, dim)
    return self_attn + cross + linear(tokens, dim, ffn) + linear(tokens, ffn, dim)


def mmdit_block(latent: int, caption: int, dim: int, ffn: int) -> int:
    per_stream = sum(4 * linear(n, dim, dim) + linear(n, dim, ffn) + linear(n, ffn, dim) for n in (latent, caption))
    return per_stream + attention(latent + caption, latent + caption, dim)


def uniavgen_interaction(cfg: HarmonyConfig, lay: Layout) -> int:
    from ..model.uniavgen_interaction import a2v_window_index

    cv, ca, p = cfg.video.dim, cfg.audio.dim, lay.per_frame
    frames = lay.frames - 1                                    # after the reference frame
    w = a2v_window_index(lay.audio, frames, cfg.interaction.a2v_window).shape[1]
    fp = frames * p
    a2v = 2 * linear(fp, cv, cv) + 2 * linear(lay.audio, ca, cv) + attention(fp, w, cv) + linear(fp, cv, 1)
    v2a = 2 * linear(fp, cv, ca) + 2 * linear(lay.audio, ca, ca) + attention(lay.audio, p, ca)
    return a2v + v2a


def gldi_interaction(cfg: HarmonyConfig, lay: Layout) -> int:
    ic, cv, ca, p = cfg.interaction, cfg.video.dim, cfg.audio.dim, lay.per_frame
    lv, ta, tv = lay.video_tokens, lay.audio, lay.frames
    windows = int(timeline.a2v_windows(tv, ta, ic.a2v_margin).valid.sum())            # sum_f w_f
    owner = timeline.audio_frame_of(tv, ta)                                            # [Ta]
    read = int(((owner + ic.v2a_margin).clamp(max=tv - 1) - (owner - ic.v2a_margin).clamp(min=0) + 1).sum())
    a2v = 2 * linear(lv, cv, cv) + 2 * linear(ta, ca, cv) + 4 * p * windows * cv
    v2a = 2 * linear(lv, cv, ca) + 2 * linear(ta, ca, ca) + 4 * p * ca * read
    out = a2v + v2a
    if ic.global_style and lay.ref_audio:
        tr = lay.ref_audio
        out += 2 * linear(lv, cv, ca) + 2 * linear(tr, ca, ca) + attention(tr, lv, ca)
    return out


def forward_flops(cfg: HarmonyConfig, lay: Layout) -> dict[str, int]:
    """{"video", "audio", "interaction", "total"} FLOPs of one forward row (see the module docstring)."""
    v, a, layers = cfg.video, cfg.audio, cfg.video.num_layers
    video = layers * wan_block(lay.video_tokens, lay.context, v.dim, v.ffn_dim)
    la = lay.audio + lay.ref_audio
    if a.kind == "mel":
        audio = layers * wan_block(la, lay.transcript, a.dim, a.ffn_dim)
    else:
        audio = layers * mmdit_block(la, lay.transcript, a.dim, a.ffn_dim)
    kind = cfg.interaction.kind
    per = {"uniavgen": uniavgen_interaction, "gldi": gldi_interaction}.get(kind)
    if per is None and kind != "none":
        raise ValueError(f"no FLOP formula for interaction kind {kind!r}")
    inter = len(cfg.interacting_layers()) * per(cfg, lay) if per is not None else 0
    return {"video": video, "audio": audio, "interaction": inter, "total": video + audio + inter}
