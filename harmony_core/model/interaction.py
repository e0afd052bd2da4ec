"""Global-Local Decoupled Interaction (paper §3.3) and the Ovi-style global baseline.

Local sync (both directions) is frame-wise cross-attention computed by GATHERING each frame's window
into a batch — (B*Tv, window, C) — never through a dense (N x N) mask:
- A2V: the h*w tokens of video latent frame i attend to the audio latents of window C_a,i
  (`timeline.a2v_windows`).
- V2A: audio latents are grouped by the video frame holding their centre; each group attends to the
  tokens of that frame and `v2a_margin` frames either side (`timeline.v2a_groups`); neighbour frames are
  shifted views of the keys (`attention.local.neighbour_frame_attention`), so no key is copied.
Source positions are rescaled onto the target's timeline before a 1-D temporal RoPE (A2V: audio j at
j*Tv/Ta on the video timeline; V2A: video i at i*Ta/Tv on the audio timeline), unless `rope_align`
is off. Global style alignment: reference-audio tokens query the whole video (paper Eq. 7).
All output projections start at zero so the module is a no-op until trained.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import timeline
from ..attention import Backend
from ..attention.local import neighbour_frame_attention
from ..config import HarmonyConfig
from ..passes import PLAIN, PassFlags
from .embeddings import FP32LayerNorm, Rope, rope_angles_1d
from .layers import Attention
from .video import VideoGrid


@dataclass(frozen=True)
class AlignmentPlan:
    """Everything the interaction needs about the two timelines, built once per forward."""

    grid: VideoGrid
    audio_len: int
    local: bool
    a2v: timeline.Windows | None        # G = Tv groups of audio indices
    v2a_queries: timeline.Windows | None  # G = Tv groups of audio indices
    v2a_margin: int                     # video frames either side of an audio latent's frame
    v2a_slot: torch.Tensor | None       # [Ta] position of audio j in the flattened (G * Qw) query batch
    video_pos_a2v: torch.Tensor         # [Tv] float64 frame positions on the video timeline
    audio_pos_a2v: torch.Tensor         # [Ta]
    video_pos_v2a: torch.Tensor         # [Tv] on the audio timeline
    audio_pos_v2a: torch.Tensor         # [Ta]

    @staticmethod
    def build(cfg: HarmonyConfig, grid: VideoGrid, audio_len: int, device: torch.device) -> AlignmentPlan:
        tv, ta, ic = grid.frames, audio_len, cfg.interaction
        local = ic.kind == "gldi"
        a2v = q = slot = None
        if local:
            a2v = _to(timeline.a2v_windows(tv, ta, ic.a2v_margin), device)
            q = _to(timeline.v2a_groups(tv, ta, ic.v2a_margin)[0], device)
            flat = torch.arange(q.index.numel(), device=device).view_as(q.index)
            slot = torch.empty(ta, dtype=torch.long, device=device)
            slot[q.index[q.valid]] = flat[q.valid]
        frames = torch.arange(tv, dtype=torch.float64, device=device)
        return AlignmentPlan(
            grid=grid, audio_len=ta, local=local, a2v=a2v, v2a_queries=q, v2a_margin=ic.v2a_margin, v2a_slot=slot,
            video_pos_a2v=frames,
            audio_pos_a2v=timeline.audio_positions(ta, tv, ic.rope_align).to(device),
            video_pos_v2a=timeline.video_positions(tv, ta, ic.rope_align).to(device),
            audio_pos_v2a=torch.arange(ta, dtype=torch.float64, device=device),
        )


def _to(w: timeline.Windows, device: torch.device) -> timeline.Windows:
    return timeline.Windows(w.index.to(device), w.valid.to(device))


def _mask_or_none(valid: torch.Tensor, batch: int) -> torch.Tensor | None:
    """[G, W] -> [B*G, W] key mask, or None when nothing is padded (lets mask-free kernels run)."""
    return None if bool(valid.all()) else valid.repeat(batch, 1)


class CrossModalAttention(Attention):
    """Pre-normed cross-attention between streams with a zero-initialised output projection."""

    def __init__(self, q_dim: int, kv_dim: int, num_heads: int, backend: Backend, eps: float) -> None:
        super().__init__(q_dim, num_heads, backend, kv_dim=kv_dim, qk_norm=True, eps=eps)
        self.norm_x = FP32LayerNorm(q_dim, eps)
        self.norm_src = FP32LayerNorm(kv_dim, eps)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)

    def rope(self, positions: torch.Tensor, theta: float) -> Rope:
        return Rope(rope_angles_1d(positions, self.q.out_features // self.num_heads, theta))


class A2V(CrossModalAttention):
    """Video tokens query audio: delta for the video stream [B, Lv, Cv]."""

    def forward(self, video: torch.Tensor, audio: torch.Tensor, plan: AlignmentPlan, theta: float) -> torch.Tensor:
        g = plan.grid
        per_token = plan.video_pos_a2v.repeat_interleave(g.per_frame)              # [Lv]
        q = self.project_q(self.norm_x(video), self.rope(per_token, theta))        # [B, Lv, H, D]
        k, v = self.project_kv(self.norm_src(audio), self.rope(plan.audio_pos_a2v, theta))  # [B, Ta, H, D]
        if not plan.local:
            return self.out(self.backend(q, k, v, None))
        b, w = q.shape[0], plan.a2v
        q = q.view(b * g.frames, g.per_frame, *q.shape[2:])                        # [B*Tv, HW, H, D]
        k = k[:, w.index].flatten(0, 1)                                             # [B*Tv, W, H, D]
        v = v[:, w.index].flatten(0, 1)
        out = self.backend(q, k, v, _mask_or_none(w.valid, b))                     # [B*Tv, HW, H, D]
        return self.out(out.reshape(b, g.tokens, *out.shape[2:]))


class V2A(CrossModalAttention):
    """Audio tokens query video: delta for the target audio tokens [B, Ta, Ca]."""

    def forward(self, audio: torch.Tensor, video: torch.Tensor, plan: AlignmentPlan, theta: float) -> torch.Tensor:
        g = plan.grid
        q = self.project_q(self.norm_x(audio), self.rope(plan.audio_pos_v2a, theta))     # [B, Ta, H, D]
        per_token = plan.video_pos_v2a.repeat_interleave(g.per_frame)
        k, v = self.project_kv(self.norm_src(video), self.rope(per_token, theta))       # [B, Lv, H, D]
        if not plan.local:
            return self.out(self.backend(q, k, v, None))
        b, qw = q.shape[0], plan.v2a_queries
        qg = q[:, qw.index]                                                          # [B, Tv, Qw, H, D]
        k = k.view(b, g.frames, g.per_frame, *k.shape[2:])                           # [B, Tv, HW, H, D]
        v = v.view(b, g.frames, g.per_frame, *v.shape[2:])
        out = neighbour_frame_attention(qg, k, v, plan.v2a_margin)                   # [B, Tv, Qw, H, D]
        out = out.flatten(1, 2)[:, plan.v2a_slot]                                    # [B, Ta, H, D]
        return self.out(out)


class GlobalStyle(CrossModalAttention):
    """Reference-audio tokens query the whole video, no RoPE (paper Eq. 7)."""

    def forward(self, ref: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        q = self.project_q(self.norm_x(ref))
        k, v = self.project_kv(self.norm_src(video))
        return self.out(self.backend(q, k, v, None))


class InteractionBlock(nn.Module):
    """One layer's bidirectional exchange. Both directions read the pre-interaction states."""

    def __init__(self, cfg: HarmonyConfig, backend: Backend) -> None:
        super().__init__()
        v, a = cfg.video, cfg.audio
        self.theta = cfg.interaction.rope_theta
        self.a2v = A2V(v.dim, a.dim, v.num_heads, backend, v.eps)
        self.v2a = V2A(a.dim, v.dim, a.num_heads, backend, a.eps)
        use_gsa = cfg.interaction.global_style and cfg.interaction.kind == "gldi"
        self.global_style = GlobalStyle(a.dim, v.dim, a.num_heads, backend, a.eps) if use_gsa else None

    def forward(self, video: torch.Tensor, audio: torch.Tensor, ref: torch.Tensor | None,
                plan: AlignmentPlan, flags: PassFlags = PLAIN,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """video [B, Lv, Cv], audio [B, Ta, Ca] (target tokens), ref [B, Tr, Ca] or None. flags: a direction
        switched off leaves its stream as it is (global style carries video into audio: it is v2a)."""
        video_out = video + self.a2v(video, audio, plan, self.theta).float() if flags.a2v else video
        audio_out = audio + self.v2a(audio, video, plan, self.theta).float() if flags.v2a else audio
        if flags.v2a and ref is not None and ref.shape[1] and self.global_style is not None:
            ref = ref + self.global_style(ref, video).float()
        return video_out, audio_out, ref
