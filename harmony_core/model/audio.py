"""The audio tower: an MM-DiT over audio latents (paper Eq. 2).

Per block, one joint attention runs over [audio-caption tokens ; reference-audio tokens ; target audio
tokens]. The caption stream and the latent stream (reference + target) have their own projections,
norms, FFNs and adaLN modulation (SD3-style MM-DiT); 1-D RoPE rotates the latent stream only. The
reference audio is a clean latent prepended in time (timestep 0), never output and never supervised.
The transcript joins the target tokens additively (see `AudioConfig`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attention import Backend
from ..config import AudioConfig
from .conditioning import Conditioning
from .embeddings import FP32LayerNorm, Rope, rope_angles_1d
from .layers import (
    TIMESTEP_SCALE,
    Attention,
    embed_padded_text,
    embed_timesteps,
    gelu_mlp,
    modulate,
    to_weight_dtype,
)
from .transcript import TranscriptEncoder


class Stream(nn.Module):
    """Per-stream half of an MM-DiT block: modulation, norms, q/k/v/o and FFN."""

    def __init__(self, cfg: AudioConfig, backend: Backend) -> None:
        super().__init__()
        self.modulation = nn.Parameter(torch.randn(1, 6, cfg.dim) / cfg.dim ** 0.5)
        self.norm1 = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.attn = Attention(cfg.dim, cfg.num_heads, backend, qk_norm=cfg.qk_norm, eps=cfg.eps)
        self.norm2 = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.ffn = gelu_mlp(cfg.dim, cfg.ffn_dim, cfg.dim)

    def chunks(self, e0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """e0 [B, L, 6, C] -> six [B, L, C] tensors (shift, scale, gate for attention then FFN)."""
        return (self.modulation.float() + e0.float()).unbind(2)

    def qkv(self, x: torch.Tensor, mod: tuple[torch.Tensor, ...], rope: Rope | None,
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = modulate(self.norm1(x), mod[0], mod[1])
        q = self.attn.project_q(h, rope)
        k, v = self.attn.project_kv(h, rope)
        return q, k, v

    def finish(self, x: torch.Tensor, attended: torch.Tensor, mod: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = x + self.attn.out(attended).float() * mod[2]
        h = modulate(self.norm2(x), mod[3], mod[4])
        return x + self.ffn(to_weight_dtype(h, self.ffn[0])).float() * mod[5]


class MMDiTBlock(nn.Module):
    def __init__(self, cfg: AudioConfig, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.latent = Stream(cfg, backend)
        self.context = Stream(cfg, backend)

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, e0: torch.Tensor, ctx_e0: torch.Tensor,
                rope: Rope) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, L, C] (ref + target), ctx [B, Lc, C], e0 [B, L, 6, C], ctx_e0 [B, 1, 6, C]."""
        mod_x, mod_c = self.latent.chunks(e0), self.context.chunks(ctx_e0)
        qx, kx, vx = self.latent.qkv(x, mod_x, rope)                      # [B, L, H, D]
        qc, kc, vc = self.context.qkv(ctx, mod_c, None)                   # [B, Lc, H, D]
        joint = self.backend(torch.cat([qc, qx], 1), torch.cat([kc, kx], 1), torch.cat([vc, vx], 1), None)
        n = ctx.shape[1]
        return self.latent.finish(x, joint[:, n:], mod_x), self.context.finish(ctx, joint[:, :n], mod_c)


