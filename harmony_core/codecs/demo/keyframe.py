"""The "keyframe" temporal basis of the demo video codec (see `video.py` for the whole transform).

Per 8x8 cell and per kept (colour, u, v) spatial coefficient, latent frame i carries
- t = 0: the coefficient of pixel frame 4i alone (the keyframe); pixel frames 4i-3 .. 4i-1 start from the
  linear interpolation between keyframes i-1 and i (weights j/4, j = 1..3);
- t = 1..3: the orthonormal DST-I of the interpolation residual on those 3 frames (zero at both keyframes).
Latent 0 is frame 0's keyframe; its t >= 1 coefficients are zero. The basis is complete: with all 768
coefficients, decode(encode(x)) == x.
"""
from __future__ import annotations

import math

import torch
from einops import rearrange

from ...timeline import VIDEO_TEMPORAL_STRIDE

CELL = 8
INNER = VIDEO_TEMPORAL_STRIDE - 1  # frames strictly between two keyframes (3)
SPATIAL = 192   # 3 colours x 8 x 8 spatial coefficients per cell


def spatial_basis(colour: torch.Tensor, dct: torch.Tensor) -> torch.Tensor:
    """Orthonormal [192, 192] float64 basis: row (colour, u, v), column (rgb, row, column) of a cell."""
    return torch.einsum("cr,uy,vx->cuvryx", colour, dct, dct).reshape(SPATIAL, SPATIAL)


def dst1_matrix(n: int = INNER) -> torch.Tensor:
    """Orthonormal DST-I [n, n] float64; row t - 1 is the basis vector sin(pi t j / (n + 1)), j = 1..n."""
    j = torch.arange(1, n + 1, dtype=torch.float64)
    return math.sqrt(2.0 / (n + 1)) * torch.sin(math.pi * j[:, None] * j[None, :] / (n + 1))


def _interpolate(key: torch.Tensor) -> torch.Tensor:
    """Keyframes [B, Tv, h, w, S] -> linear interpolation on the inner frames [B, Tv - 1, 3, h, w, S]."""
    ramp = torch.arange(1, INNER + 1, dtype=key.dtype, device=key.device) / (INNER + 1)  # [3]
    ramp = ramp[:, None, None, None]                                                         # [3, 1, 1, 1]
    return key[:, :-1, None] * (1 - ramp) + key[:, 1:, None] * ramp


def encode(x: torch.Tensor, spatial: torch.Tensor, dst: torch.Tensor, t_idx: torch.Tensor,
           s_idx: torch.Tensor) -> torch.Tensor:
    """Pixels [B, 3, F = 4(Tv-1)+1, H, W] -> coefficients [B, K, Tv, H/8, W/8] (K = len(t_idx), unscaled)."""
    y = rearrange(x, "b c f (h y) (w x) -> b f h w (c y x)", y=CELL, x=CELL) @ spatial.T  # [B, F, h, w, S]
    b, f, h, w, _ = y.shape
    tv = (f - 1) // (INNER + 1) + 1
    key = y[:, :: INNER + 1]                                                    # [B, Tv, h, w, S]
    inner = y[:, 1:].reshape(b, tv - 1, INNER + 1, h, w, SPATIAL)[:, :, :INNER]  # [B, Tv-1, 3, h, w, S]
    detail = torch.einsum("tj,bijhws->bithws", dst, inner - _interpolate(key))   # [B, Tv-1, 3, h, w, S]
    detail = torch.cat([detail.new_zeros(b, 1, INNER, h, w, SPATIAL), detail], dim=1)
    full = torch.cat([key[:, :, None], detail], dim=2)                          # [B, Tv, 4, h, w, S]
    return full.permute(0, 2, 5, 1, 3, 4)[:, t_idx, s_idx]                     # [B, K, Tv, h, w]


def decode(coef: torch.Tensor, spatial: torch.Tensor, dst: torch.Tensor, t_idx: torch.Tensor,
           s_idx: torch.Tensor) -> torch.Tensor:
    """Coefficients [B, K, Tv, h, w] (unscaled) -> pixels [B, 3, 4(Tv-1)+1, 8h, 8w] (not clamped)."""
    b, _, tv, h, w = coef.shape
    full = coef.new_zeros(b, INNER + 1, SPATIAL, tv, h, w)
    full[:, t_idx, s_idx] = coef
    full = full.permute(0, 3, 1, 4, 5, 2)                                       # [B, Tv, 4, h, w, S]
    key = full[:, :, 0]                                                         # [B, Tv, h, w, S]
    inner = _interpolate(key) + torch.einsum("tj,bithws->bijhws", dst, full[:, 1:, 1:])
    later = torch.cat([inner, key[:, 1:, None]], dim=2).reshape(b, (INNER + 1) * (tv - 1), h, w, SPATIAL)
    y = torch.cat([key[:, :1], later], dim=1)                                   # [B, F, h, w, S]
    return rearrange(y @ spatial, "b f h w (c y x) -> b c f (h y) (w x)", c=3, y=CELL, x=CELL)
