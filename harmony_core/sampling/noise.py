"""Starting noise of the video latents: i.i.d., or with a share of its variance common to all latent frames.

Mixed noise (PYoCo, arXiv 2305.10474 §3.2): eps_f = sqrt(1 - share) * ind_f + sqrt(share) * common, so every
element keeps unit variance while frames f, f' correlate by `share`. A model trained and sampled this way
denoises frame-to-frame differences from noise of variance 2 (1 - share) instead of 2: what it cannot
remove stays common to the frames (a still offset) instead of differing per frame (flicker). An option of the
model config (`HarmonyConfig.frame_noise_share`, default 0 = i.i.d., as Wan and UniAVGen were trained); tried
on the demo model and not used there (no measurable gain, docs/demo_model.md).
"""
from __future__ import annotations

import math

import torch


def mix_frame_noise(independent: torch.Tensor, common: torch.Tensor, share: float) -> torch.Tensor:
    """independent [B, C, T, h, w] and common [B, C, 1, h, w] (both i.i.d. N(0, 1)) -> mixed noise, same
    shape as `independent`, unit variance per element, correlation `share` between frames."""
    if not 0.0 <= share < 1.0:
        raise ValueError(f"frame noise share must lie in [0, 1), got {share}")
    return math.sqrt(1.0 - share) * independent + math.sqrt(share) * common.to(independent)


def with_frame_common(independent: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """`independent` [B, C, T, h, w] mixed with a common part [B, C, 1, h, w] drawn from `generator` (on the
    CPU); a share of 0 returns it unchanged and draws nothing, so the generator's later draws stay as they were."""
    if not share:
        return independent
    b, c, _, h, w = independent.shape
    return mix_frame_noise(independent, torch.randn((b, c, 1, h, w), generator=generator), share)
