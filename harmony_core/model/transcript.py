"""Transcript encoder in the F5-TTS style (F5TTS_v1_Base `TextEmbedding`: embedding + ConvNeXt-V2).

Characters are UTF-8 bytes (ids 0..255); FILLER_ID pads a batch and fills the sequence up to the audio
length, as F5-TTS pads its character sequence with filler tokens to the mel length.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)

FILLER_ID = 256


def encode_transcripts(texts: list[str], max_len: int | None = None) -> torch.Tensor:
    """List of strings -> [B, L] long byte ids, filler-padded to the longest (or `max_len`)."""
    rows = [list(t.encode("utf-8")) for t in texts]
    longest = max([len(r) for r in rows] + [1])
    length = longest if max_len is None else max_len
    if max_len is not None and longest > max_len:
        log.warning("transcript truncated from %d to %d bytes", longest, max_len)
    ids = torch.full((len(rows), length), FILLER_ID, dtype=torch.long)
    for i, r in enumerate(rows):
        r = r[:length]
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return ids


def fit_to_length(ids: torch.Tensor, length: int) -> torch.Tensor:
    """[B, L] -> [B, length]: filler-padded or truncated (truncation is logged)."""
    b, n = ids.shape
    if n > length:
        if (ids[:, length:] != FILLER_ID).any():
            log.warning("transcript longer than the audio (%d > %d positions): the tail is dropped", n, length)
        return ids[:, :length]
    return torch.cat([ids, ids.new_full((b, length - n), FILLER_ID)], dim=1)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) over the time axis of [B, T, C]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, C]; valid [B, T, 1] (1 = row of the sequence, 0 = batch padding) or None (all rows)."""
        gx = torch.norm(x if valid is None else x * valid, p=2, dim=1, keepdim=True)  # [B, 1, C]
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, mult: int = 2, kernel: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, dim * mult)
        self.act = nn.GELU()
        self.grn = GRN(dim * mult)
        self.pwconv2 = nn.Linear(dim * mult, dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T, C] -> [B, T, C]; `valid` as for GRN (the only op that mixes rows beyond the kernel)."""
        h = self.dwconv(x.transpose(1, 2)).transpose(1, 2)               # [B, T, C]
        h = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(h))), valid))
        return x + h


class TranscriptEncoder(nn.Module):
    """ids [B, L] -> per-audio-position features [B, T_audio, out_dim]."""

    def __init__(self, vocab: int, dim: int, conv_layers: int, out_dim: int) -> None:
        super().__init__()
        self.text_embed = nn.Embedding(vocab, dim)
        self.text_blocks = nn.Sequential(*[ConvNeXtV2Block(dim) for _ in range(conv_layers)])
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, ids: torch.Tensor, length: int) -> torch.Tensor:
        x = self.text_embed(fit_to_length(ids, length))                  # [B, T, dim]
        return self.proj(self.text_blocks(x))                            # [B, T, out_dim]