class AudioHead(nn.Module):
    def __init__(self, cfg: AudioConfig) -> None:
        super().__init__()
        self.norm = FP32LayerNorm(cfg.dim, cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(cfg.dim, cfg.out_dim)
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim ** 0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x [B, L, C], e [B, L, C] -> [B, L, out_dim]."""
        shift, scale = (self.modulation.float() + e.float()[:, :, None]).unbind(2)
        return self.head(to_weight_dtype(modulate(self.norm(x), shift, scale), self.head)).float()


@dataclass
class MMDiTState:
    """The audio stream between blocks (`x` and `ref_len` are what the model and the interaction touch)."""

    x: torch.Tensor          # [B, Tr + Ta, C] latent stream (reference + target)
    ref_len: int
    ctx: torch.Tensor        # [B, text_len, C] caption stream
    e: torch.Tensor          # [B, Tr + Ta, C]
    e0: torch.Tensor         # [B, Tr + Ta, 6, C]
    ctx_e0: torch.Tensor     # [B, 1, 6, C]
    rope: Rope


class AudioTower(nn.Module):
    def __init__(self, cfg: AudioConfig, backend: Backend) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embedding = nn.Linear(cfg.in_dim, cfg.dim)
        self.text_embedding = gelu_mlp(cfg.text_dim, cfg.dim, cfg.dim)
        self.transcript_embedding = TranscriptEncoder(cfg.transcript_vocab, cfg.transcript_dim,
                                                      cfg.transcript_conv_layers, cfg.dim)
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, cfg.dim * 6))
        self.blocks = nn.ModuleList(MMDiTBlock(cfg, backend) for _ in range(cfg.num_layers))
        self.head = AudioHead(cfg)

    def embed(self, audio: torch.Tensor, ref: torch.Tensor | None, transcript: torch.Tensor) -> torch.Tensor:
        """audio [B, C, Ta], ref [B, C, Tr] or None, transcript ids [B, Ls] -> tokens [B, Tr + Ta, dim]."""
        ta = audio.shape[-1]
        latent = audio if ref is None else torch.cat([ref.to(audio), audio], dim=-1)   # [B, C, Tr + Ta]
        x = self.patch_embedding(to_weight_dtype(latent.transpose(1, 2), self.patch_embedding)).float()
        words = self.transcript_embedding(transcript, ta).float()                   # [B, Ta, dim]
        return torch.cat([x[:, : x.shape[1] - ta], x[:, -ta:] + words], dim=1)

    def embed_time(self, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """timesteps [B, L] (Wan units) -> e [B, L, dim], e0 [B, L, 6, dim]."""
        return embed_timesteps(timesteps, self.cfg.freq_dim, self.time_embedding, self.time_projection)

    def embed_text(self, context: torch.Tensor) -> torch.Tensor:
        """[B, L <= text_len, text_dim] -> zero-padded [B, text_len, dim] (as the video tower)."""
        return embed_padded_text(context, self.cfg.text_len, self.text_embedding, "audio caption").float()

    def rope(self, length: int, device: torch.device) -> Rope:
        positions = torch.arange(length, device=device)
        return Rope(rope_angles_1d(positions, self.cfg.head_dim, self.cfg.rope_theta))

    # -- the stream the model drives -----------------------------------------------------------
    def prepare(self, audio: torch.Tensor, t_audio: torch.Tensor, cond: Conditioning) -> MMDiTState:
        """audio [B, C, Ta], t_audio [B, Ta] sigma -> the stream before block 0 (reference audio at t = 0)."""
        if cond.audio_context is None:
            raise ValueError("this model's audio tower reads an audio caption: give Conditioning.audio_context "
                             "(umT5 embedding [B, L, text_dim]; an empty caption is all zeros)")
        ref = cond.ref_audio
        tr, ta = (0 if ref is None else ref.shape[-1]), audio.shape[-1]
        x = self.embed(audio, ref, cond.transcript)                                     # [B, Tr + Ta, C]
        t_tokens = torch.cat([t_audio.new_zeros(t_audio.shape[0], tr), t_audio.float()], dim=1)
        e, e0 = self.embed_time(t_tokens * TIMESTEP_SCALE)                              # [B, L, C], [B, L, 6, C]
        _, ctx_e0 = self.embed_time(t_audio.float().mean(1, keepdim=True) * TIMESTEP_SCALE)
        return MMDiTState(x=x, ref_len=tr, ctx=self.embed_text(cond.audio_context), e=e, e0=e0, ctx_e0=ctx_e0,
                          rope=self.rope(tr + ta, x.device))

    def step(self, index: int, s: MMDiTState) -> None:
        """Run block `index` on the stream in place."""
        s.x, s.ctx = self.blocks[index](s.x, s.ctx, s.e0, s.ctx_e0, s.rope)

    def output(self, s: MMDiTState) -> torch.Tensor:
        """Velocity of the target latent [B, C_out, Ta] (the reference audio is dropped)."""
        return self.head(s.x[:, s.ref_len:], s.e[:, s.ref_len:]).transpose(1, 2)
