"""The demo model's own small caption encoder (real models take umT5 embeddings from outside).

Words (lower-cased, split on anything that is not a letter or digit) are hashed with CRC-32 into a fixed
number of buckets, embedded, given learned positions and passed through a few transformer layers. Rows
beyond a caption's length are zero, which is exactly how Wan pads umT5 contexts, so an empty caption
(the unconditional branch of CFG) is an all-zero context.
"""
from __future__ import annotations

import re
import zlib

import torch
from torch import nn

from ..config import TextEncoderConfig

PAD_ID = 0
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def tokenize(texts: list[str], buckets: int, max_len: int) -> torch.Tensor:
    """Captions -> [B, max_len] long word-bucket ids in 1..buckets-1, PAD_ID padded (extra words dropped)."""
    ids = torch.full((len(texts), max_len), PAD_ID, dtype=torch.long)
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())[:max_len]
        for j, w in enumerate(words):
            ids[i, j] = 1 + zlib.crc32(w.encode("utf-8")) % (buckets - 1)
    return ids


class HashTextEncoder(nn.Module):
    def __init__(self, cfg: TextEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.buckets, cfg.dim, padding_idx=PAD_ID)
        self.pos = nn.Parameter(torch.randn(cfg.max_len, cfg.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, cfg.dim * 4, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """[B, L] ids -> [B, L, dim]; padded rows are exactly zero."""
        pad = ids.eq(PAD_ID)                                           # [B, L]
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        safe = pad.clone()
        safe[:, 0] = False                     # an empty caption still needs one attendable row
        x = self.norm(self.layers(x, src_key_padding_mask=safe))
        return x.masked_fill(pad[..., None], 0.0)

    def encode(self, texts: list[str]) -> torch.Tensor:
        """Captions -> [B, max_len, dim] on the encoder's device."""
        ids = tokenize(texts, self.cfg.buckets, self.cfg.max_len).to(self.pos.device)
        return self.forward(ids)
