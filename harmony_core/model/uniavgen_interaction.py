"""UniAVGen's audio-video interaction (`InteractionConfig.kind == "uniavgen"`), by gathers, never dense masks.

Reproduces `WanAVJointCrossAttention` and its use in `WanModel.forward` (github.com/MCG-NJU/Sora2-mini @
6d9a41b, `shared/reference/uniavgen.md` §5). On each interacting layer, after both blocks, from the same
post-block states (F = the latent frames after the prepended reference frame, P = h*w tokens per frame,
Ta = target mel frames, cond/held frames included; the reference mel never takes part):
- face mask: sigmoid(Linear(LN(x) (1 + scale) + shift)) per video token, (scale, shift) = modulation +
  the frame's time embedding (`FaceMaskHead`, the reference's `a2v.mask_head`);
- A2V: the P tokens of each frame attend to that frame's audio window (`a2v_window_index`: the frame's
  pixel frames +- window//2, widened to one length with duplicated edge tokens, clipped to the sequence).
  q: video 3-D RoPE on grid (1, h, w); k: window-relative index 0..W-1 in the temporal band, with the
  audio table's frequencies. Output o(attention * mask). k and v are projected once per audio token and
  gathered per window (the projection is per token, so this equals projecting the gathered windows);
- V2A: audio token j reads the masked video states interpolated linearly at pixel-frame position
  p = j (4(F-1)+1) / Ta between floor(p) and floor(p)+1, both clipped to the last pixel frame (so the
  weights sum to 2 over the tail, as the reference does); latent frame 0 is pixel frame 0, latent i >= 1
  covers pixel frames 4i-3..4i. One query per audio token, keys = the P interpolated tokens with spatial
  RoPE. The bias-free k/v projections run once per latent frame and are interpolated after
  (linearity), then the bias, RMSNorm and RoPE run per audio token, in pieces of audio tokens;
- fusion: video frames and audio frames at sigma 0 (held: the reference frame, `video_cond` frames,
  `audio_cond` frames) are never updated; `PassFlags` drops a direction's residual.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import cancel
from ..attention import Backend
from ..config import HarmonyConfig
from ..passes import PLAIN, PassFlags
from .embeddings import FP32LayerNorm, Rope, rope_angles_1d, rope_angles_3d, wan_axis_dims
from .layers import Attention, modulate, to_weight_dtype
from .video import VideoGrid

V2A_PIECE = 1 << 25   # elements of one V2A key piece (audio tokens x P x C): 128 MiB in float32


def pixel_frames(latent_frames: int) -> int:
    """Wan's causal VAE: latent frame 0 is pixel frame 0, each later latent covers 4 pixel frames."""
    return (latent_frames - 1) * 4 + 1


def a2v_window_index(audio_len: int, frames: int, window: int = 5) -> torch.Tensor:
    """[F, W] long: the target-audio token each latent frame's A2V window gathers (`align_audio_to_video`)."""
    if frames < 2:
        raise ValueError(f"UniAVGen's A2V needs at least 2 latent frames after the reference frame, got {frames}")
    rate = audio_len / pixel_frames(frames)               # audio tokens per pixel frame
    half = (window + 1 - window % 2) // 2                 # an even window is widened by one frame first
    lo, hi = math.floor(half * rate), math.ceil(half * rate)
    spans = [(-lo, 1 + hi)] + [(math.floor((4 * i - 3) * rate) - lo, math.ceil((4 * i + 1) * rate) + hi)
                               for i in range(1, frames)]
    length = max(end - start for start, end in spans[1:])
    rows = []
    for start, end in spans:
        pad = length - (end - start)
        if start < 0:
            start -= pad
        elif end >= audio_len:
            end += pad
        else:
            start, end = start - pad // 2, end + pad - pad // 2
        rows.append(torch.arange(start, end).clamp(0, audio_len - 1))
    if any(r.numel() != length for r in rows):
        raise ValueError(f"{audio_len} audio frames for {frames} latent frames give A2V windows of unequal "
                         "length; UniAVGen expects about 6 mel frames per pixel frame")
    return torch.stack(rows)


