"""Global-Local Decoupled Interaction (paper §3.3) and the Ovi-style global baseline.

Local sync (both directions) is frame-wise cross-attention computed by GATHERING each frame's window
into a batch — (B*Tv, window, C) — never through a dense (N x N) mask:
- A2V: the h*w tokens of video latent frame i attend to the audio latents of window C_a,i
  (`timeline.a2v_windows`).
- V2A: audio latents are grouped by the video frame holding their centre; each group attends to the
  tokens of that frame and `v2a_margin` frames either side (`timeline.v2a_groups`), read key frame by key
  frame in place (`attention.local.key_frame_attention`), so no key is copied.
Source positions are rescaled onto the target's timeline before a 1-D temporal RoPE (A2V: audio j at
j*Tv/Ta on the video timeline; V2A: video i at i*Ta/Tv on the audio timeline), unless `rope_align`
is off. Global style alignment: reference-audio tokens query the whole video (paper Eq. 7).
All output projections start at zero so the module is a no-op until trained.

What runs on the video tokens (24,024 of them at the 5B layout) is kept to the matmuls, by algebra that
changes no result beyond float rounding:
- one LayerNorm and ONE matmul per layer feed A2V's queries and the keys/values of V2A and global style:
  each consumer's LayerNorm affine is folded into its projection (W diag(gamma), b + W beta) at call time,
  from the parameters themselves (names and checkpoints as before);
- no RoPE on video tokens in the local paths: all tokens of a frame share one temporal position, so
  q_f . k_w under RoPE equals q_f . R(pos_w - pos_f) k_w — the small side (audio keys of each A2V window,
  audio queries of each V2A window) is rotated by the relative angle instead;
- no RMSNorm pass over video tokens: RMSNorm(y) = r * (y * g) with r one scalar per token, so g is folded
  into the other side and r scales that token's scores (A2V rows, V2A / global-style columns).
The plan (windows, padded A2V windows, relative RoPE tables) is built once per layout and shared by every
layer and every step.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .. import timeline
from ..attention import Backend
from ..attention.local import key_frame_attention, padded_windows, query_windows, window_attention
from ..config import HarmonyConfig, InteractionConfig
from ..passes import PLAIN, PassFlags
from .embeddings import FP32LayerNorm, Rope, rope_angles_1d
from .layers import Attention, to_weight_dtype
from .video import VideoGrid


@dataclass(frozen=True)
class AlignmentPlan:
    """Everything the interaction needs about the two timelines. `build` returns one plan per layout
    (cached), so every layer and every step share it; RoPE tables are made on first use, once per head
    dim, and kept in `tables`."""

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
    a2v_index: torch.Tensor | None = None   # [Tv, W'] A2V windows padded to attention.local.LANES keys
    a2v_mask: torch.Tensor | None = None    # [Tv, W'] bool (True = attend), None when nothing is padded
    tables: dict = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def build(cfg: HarmonyConfig, grid: VideoGrid, audio_len: int, device: torch.device) -> AlignmentPlan:
        return _plan(cfg.interaction, grid, audio_len, torch.device(device))

    def rope(self, name: str, head_dim: int, theta: float) -> Rope:
        """Per-token tables of the global (dense) paths: "video_a2v" / "video_v2a" (every video token at
        its frame's position), "audio_a2v" / "audio_v2a"."""
        def make() -> Rope:
            pos = {"video_a2v": self.video_pos_a2v, "audio_a2v": self.audio_pos_a2v,
                   "video_v2a": self.video_pos_v2a, "audio_v2a": self.audio_pos_v2a}[name]
            per_token = pos.repeat_interleave(self.grid.per_frame) if name.startswith("video") else pos
            return Rope(rope_angles_1d(per_token, head_dim, theta))
        return self._table(("rope", name, head_dim, theta), make)

    def relative(self, name: str, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin [Tv, W, D/2] float32 of (source position - frame position) for each frame's window:
        "a2v" (the audio keys of A2V window f) or "v2a" (the audio queries of key frame f's V2A window)."""
        def make() -> tuple[torch.Tensor, torch.Tensor]:
            if name == "a2v":
                rel = self.audio_pos_a2v[self.a2v_index] - self.video_pos_a2v[:, None]             # [Tv, W']
            else:
                index = query_windows(self.v2a_queries.index[None, :, :, None, None], self.v2a_margin)
                rel = self.audio_pos_v2a[index[0, :, 0, :, 0]] - self.video_pos_v2a[:, None]      # [Tv, R]
            angles = rope_angles_1d(rel.flatten(), head_dim, theta).view(*rel.shape, -1)
            return torch.cos(angles).float(), torch.sin(angles).float()
        return self._table(("relative", name, head_dim, theta), make)

    def _table(self, key: tuple, make: object) -> object:
        if key not in self.tables:
            self.tables[key] = make()
        return self.tables[key]


@functools.lru_cache(maxsize=8)
def _plan(ic: InteractionConfig, grid: VideoGrid, ta: int, device: torch.device) -> AlignmentPlan:
    """The plan of one layout; windows are built on the CPU (Python loops, host checks) once, then moved."""
    tv = grid.frames
    local = ic.kind == "gldi"
    a2v = q = slot = index = mask = None
    if local:
        w = timeline.a2v_windows(tv, ta, ic.a2v_margin)
        index, mask = padded_windows(w.index, w.valid)
        a2v, index, mask = _to(w, device), index.to(device), None if mask is None else mask.to(device)
        q = _to(timeline.v2a_groups(tv, ta, ic.v2a_margin)[0], device)
        flat = torch.arange(q.index.numel(), device=device).view_as(q.index)
        slot = torch.empty(ta, dtype=torch.long, device=device)
        slot[q.index[q.valid]] = flat[q.valid]
    return AlignmentPlan(
        grid=grid, audio_len=ta, local=local, a2v=a2v, v2a_queries=q, v2a_margin=ic.v2a_margin, v2a_slot=slot,
        video_pos_a2v=torch.arange(tv, dtype=torch.float64, device=device),
        audio_pos_a2v=timeline.audio_positions(ta, tv, ic.rope_align).to(device),
        video_pos_v2a=timeline.video_positions(tv, ta, ic.rope_align).to(device),
        audio_pos_v2a=torch.arange(ta, dtype=torch.float64, device=device),
        a2v_index=index, a2v_mask=mask,
    )


def _to(w: timeline.Windows, device: torch.device) -> timeline.Windows:
    return timeline.Windows(w.index.to(device), w.valid.to(device))


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE rotation of adjacent pairs (as `Rope.apply`), cos/sin [..., D/2] broadcast against x [..., D]."""
    pairs = x.unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


def _rms_scale(y: torch.Tensor, eps: float) -> torch.Tensor:
    """[..., C] -> [...] float32 rsqrt(mean(y^2) + eps): RMSNorm's per-token factor, one read of y."""
    norm = torch.linalg.vector_norm(y, dim=-1, dtype=torch.float32)
    return torch.rsqrt(norm.square() / y.shape[-1] + eps)


def project_video(video: torch.Tensor, parts: list[tuple[FP32LayerNorm, list[nn.Linear]]],
                  ) -> list[list[torch.Tensor]]:
    """video [B, Lv, Cv] -> for each (norm, projections) part, each projection of norm(video): [B, Lv, C_out].

    One LayerNorm and one matmul for all parts: the norms' affines are folded into the projections. The
    outputs are views of one buffer (their rows are strided)."""
    if len({norm.eps for norm, _ in parts}) > 1:   # different eps: no shared normalisation
        return [[lin(to_weight_dtype(norm(video), lin)) for lin in lins] for norm, lins in parts]
    weights, biases = [], []
    for norm, lins in parts:
        for lin in lins:
            w = lin.weight.float()
            weights.append(w if norm.weight is None else w * norm.weight.float())
            bias = lin.bias.float() if lin.bias is not None else w.new_zeros(w.shape[0])
            biases.append(bias if norm.bias is None else bias + w @ norm.bias.float())
    dtype = parts[0][1][0].weight.dtype
    n = F.layer_norm(video.float(), video.shape[-1:], eps=parts[0][0].eps)                 # [B, Lv, Cv]
    y = F.linear(n.to(dtype), torch.cat(weights).to(dtype), torch.cat(biases).to(dtype))  # [B, Lv, sum C_out]
    outs = iter(y.split([w.shape[0] for w in weights], dim=-1))
    return [[next(outs) for _ in lins] for _, lins in parts]


class CrossModalAttention(Attention):
    """Pre-normed cross-attention between streams with a zero-initialised output projection."""

    def __init__(self, q_dim: int, kv_dim: int, num_heads: int, backend: Backend, eps: float) -> None:
        super().__init__(q_dim, num_heads, backend, kv_dim=kv_dim, qk_norm=True, eps=eps)
        self.norm_x = FP32LayerNorm(q_dim, eps)
        self.norm_src = FP32LayerNorm(kv_dim, eps)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)

    @property
    def head_dim(self) -> int:
        return self.q.out_features // self.num_heads

    def rope(self, positions: torch.Tensor, theta: float) -> Rope:
        return Rope(rope_angles_1d(positions, self.head_dim, theta))

    def heads(self, weight: torch.Tensor) -> torch.Tensor:
        """A norm weight [C] -> [H, D] float32 (C = heads * head_dim)."""
        return weight.float().view(self.num_heads, self.head_dim)


class A2V(CrossModalAttention):
    """Video tokens query audio: delta for the video stream [B, Lv, Cv]."""

    def forward(self, video: torch.Tensor, audio: torch.Tensor, plan: AlignmentPlan, theta: float) -> torch.Tensor:
        return self.attend(self.q(to_weight_dtype(self.norm_x(video), self.q)), audio, plan, theta)

    def attend(self, y: torch.Tensor, audio: torch.Tensor, plan: AlignmentPlan, theta: float) -> torch.Tensor:
        """y [B, Lv, Cv]: the video's query projection before norm_q (a temporary: the local path may
        overwrite it) -> delta [B, Lv, Cv]."""
        g, d = plan.grid, self.head_dim
        src = to_weight_dtype(self.norm_src(audio), self.k)
        k = self.norm_k(self.k(src)).unflatten(-1, (self.num_heads, -1))                # [B, Ta, H, D]
        v = self.v(src).unflatten(-1, (self.num_heads, -1))
        if not plan.local:
            q = plan.rope("video_a2v", d, theta).apply(self.norm_q(y).unflatten(-1, (self.num_heads, -1)))
            return self.out(self.backend(q, plan.rope("audio_a2v", d, theta).apply(k), v, None))
        b = y.shape[0]
        cos, sin = plan.relative("a2v", d, theta)                                       # [Tv, W', D/2]
        keys = _rotate(k[:, plan.a2v_index].float(), cos[:, :, None], sin[:, :, None])  # [B, Tv, W', H, D]
        keys = keys * self.heads(self.norm_q.weight)                  # norm_q's weight, moved to the keys
        rows = _rms_scale(y, self.norm_q.eps).view(b, g.frames, g.per_frame)           # norm_q's 1 / rms
        q = y.view(b, g.frames, g.per_frame, self.num_heads, d)                         # [B, Tv, HW, H, D]
        out = window_attention(q, keys, v[:, plan.a2v_index], plan.a2v_mask, overwrite=True, row_scale=rows)
        # out may be y's strided rows: as one 2-D matrix the output projection adds its bias in the matmul
        return self.o(out.reshape(b * g.tokens, -1)).view(b, g.tokens, -1)


class V2A(CrossModalAttention):
    """Audio tokens query video: delta for the target audio tokens [B, Ta, Ca]."""

    def forward(self, audio: torch.Tensor, video: torch.Tensor, plan: AlignmentPlan, theta: float) -> torch.Tensor:
        src = to_weight_dtype(self.norm_src(video), self.k)
        return self.attend(audio, self.k(src), self.v(src), plan, theta)

    def attend(self, audio: torch.Tensor, yk: torch.Tensor, yv: torch.Tensor, plan: AlignmentPlan,
               theta: float) -> torch.Tensor:
        """yk, yv [B, Lv, Ca]: the video's key projection before norm_k, and its values -> delta [B, Ta, Ca]."""
        g, d = plan.grid, self.head_dim
        q = self.project_q(self.norm_x(audio))                                          # [B, Ta, H, D]
        if not plan.local:
            k = plan.rope("video_v2a", d, theta).apply(self.norm_k(yk).unflatten(-1, (self.num_heads, -1)))
            q = plan.rope("audio_v2a", d, theta).apply(q)
            return self.out(self.backend(q, k, yv.unflatten(-1, (self.num_heads, -1)), None))
        b, m = q.shape[0], plan.v2a_margin
        cos, sin = plan.relative("v2a", d, theta)                                       # [Tv, R, D/2]
        windows = query_windows(q[:, plan.v2a_queries.index].float(), m)               # [B, Tv, H, R, D]
        windows = _rotate(windows, cos[:, None], sin[:, None])
        windows = windows * (self.heads(self.norm_k.weight)[:, None] * d ** -0.5)   # norm_k's weight, 1/sqrt(D)
        frames = (b, g.frames, g.per_frame, self.num_heads, d)
        cols = _rms_scale(yk, self.norm_k.eps).view(b, g.frames, g.per_frame)          # norm_k's 1 / rms
        out = key_frame_attention(windows, yk.view(frames), yv.view(frames), m, key_scale=cols)
        return self.out(out.flatten(1, 2)[:, plan.v2a_slot].to(q.dtype))               # [B, Ta, Ca]


class GlobalStyle(CrossModalAttention):
    """Reference-audio tokens query the whole video, no RoPE (paper Eq. 7)."""

    def forward(self, ref: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        src = to_weight_dtype(self.norm_src(video), self.k)
        return self.attend(ref, self.k(src), self.v(src))

    def attend(self, ref: torch.Tensor, yk: torch.Tensor, yv: torch.Tensor) -> torch.Tensor:
        """yk, yv [B, Lv, Ca]: the video's key projection before norm_k, and its values -> delta [B, Tr, Ca]."""
        q = self.project_q(self.norm_x(ref)) * self.heads(self.norm_k.weight).to(yk.dtype)   # [B, Tr, H, D]
        k = yk * _rms_scale(yk, self.norm_k.eps)[..., None].to(yk.dtype)                  # one pass, not RMSNorm's
        heads = (-1, self.num_heads, self.head_dim)
        return self.out(self.backend(q, k.unflatten(-1, heads[1:]), yv.unflatten(-1, heads[1:]), None))


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
        style = flags.v2a and ref is not None and ref.shape[1] and self.global_style is not None
        parts = [m for m, on in ((self.a2v, flags.a2v), (self.v2a, flags.v2a), (self.global_style, style)) if on]
        if not parts:
            return video, audio, ref
        projections = iter(project_video(video, [
            (m.norm_x, [m.q]) if m is self.a2v else (m.norm_src, [m.k, m.v]) for m in parts]))
        video_out, audio_out = video, audio
        if flags.a2v:   # the delta is a fresh temporary: adding the stream into it saves a video-sized buffer
            video_out = self.a2v.attend(*next(projections), audio, plan, self.theta).float().add_(video)
        if flags.v2a:
            audio_out = audio + self.v2a.attend(audio, *next(projections), plan, self.theta).float()
        if style:
            ref = ref + self.global_style.attend(ref, *next(projections)).float()
        return video_out, audio_out, ref
