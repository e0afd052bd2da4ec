"""UniAVGen's audio tower (`AudioConfig.kind == "mel"`): Wan blocks over normalised mel frames.

Reproduces the audio half of `wan/modules/model.py::WanModel` (github.com/MCG-NJU/Sora2-mini @ 6d9a41b,
`shared/reference/uniavgen.md` §4):
- input: the normalised 80-bin mel as our audio latent [B, 80, T] (C = the mel bins), one token per frame:
  `embedding` = Linear(80 -> D) -> GELU(tanh) -> Linear(D -> D); the reference mel [B, 80, Tr] is
  prepended: tokens [ref ; target], 1-D RoPE over positions 0 .. Tr + T - 1;
- ONE timestep per sample, shared by the reference and the target mel: the row's t, or 0 when any target
  frame is held clean (the reference forces t_a = 0 whenever `audio_cond > 0`, noisy tail included);
- the transcript (F5-TTS TextEmbedding + bias-free Linear to D) is the K/V of every block's cross-attention,
  with 1-D RoPE on q (audio positions) and k (transcript positions), not padded to the audio length;
- blocks are the video tower's `WanBlock` (one "frame" of L tokens); the head (`audio.AudioHead`) runs on
  the target tokens only.
Names map 1:1 onto the reference's (`loading/keymaps.py` UNIAVGEN): audio_embedding -> embedding,
audio_padding -> padding, text_embedding + text_proj -> transcript_embedding, *_audio -> time_*, audio_blocks
-> blocks, head_audio -> head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attention import Backend
from ..config import AudioConfig
from .audio import AudioHead
from .conditioning import Conditioning
from .embeddings import Rope, rope_angles_1d
from .layers import TIMESTEP_SCALE, embed_timesteps, gelu_mlp, to_weight_dtype
from .transcript import ConvNeXtV2Block
from .video import VideoGrid, WanBlock

F5_MAX_POS = 4096   # F5's precomputed sinusoid length; later positions reuse the last row (get_pos_embed_indices)
FILLER = -1         # transcript id of a filler row (attended as a zero vector, as in the reference)


def f5_sinusoid(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """F5-TTS `precompute_freqs_cis(dim, 4096)[positions]`: [L] -> [L, dim] = cat[cos, sin], in float32
    exactly as F5 computes it (frequencies 10000^(-2i/dim), i < dim/2)."""
    inv = 1.0 / (10000.0 ** (torch.arange(0, dim, 2, device=positions.device)[: dim // 2].float() / dim))
    angles = torch.outer(positions.clamp(max=F5_MAX_POS - 1).float(), inv).float()    # [L, dim/2]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class F5Transcript(nn.Module):
    """ids [B, L] (vocabulary ids, FILLER = -1) -> cross-attention context [B, L, out_dim].

    F5's TextEmbedding: ids + 1 (filler -> 0) -> Embedding(vocab, dim) + sinusoid -> filler rows zeroed ->
    ConvNeXt-V2 blocks, filler rows re-zeroed after each -> `proj` (Linear, no bias). `lens` [B] marks rows
    at or beyond a row's length as batch padding: zero, and left out of GRN's norm over time, so a row gives
    the same numbers alone or stacked with longer ones (fillers inside the length count, as in the reference).
    """

    def __init__(self, vocab: int, dim: int, conv_layers: int, out_dim: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.text_embed = nn.Embedding(vocab, dim)
        self.text_blocks = nn.ModuleList(ConvNeXtV2Block(dim) for _ in range(conv_layers))
        self.proj = nn.Linear(dim, out_dim, bias=False)

    def forward(self, ids: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
        b, n = ids.shape
        if bool(((ids < FILLER) | (ids >= self.vocab - 1)).any()):
            raise ValueError(f"transcript ids must lie in -1..{self.vocab - 2} (vocabulary line ids, -1 = "
                             "filler); build them with harmony_core.model.transcript_ids")
        pos = torch.arange(n, device=ids.device)
        inside = torch.ones_like(ids, dtype=torch.bool) if lens is None else pos[None] < lens.to(ids.device)[:, None]
        keep = (inside & (ids != FILLER))[..., None]                                 # [B, L, 1]
        weight = self.text_embed.weight
        x = self.text_embed(torch.where(inside, ids + 1, 0)) + f5_sinusoid(weight.shape[1], pos).to(weight.dtype)
        x = x.masked_fill(~keep, 0.0)                                                # [B, L, dim]
        valid = None if lens is None else inside[..., None].to(x.dtype)
        for block in self.text_blocks:
            x = block(x, valid).masked_fill(~keep, 0.0)
        return self.proj(to_weight_dtype(x, self.proj))                              # [B, L, out_dim]


@dataclass
class MelState:
    """The audio stream between blocks (`x` and `ref_len` are what the model and the interaction touch)."""

    x: torch.Tensor                  # [B, Tr + Ta, C] float32
    ref_len: int
    e: torch.Tensor                  # [B, 1, C] time embedding (one timestep per sample)
    e0: torch.Tensor                 # [B, 1, 6, C]
    rope: Rope                       # positions 0 .. Tr + Ta - 1
    text: torch.Tensor               # [B, Lt, C] transcript context
    text_mask: torch.Tensor | None   # [B, Lt] bool, None when every row is attended
    text_rope: Rope                  # positions 0 .. Lt - 1


class MelAudioTower(nn.Module):
    def __init__(self, cfg: AudioConfig, backend: Backend) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = gelu_mlp(cfg.in_dim, cfg.dim, cfg.dim)
        # The reference pads batch members of different lengths with this token; our rows share one length
        # (ref_audio is one tensor), so it is never used. It stays for the key set.
        self.padding = nn.Parameter(torch.randn(cfg.dim))
        self.transcript_embedding = F5Transcript(cfg.transcript_vocab, cfg.transcript_dim,
                                                 cfg.transcript_conv_layers, cfg.dim)
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, cfg.dim * 6))
        self.blocks = nn.ModuleList(WanBlock(cfg, backend) for _ in range(cfg.num_layers))
        self.head = AudioHead(cfg)   # the MM-DiT tower's head: same math and names

    def rope(self, length: int, device: torch.device) -> Rope:
        return Rope(rope_angles_1d(torch.arange(length, device=device), self.cfg.head_dim, self.cfg.rope_theta))

    def prepare(self, audio: torch.Tensor, t_audio: torch.Tensor, cond: Conditioning) -> MelState:
        """audio [B, 80, Ta] normalised mel, t_audio [B, Ta] sigma -> the stream before block 0."""
        ref = cond.ref_audio
        mel = audio if ref is None else torch.cat([ref.to(audio), audio], dim=-1)         # [B, 80, Tr + Ta]
        x = self.embedding(to_weight_dtype(mel.transpose(1, 2), self.embedding[0])).float()  # [B, L, C]
        t_one = t_audio.float().amin(dim=1, keepdim=True)                                 # [B, 1]
        e, e0 = embed_timesteps(t_one * TIMESTEP_SCALE, self.cfg.freq_dim, self.time_embedding,
                                self.time_projection)                                     # [B,1,C], [B,1,6,C]
        ids, lens = cond.transcript.to(x.device), cond.transcript_lens
        text = self.transcript_embedding(ids, lens).float()                              # [B, Lt, C]
        mask = None
        if lens is not None and bool((lens < ids.shape[1]).any()):
            mask = torch.arange(ids.shape[1], device=x.device)[None] < lens.to(x.device)[:, None]
        return MelState(x=x, ref_len=0 if ref is None else ref.shape[-1], e=e, e0=e0,
                        rope=self.rope(x.shape[1], x.device), text=text, text_mask=mask,
                        text_rope=self.rope(ids.shape[1], x.device))

    def step(self, index: int, s: MelState) -> None:
        """Run block `index` on the stream in place."""
        grid = VideoGrid(1, 1, s.x.shape[1])          # one "frame" of L tokens: one timestep per sample
        s.x = self.blocks[index](s.x, s.e0, grid, s.rope, s.text, (s.rope, s.text_rope), s.text_mask)

    def output(self, s: MelState) -> torch.Tensor:
        """Velocity of the target mel [B, 80, Ta] (the reference mel is dropped)."""
        return self.head(s.x[:, s.ref_len:], s.e).transpose(1, 2)
