"""Starting noise of the video latents: i.i.d., or with a share of its variance common to all latent frames.

Mixed noise (PYoCo, arXiv 2305.10474 §3.2): eps_f = sqrt(1 - share) * ind_f + sqrt(share) * common, so every
element keeps unit variance while frames f, f' correlate by `share`. A model trained and sampled this way
denoises frame-to-frame differences from noise of variance 2 (1 - share) instead of 2: what it cannot
remove stays common to the frames (a still offset) instead of differing per frame (flicker). The demo model
uses it (`HarmonyConfig.frame_noise_share`); Wan and UniAVGen checkpoints were trained on i.i.d. noise (0).
"""
from __future__ import annotations

import math

import torch


def mix_frame_noise(independent: torch.Tensor, common: torch.Tensor, share: float) -> torch.Tensor:
    """independent [B, C, T, h, w] and common [B, C, 1, h, w] (both i.i.d. N(0, 1)) -> mixed noise, same
    shape as `independent`, unit variance per element, correlation `share` between frames."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"frame noise share must lie in [0, 1), got {share}")
    if share == 0.0:
        return independent
    return math.sqrt(1.0 - share) * independent + math.sqrt(share) * common.to(independent)


def common_shape(video_shape: tuple[int, ...]) -> tuple[int, ...]:
    """[B, C, T, h, w] -> [B, C, 1, h, w]: the shape of the noise shared by all latent frames."""
    b, c, _, h, w = video_shape
    return (b, c, 1, h, w)
