"""Timestep embedding, rotary position embedding (real cos/sin, interleaved pairs) and RMSNorm.

RoPE follows Wan2.2 (`wan/modules/model.py::rope_params/rope_apply`): pairs are adjacent elements
(x[2i], x[2i+1]); angles are computed in float64. The 3-D video split gives the temporal axis
d - 4*(d//6) real dims and height/width 2*(d//6) each (44/42/42 for head_dim 128).
"""
from __future__ import annotations

import torch
from torch import nn


def sinusoidal_embedding(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """Wan's `sinusoidal_embedding_1d`: [N] -> [N, dim] = cat[cos, sin], computed in float64."""
    half = dim // 2
    pos = positions.to(torch.float64)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=pos.device) / half)
    angles = pos[:, None] * freqs[None, :]                         # [N, half]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).float()


def rope_angles_1d(positions: torch.Tensor, rot_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """[N] positions (may be fractional) -> [N, rot_dim/2] float64 angles."""
    inv = 1.0 / theta ** (torch.arange(0, rot_dim, 2, dtype=torch.float64, device=positions.device) / rot_dim)
    return positions.to(torch.float64)[:, None] * inv[None, :]


def wan_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Real dims per (frame, height, width) axis of Wan's 3-D RoPE."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def rope_angles_3d(frames: int, height: int, width: int, head_dim: int, theta: float = 10000.0,
                   device: torch.device | None = None) -> torch.Tensor:
    """Angles for tokens in (f, h, w) row-major order: [F*H*W, head_dim/2] float64."""
    df, dh, dw = wan_axis_dims(head_dim)
    af = rope_angles_1d(torch.arange(frames, device=device), df, theta)     # [F, df/2]
    ah = rope_angles_1d(torch.arange(height, device=device), dh, theta)     # [H, dh/2]
    aw = rope_angles_1d(torch.arange(width, device=device), dw, theta)      # [W, dw/2]
    grid = torch.cat([
        af[:, None, None, :].expand(frames, height, width, -1),
        ah[None, :, None, :].expand(frames, height, width, -1),
        aw[None, None, :, :].expand(frames, height, width, -1),
    ], dim=-1)                                                              # [F, H, W, D/2]
    return grid.reshape(frames * height * width, head_dim // 2)


class Rope:
    """Precomputed cos/sin for a token sequence; `apply(x)` rotates [B, L, H, D] (L matches)."""

    def __init__(self, angles: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        self.cos = torch.cos(angles).to(dtype)                              # [L, D/2]
        self.sin = torch.sin(angles).to(dtype)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        cos = self.cos[:, None, :].to(x.dtype)                              # [L, 1, D/2]
        sin = self.sin[:, None, :].to(x.dtype)
        pairs = x.unflatten(-1, (-1, 2))                                    # [B, L, H, D/2, 2]
        x0, x1 = pairs[..., 0], pairs[..., 1]
        return torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1).flatten(-2)


class RMSNorm(nn.Module):
    """x * rsqrt(mean(x^2) + eps) * weight, computed in float32 (Wan's WanRMSNorm)."""

    def __init__(self, dim: int, eps: float = 1e-6, device: torch.device | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype (Wan's WanLayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        b = None if self.bias is None else self.bias.float()
        return nn.functional.layer_norm(x.float(), self.normalized_shape, w, b, self.eps).to(x.dtype)