def v2a_interpolation(audio_len: int, frames: int,
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per target-audio token: latent frames (down, up) [Ta] long and weights (w_down, w_up) [Ta] float32."""
    pixels = pixel_frames(frames)
    pos = torch.arange(audio_len, dtype=torch.float32) / (audio_len / pixels)      # pixel-frame position
    down = pos.floor().clamp(0, pixels - 1)
    up = (down + 1).clamp(0, pixels - 1)
    w_up, w_down = 1 - (up - pos), 1 - (pos - down)

    def latent(p: torch.Tensor) -> torch.Tensor:
        return (p.long() + 3) // 4
    return latent(down), latent(up), w_down, w_up


def a2v_key_angles(window: int, head_dim: int, theta: float) -> torch.Tensor:
    """[W, head_dim/2] float64: window-relative index in the temporal band of Wan's 3-D split, at the audio
    table's frequencies theta^(-2i/head_dim); the spatial bands sit at position 0."""
    temporal = wan_axis_dims(head_dim)[0] // 2
    angles = rope_angles_1d(torch.arange(window), head_dim, theta)                  # [W, head_dim/2]
    angles[:, temporal:] = 0.0
    return angles


@dataclass(frozen=True)
class UniAVGenPlan:
    """What the interaction needs about one forward, built once."""

    frames: int                   # latent frames after the reference frame
    per_frame: int                # P
    lead: int                     # tokens before them (the reference frame)
    e: torch.Tensor               # [B, F, Cv] time embedding of those frames (face-mask modulation)
    window: torch.Tensor          # [F, W] long
    spatial_rope: Rope            # grid (1, h, w): A2V queries, V2A keys
    window_rope: Rope             # A2V keys
    v2a_down: torch.Tensor        # [Ta] long latent frame
    v2a_up: torch.Tensor
    w_down: torch.Tensor          # [Ta] float32
    w_up: torch.Tensor
    video_update: torch.Tensor    # [B, F] bool: frames the interaction may change (sigma > 0)
    audio_update: torch.Tensor    # [B, Ta] bool
    any_video: bool
    any_audio: bool

    @staticmethod
    def build(cfg: HarmonyConfig, grid: VideoGrid, e: torch.Tensor, t_video: torch.Tensor,
              t_audio: torch.Tensor) -> UniAVGenPlan:
        """grid: the token grid incl. the reference frame; e [B, F, Cv]; t_video [B, F], t_audio [B, Ta]."""
        frames, ta, device = grid.frames - 1, t_audio.shape[1], e.device
        window = a2v_window_index(ta, frames, cfg.interaction.a2v_window).to(device)
        down, up, w_down, w_up = (x.to(device) for x in v2a_interpolation(ta, frames))
        video_update, audio_update = t_video.to(device) != 0, t_audio.to(device) != 0
        head_dim = cfg.video.head_dim
        return UniAVGenPlan(
            frames=frames, per_frame=grid.per_frame, lead=grid.per_frame, e=e, window=window,
            spatial_rope=Rope(rope_angles_3d(1, grid.height, grid.width, head_dim, device=device)),
            window_rope=Rope(a2v_key_angles(window.shape[1], head_dim, cfg.audio.rope_theta).to(device)),
            v2a_down=down, v2a_up=up, w_down=w_down, w_up=w_up, video_update=video_update,
            audio_update=audio_update, any_video=bool(video_update.any()), any_audio=bool(audio_update.any()))


class FaceMaskHead(nn.Module):
    """The reference's `Head_mask`: per video token, sigmoid(Linear(LN(x) (1 + scale) + shift))."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.norm = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.head = nn.Linear(dim, 1)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x [B, F, P, C], e [B, F, C] -> mask [B, F, P, 1] in (0, 1), float32."""
        shift, scale = (self.modulation.float()[:, None] + e.float()[:, :, None]).unsqueeze(3).unbind(2)
        h = modulate(self.norm(x), shift, scale)                                   # [B, F, P, C]
        return torch.sigmoid(self.head(to_weight_dtype(h, self.head)).float())


class WindowedA2V(Attention):
    """Video frames query their audio window; `mask_head` predicts the face mask."""

    def __init__(self, cfg: HarmonyConfig, backend: Backend) -> None:
        v, a = cfg.video, cfg.audio
        super().__init__(v.dim, v.num_heads, backend, kv_dim=a.dim, qk_norm=v.qk_norm, eps=v.eps)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)
        self.mask_head = FaceMaskHead(v.dim, v.eps) if cfg.interaction.face_mask else None

    def forward(self, vx: torch.Tensor, audio: torch.Tensor, mask: torch.Tensor | None,
                plan: UniAVGenPlan) -> torch.Tensor:
        """vx [B, F, P, Cv], audio [B, Ta, Ca], mask [B, F, P, 1] or None -> delta [B, F, P, Cv]."""
        b, f, p, _ = vx.shape
        q = self.project_q(vx.flatten(0, 1), plan.spatial_rope)                     # [B*F, P, H, D]
        k, v = self.project_kv(audio)                                               # [B, Ta, H, D]
        k = plan.window_rope.apply(k[:, plan.window].flatten(0, 1))                 # [B*F, W, H, D]
        v = v[:, plan.window].flatten(0, 1)
        out = self.backend(q, k, v, None).flatten(-2)                               # [B*F, P, C]
        if mask is not None:
            out = out * mask.flatten(0, 1).to(out.dtype)
        return self.o(to_weight_dtype(out, self.o)).view(b, f, p, -1)


