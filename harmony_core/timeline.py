"""The one place that converts between timelines.

Pixel frames <-> video latent frames (Wan2.2 causal VAE), audio samples <-> audio latents, and the
latent-to-latent alignment the local interaction (GLDI) uses. Every other module asks this one.

Conventions
- Wan2.2's causal VAE maps F pixel frames (F = 4k + 1) to (F - 1) / 4 + 1 latent frames: latent 0 is
  pixel frame 0 alone, latent i >= 1 is pixel frames 4i-3 .. 4i.
- On the latent-to-latent level the model only knows Tv video latent frames and Ta audio latents that
  cover the same duration. Audio latent j is placed at the virtual video position j * Tv / Ta
  (the paper's RoPE alignment, arXiv 2511.21579 §3.3.1); video frame i spans [i, i + 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

VIDEO_TEMPORAL_STRIDE = 4  # Wan2.2 VAE: 4 pixel frames per latent frame (after the first)


def latent_frames_for(num_frames: int, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """Pixel frames -> latent frames of a causal VAE. `num_frames` must be stride*k + 1."""
    if num_frames < 1 or (num_frames - 1) % temporal_stride:
        raise ValueError(
            f"{num_frames} frames is not accepted: the causal video VAE needs {temporal_stride}*k + 1 frames "
            f"(e.g. {temporal_stride * max(1, (num_frames - 1) // temporal_stride) + 1})."
        )
    return (num_frames - 1) // temporal_stride + 1


def pixel_frames_for(latent_frames: int, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """Latent frames -> pixel frames of a causal VAE (inverse of `latent_frames_for`)."""
    if latent_frames < 1:
        raise ValueError(f"latent_frames must be >= 1, got {latent_frames}")
    return (latent_frames - 1) * temporal_stride + 1


# ----------------------------------------------------------------------------------------------
# Latent-to-latent alignment for the local (frame-wise) interaction
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Windows:
    """Ragged index windows padded to a common width.

    index: [G, W] long, entries of padded slots repeat a valid index (safe to gather)
    valid: [G, W] bool, False on padded slots
    """

    index: torch.Tensor
    valid: torch.Tensor

    @property
    def width(self) -> int:
        return int(self.index.shape[1])


def _pad_ranges(ranges: list[tuple[int, int]]) -> Windows:
    """[(lo, hi)) ranges -> padded Windows. Empty ranges get one invalid slot pointing at 0."""
    width = max(1, max(hi - lo for lo, hi in ranges))
    index = torch.zeros(len(ranges), width, dtype=torch.long)
    valid = torch.zeros(len(ranges), width, dtype=torch.bool)
    for g, (lo, hi) in enumerate(ranges):
        n = hi - lo
        if n > 0:
            index[g, :n] = torch.arange(lo, hi)
            index[g, n:] = hi - 1
            valid[g, :n] = True
    return Windows(index, valid)


def a2v_windows(tv: int, ta: int, margin: float) -> Windows:
    """For each video latent frame i, the audio latents whose span overlaps [i - margin, i + 1 + margin).

    Audio latent j spans [j, j + 1) * Tv / Ta on the video timeline. Returns Windows with G = Tv.
    """
    m = Fraction(margin).limit_denominator(1000)
    ranges = []
    for i in range(tv):
        lo = math.floor((i - m) * ta / tv)
        hi = math.ceil((i + 1 + m) * ta / tv)
        ranges.append((max(lo, 0), min(hi, ta)))
    return _pad_ranges(ranges)


def audio_frame_of(tv: int, ta: int) -> torch.Tensor:
    """[Ta] long: the video latent frame containing the centre of each audio latent."""
    centre = (torch.arange(ta, dtype=torch.float64) + 0.5) * tv / ta
    return centre.floor().long().clamp_(0, tv - 1)


def v2a_groups(tv: int, ta: int, margin: int) -> tuple[Windows, Windows]:
    """V2A alignment grouped by video frame (so keys are shared, never copied per audio latent).

    Returns (queries, key_frames), both with G = Tv:
    - queries: the audio latents whose centre lies in video frame i (contiguous, ragged)
    - key_frames: video frames i - margin .. i + margin, clipped to [0, Tv)
    """
    owner = audio_frame_of(tv, ta)
    ranges = []
    for i in range(tv):
        hits = (owner == i).nonzero().flatten()
        ranges.append((int(hits[0]), int(hits[-1]) + 1) if len(hits) else (0, 0))
    frames = [(max(i - margin, 0), min(i + margin + 1, tv)) for i in range(tv)]
    return _pad_ranges(ranges), _pad_ranges(frames)


def audio_positions(ta: int, tv: int, rescale: bool = True) -> torch.Tensor:
    """[Ta] float64 positions of audio latents on the video timeline (j * Tv / Ta), or raw j."""
    j = torch.arange(ta, dtype=torch.float64)
    return j * tv / ta if rescale else j


def video_positions(tv: int, ta: int, rescale: bool = True) -> torch.Tensor:
    """[Tv] float64 positions of video latent frames on the audio timeline (i * Ta / Tv), or raw i."""
    i = torch.arange(tv, dtype=torch.float64)
    return i * ta / tv if rescale else i
