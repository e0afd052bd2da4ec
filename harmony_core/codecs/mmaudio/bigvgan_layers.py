"""BigVGAN building blocks: Snake / SnakeBeta, anti-aliased Activation1d, AMP residual blocks.

Reference: hkchengrex/MMAudio `mmaudio/ext/bigvgan/{models.py,activations.py,alias_free_torch/*}` (BigVGAN
v1) and NVIDIA/BigVGAN `bigvgan.py`, `alias_free_activation/torch/*` (v2: identical blocks). Module and
parameter names follow the reference so that its state dicts load unchanged. Convolutions are plain
(weight norm is fused when loading, see `bigvgan.fuse_weight_norm_keys`).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

SNAKE_EPS = 1e-9
AA_RATIO = 2          # anti-aliased activation: up x2, activation, down x2
AA_KERNEL_SIZE = 12   # kaiser-sinc filter taps


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass filter normalised to unit sum, [1, 1, kernel_size] float32 on the CPU.

    Same construction as alias-free-torch / julius (`kaiser_sinc_filter1d` in the reference). Computed
    once per argument set (also under a meta-device context) and returned as a fresh copy.
    """
    return _kaiser_sinc_cpu(cutoff, half_width, kernel_size).clone()


@functools.lru_cache(maxsize=None)
def _kaiser_sinc_cpu(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    half_size = kernel_size // 2
    atten = 2.285 * (half_size - 1) * math.pi * (4 * half_width) + 7.95
    if atten > 50.0:
        beta = 0.1102 * (atten - 8.7)
    elif atten >= 21.0:
        beta = 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21.0)
    else:
        beta = 0.0
    cpu = torch.device("cpu")
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False, device=cpu)
    if kernel_size % 2 == 0:
        time = torch.arange(-half_size, half_size, device=cpu) + 0.5
    else:
        time = torch.arange(kernel_size, device=cpu) - half_size
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (filt / filt.sum()).view(1, 1, kernel_size)


class Snake(nn.Module):
    """x + 1 / alpha * sin(alpha x)^2, alpha per channel (stored as log alpha when `logscale`)."""

    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]  # [1, C, 1]
        if self.logscale:
            alpha = torch.exp(alpha)
        return x + (1.0 / (alpha + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class SnakeBeta(nn.Module):
    """x + 1 / beta * sin(alpha x)^2, alpha (frequency) and beta (magnitude) per channel."""

    def __init__(self, channels: int, logscale: bool = True) -> None:
        super().__init__()
        self.logscale = logscale
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.alpha = nn.Parameter(init.clone())
        self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha, beta = self.alpha[None, :, None], self.beta[None, :, None]  # [1, C, 1]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + (1.0 / (beta + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class UpSample1d(nn.Module):
    """x2 upsampling: replicate pad, ratio * depthwise transposed conv with the low-pass, crop."""

    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL_SIZE) -> None:
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(c, -1, -1), stride=self.ratio, groups=c)
        return x[..., self.crop_left:-self.crop_right]  # [B, C, ratio * T]


class LowPassFilter1d(nn.Module):
    """Replicate-padded depthwise low-pass conv with stride (the reference's `downsample.lowpass`)."""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int) -> None:
        super().__init__()
        even = kernel_size % 2 == 0
        self.pad_left, self.pad_right = kernel_size // 2 - int(even), kernel_size // 2
        self.stride = stride
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(c, -1, -1), stride=self.stride, groups=c)


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = AA_RATIO, kernel_size: int = AA_KERNEL_SIZE) -> None:
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Activation1d(nn.Module):
    """Anti-aliased periodic activation: upsample x2 -> `act` -> downsample x2 (length preserved)."""

    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.act = act
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def make_activation(kind: str, channels: int, logscale: bool) -> Activation1d:
    """Anti-aliased 'snake' or 'snakebeta' activation over `channels`."""
    if kind == "snakebeta":
        return Activation1d(SnakeBeta(channels, logscale))
    if kind == "snake":
        return Activation1d(Snake(channels, logscale))
    raise ValueError(f"unknown BigVGAN activation {kind!r}; accepted: 'snake', 'snakebeta'")


def _conv(channels: int, kernel_size: int, dilation: int) -> nn.Conv1d:
    return nn.Conv1d(channels, channels, kernel_size, 1, dilation=dilation,
                     padding=(kernel_size * dilation - dilation) // 2)


class AMPBlock1(nn.Module):
    """Per dilation d: x += conv2(act(conv1_d(act(x)))) (conv2 has dilation 1). Reference AMPBlock1."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], activation: str,
                 logscale: bool) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilations)
        self.convs2 = nn.ModuleList(_conv(channels, kernel_size, 1) for _ in dilations)
        self.activations = nn.ModuleList(make_activation(activation, channels, logscale)
                                         for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts1, acts2 = self.activations[::2], self.activations[1::2]
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts1, acts2):
            x = x + c2(a2(c1(a1(x))))
        return x


class AMPBlock2(nn.Module):
    """Per dilation d: x += conv_d(act(x)). Reference AMPBlock2."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], activation: str,
                 logscale: bool) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv(channels, kernel_size, d) for d in dilations)
        self.activations = nn.ModuleList(make_activation(activation, channels, logscale) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, act in zip(self.convs, self.activations):
            x = x + conv(act(x))
        return x
