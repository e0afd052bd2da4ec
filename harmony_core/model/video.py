"""The video tower: Wan2.2-TI2V-5B's DiT with Wan's own parameter names.

A plain Wan2.2-TI2V-5B state dict loads into this module with zero renames (the paper initialises the
video branch from it). Per-token timesteps are supported the Wan2.2 way; since every token of a latent
frame shares its timestep (TI2V only zeroes whole frames), embeddings are computed once per latent frame
and broadcast over the frame's tokens instead of once per token.

Reproduces Wan-Video/Wan2.2 `wan/modules/model.py::WanModel(model_type='ti2v')` (parity/wan22_dit).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from ..attention import Backend
from ..config import AudioConfig, VideoConfig
from .embeddings import FP32LayerNorm, Rope, rope_angles_3d
from .layers import Attention, embed_padded_text, embed_timesteps, gelu_mlp, modulate, to_weight_dtype


@dataclass(frozen=True)
class VideoGrid:
    """Token grid of a patchified video latent: frames x height x width tokens (f, h, w row-major)."""

    frames: int
    height: int
    width: int

    @property
    def per_frame(self) -> int:
        return self.height * self.width

    @property
    def tokens(self) -> int:
        return self.frames * self.per_frame


class WanBlock(nn.Module):
    """self-attn -> text cross-attn -> FFN, adaLN-modulated per latent frame (Wan's WanAttentionBlock).

    Also UniAVGen's audio block (an AudioConfig of kind "mel"): one "frame" of L tokens (one timestep per
    sample), 1-D RoPE, and RoPE on both sides of the transcript cross-attention (`cross_rope`, `context_mask`).
    """

    def __init__(self, cfg: VideoConfig | AudioConfig, backend: Backend) -> None:
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 6, cfg.dim) / cfg.dim ** 0.5)
        self.norm1 = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.self_attn = Attention(cfg.dim, cfg.num_heads, backend, qk_norm=cfg.qk_norm, eps=cfg.eps)
        self.norm3 = FP32LayerNorm(cfg.dim, cfg.eps) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = Attention(cfg.dim, cfg.num_heads, backend, qk_norm=cfg.qk_norm, eps=cfg.eps)
        self.norm2 = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.ffn = gelu_mlp(cfg.dim, cfg.ffn_dim, cfg.dim)

    def forward(self, x: torch.Tensor, e0: torch.Tensor, grid: VideoGrid, rope: Rope,
                context: torch.Tensor, cross_rope: tuple[Rope, Rope] | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, C] float32, e0 [B, F, 6, C] per latent frame, context [B, Lc, C] -> [B, L, C].

        cross_rope: (q rope over the L tokens, k rope over the Lc context rows) or None (Wan: no RoPE);
        context_mask: [B, Lc] bool (True = attend) or None."""
        mod = (self.modulation.float()[:, None] + e0.float()).unsqueeze(3)   # [B, F, 6, 1, C]
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = mod.unbind(2)  # each [B, F, 1, C]
        frames = (x.shape[0], grid.frames, grid.per_frame, x.shape[-1])

        h = modulate(self.norm1(x).view(frames), shift_sa, scale_sa).flatten(1, 2)  # [B, L, C]
        x = x + (self.self_attn(h, q_rope=rope, k_rope=rope).float().view(frames) * gate_sa).flatten(1, 2)
        q_rope, k_rope = cross_rope if cross_rope is not None else (None, None)
        x = x + self.cross_attn(self.norm3(x), context, q_rope=q_rope, k_rope=k_rope, key_mask=context_mask).float()
        h = modulate(self.norm2(x).view(frames), shift_ff, scale_ff).flatten(1, 2)
        x = x + (self.ffn(to_weight_dtype(h, self.ffn[0])).float().view(frames) * gate_ff).flatten(1, 2)
        return x


class WanHead(nn.Module):
    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        out = cfg.out_dim * cfg.patch_size[0] * cfg.patch_size[1] * cfg.patch_size[2]
        self.norm = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, out)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim ** 0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor, grid: VideoGrid) -> torch.Tensor:
        """x [B, L, C], e [B, F, C] (Wan's head uses e, not e0) -> [B, L, out_dim * prod(patch)]."""
        shift, scale = (self.modulation.float()[:, None] + e.float()[:, :, None]).unsqueeze(3).unbind(2)
        h = modulate(self.norm(x).view(x.shape[0], grid.frames, grid.per_frame, -1), shift, scale)
        return self.head(to_weight_dtype(h.flatten(1, 2), self.head)).float()


class WanVideoTower(nn.Module):
    """Wan2.2 DiT. Module names match `WanModel` (patch_embedding, text_embedding, time_embedding,
    time_projection, blocks.N.*, head.*)."""

    def __init__(self, cfg: VideoConfig, backend: Backend) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Conv3d(cfg.in_dim, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = gelu_mlp(cfg.text_dim, cfg.dim, cfg.dim)
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, cfg.dim * 6))
        self.blocks = nn.ModuleList(WanBlock(cfg, backend) for _ in range(cfg.num_layers))
        self.head = WanHead(cfg)

    # -- inputs ---------------------------------------------------------------------------------
    def embed(self, latent: torch.Tensor) -> tuple[torch.Tensor, VideoGrid]:
        """[B, C_in, F, H, W] -> tokens [B, F*H'*W', dim] float32 and the token grid."""
        x = self.patch_embedding(to_weight_dtype(latent, self.patch_embedding))   # [B, dim, F, H', W']
        grid = VideoGrid(*x.shape[2:])
        return x.flatten(2).transpose(1, 2).float(), grid

    def embed_time(self, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """timesteps [B, F] in Wan units (sigma * 1000) -> e [B, F, dim], e0 [B, F, 6, dim] (float32)."""
        return embed_timesteps(timesteps, self.cfg.freq_dim, self.time_embedding, self.time_projection)

    def embed_text(self, context: torch.Tensor) -> torch.Tensor:
        """[B, L <= text_len, text_dim] -> [B, text_len, dim] (zero-padded as Wan does)."""
        return embed_padded_text(context, self.cfg.text_len, self.text_embedding, "video caption")

    def rope(self, grid: VideoGrid, device: torch.device) -> Rope:
        return Rope(rope_angles_3d(grid.frames, grid.height, grid.width, self.cfg.head_dim, device=device))

    # -- outputs --------------------------------------------------------------------------------
    def unpatchify(self, x: torch.Tensor, grid: VideoGrid) -> torch.Tensor:
        """[B, L, p*q*r*C] -> [B, C, F*p, H'*q, W'*r] (channel fastest, as Wan's einsum)."""
        p, q, r = self.cfg.patch_size
        return rearrange(x, "b (f h w) (p q r c) -> b c (f p) (h q) (w r)",
                         f=grid.frames, h=grid.height, w=grid.width, p=p, q=q, r=r)

    def forward(self, latent: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Video-only forward. latent [B, C, F, H, W], timesteps [B, F] (Wan units), context [B, L, text_dim]
        -> prediction [B, C_out, F, H, W] (float32)."""
        x, grid = self.embed(latent)
        e, e0 = self.embed_time(timesteps)
        ctx = self.embed_text(context)
        rope = self.rope(grid, x.device)
        for block in self.blocks:
            x = block(x, e0, grid, rope, ctx)
        return self.unpatchify(self.head(x, e, grid), grid)