class InterpolatedV2A(Attention):
    """Each audio token queries the (masked) video states interpolated at its time."""

    def __init__(self, cfg: HarmonyConfig, backend: Backend) -> None:
        v, a = cfg.video, cfg.audio
        super().__init__(a.dim, a.num_heads, backend, kv_dim=v.dim, qk_norm=a.qk_norm, eps=a.eps)
        nn.init.zeros_(self.o.weight)
        nn.init.zeros_(self.o.bias)

    def forward(self, audio: torch.Tensor, vx: torch.Tensor, mask: torch.Tensor | None,
                plan: UniAVGenPlan) -> torch.Tensor:
        """audio [B, Ta, Ca], vx [B, F, P, Cv], mask [B, F, P, 1] or None -> delta [B, Ta, Ca]."""
        b, ta = audio.shape[:2]
        src = to_weight_dtype(vx if mask is None else vx * mask.to(vx.dtype), self.k)
        pk, pv = F.linear(src, self.k.weight), F.linear(src, self.v.weight)          # [B, F, P, C]
        q = self.project_q(audio)                 # [B, Ta, H, D]; RoPE at position 0 is the identity
        piece = max(1, V2A_PIECE // (vx.shape[2] * pk.shape[-1]))
        out = []
        for j in torch.arange(ta, device=audio.device).split(piece):
            cancel.check()
            k = self.norm_k(self._interpolate(pk, j, plan) + self.k.bias)            # [B, J, P, C]
            k = plan.spatial_rope.apply(k.unflatten(-1, (self.num_heads, -1)).flatten(0, 1))  # [B*J, P, H, D]
            v = (self._interpolate(pv, j, plan) + self.v.bias).unflatten(-1, (self.num_heads, -1)).flatten(0, 1)
            attended = self.backend(q[:, j].flatten(0, 1)[:, None], k, v, None)     # [B*J, 1, H, D]
            out.append(attended.view(b, len(j), -1))
        return self.o(torch.cat(out, dim=1))                                          # [B, Ta, Ca]

    @staticmethod
    def _interpolate(x: torch.Tensor, j: torch.Tensor, plan: UniAVGenPlan) -> torch.Tensor:
        """x [B, F, P, C] -> [B, J, P, C] at audio tokens j: w_up x[up] + w_down x[down]."""
        w_up = plan.w_up[j].to(x.dtype)[None, :, None, None]
        w_down = plan.w_down[j].to(x.dtype)[None, :, None, None]
        return w_up * x[:, plan.v2a_up[j]] + w_down * x[:, plan.v2a_down[j]]


class UniAVGenInteraction(nn.Module):
    """One layer's A2V + V2A; names as the reference's `a2v_blocks.N` / `v2a_blocks.N`."""

    def __init__(self, cfg: HarmonyConfig, backend: Backend) -> None:
        super().__init__()
        self.a2v = WindowedA2V(cfg, backend)
        self.v2a = InterpolatedV2A(cfg, backend)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, ref: torch.Tensor | None, plan: UniAVGenPlan,
                flags: PassFlags = PLAIN) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """video [B, lead + F*P, Cv] (all frames), audio [B, Ta, Ca] (target tokens), ref: passed through."""
        run_a2v, run_v2a = flags.a2v and plan.any_video, flags.v2a and plan.any_audio
        if not (run_a2v or run_v2a):
            return video, audio, ref
        b, lead = video.shape[0], plan.lead
        vx = video[:, lead:].view(b, plan.frames, plan.per_frame, -1)                # [B, F, P, Cv]
        heads = self.a2v.mask_head
        mask = heads(vx, plan.e) if heads is not None else None                      # [B, F, P, 1]
        new_video, new_audio = video, audio
        if run_a2v:
            delta = self.a2v(vx, audio, mask, plan).float()
            moved = torch.where(plan.video_update[:, :, None, None], vx + delta, vx)
            new_video = torch.cat([video[:, :lead], moved.flatten(1, 2)], dim=1)
        if run_v2a:
            delta = self.v2a(audio, vx, mask, plan).float()
            new_audio = torch.where(plan.audio_update[:, :, None], audio + delta, audio)
        return new_video, new_audio, ref
