"""Magnitude-preserving layers of MMAudio's 1-D mel VAE (EDM2 style, arXiv 2312.02696).

Reference: hkchengrex/MMAudio `mmaudio/ext/autoencoder/{edm2_utils.py,vae_modules.py}`. Module and
parameter names follow the reference so that its state dicts load unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MP_SUM_T = 0.3  # residual blend of ResnetBlock1D and AttnBlock1D


def normalize(x: torch.Tensor, dim: int | list[int] | None = None, eps: float = 1e-4) -> torch.Tensor:
    """EDM2 `normalize`: x / (eps + ||x||_dim / sqrt(numel over dim)); the norm is taken in float32.

    dim=None normalises over every axis but the first (per output channel for a conv weight).
    """
    if dim is None:
        dim = list(range(1, x.ndim))
    norm = torch.linalg.vector_norm(x, dim=dim, keepdim=True, dtype=torch.float32)
    norm = torch.add(eps, norm, alpha=math.sqrt(norm.numel() / x.numel()))
    return x / norm.to(x.dtype)


def mp_silu(x: torch.Tensor) -> torch.Tensor:
    """Magnitude-preserving SiLU (EDM2 eq. 81)."""
    return F.silu(x) / 0.596


def mp_sum(a: torch.Tensor, b: torch.Tensor, t: float = 0.5) -> torch.Tensor:
    """Magnitude-preserving sum (EDM2 eq. 88): lerp(a, b, t) / sqrt((1 - t)^2 + t^2)."""
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t ** 2)


class MPConv1D(nn.Module):
    """Bias-free Conv1d (padding k // 2) whose weight uses EDM2 forced weight normalisation.

    Checkpoints hold the raw weight; `fuse_weight_norm()` folds the normalisation into it once
    (reference `MPConv1D.remove_weight_norm`), and only a fused layer may run `forward`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size))
        self.fused = False

    def fuse_weight_norm(self) -> None:
        """w_o <- w_o / (1e-4 + ||w_o|| / sqrt(fan_in)) / sqrt(fan_in), computed in float32."""
        w = self.weight.detach().to(torch.float32)
        w = normalize(w) / math.sqrt(w[0].numel())
        self.weight.data.copy_(w.to(self.weight.dtype))
        self.fused = True

    def forward(self, x: torch.Tensor, gain: torch.Tensor | float = 1.0) -> torch.Tensor:
        if not self.fused:
            raise RuntimeError("MPConv1D weights are raw: fuse the weight normalisation "
                               "(MMAudioVAE.fuse_weight_norm()) or load already-fused weights before running")
        w = self.weight * gain
        return F.conv1d(x, w, padding=w.shape[-1] // 2)


class ResnetBlock1D(nn.Module):
    """Pixel norm -> (mp_silu, conv) x 2, shortcut on the normalised input, mp_sum(x, h, 0.3)."""

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv1 = MPConv1D(in_dim, out_dim, kernel_size)
        self.conv2 = MPConv1D(out_dim, out_dim, kernel_size)
        self.nin_shortcut = MPConv1D(in_dim, out_dim, kernel_size=1) if in_dim != out_dim else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize(x, dim=1)  # pixel norm over channels, [B, C, T]
        h = self.conv2(mp_silu(self.conv1(mp_silu(x))))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return mp_sum(x, h, t=MP_SUM_T)


class AttnBlock1D(nn.Module):
    """Self-attention over time with cosine-normalised q/k/v.

    The qkv projection's output channels are interleaved per head: channel (c * 3 + j) is
    q (j = 0), k (j = 1) or v (j = 2) of channel c.
    """

    def __init__(self, channels: int, num_heads: int = 1) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = MPConv1D(channels, channels * 3, kernel_size=1)
        self.proj_out = MPConv1D(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        y = self.qkv(x).reshape(b, self.num_heads, c // self.num_heads, 3, t)  # [B, H, C/H, 3, T]
        q, k, v = normalize(y, dim=2).unbind(3)  # each [B, H, C/H, T]
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2),
                                           v.transpose(-1, -2))  # [B, H, T, C/H]
        h = h.permute(0, 1, 3, 2).reshape(b, c, t)  # [B, C, T]
        return mp_sum(x, self.proj_out(h), t=MP_SUM_T)


class Downsample1D(nn.Module):
    """1x1 conv -> average pool (2, 2) -> 1x1 conv; an odd length loses its last frame."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = MPConv1D(channels, channels, kernel_size=1)
        self.conv2 = MPConv1D(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.avg_pool1d(self.conv1(x), kernel_size=2, stride=2))


class Upsample1D(nn.Module):
    """Repeat every frame twice (nearest-exact x2) -> k3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = MPConv1D(channels, channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest-exact"))
