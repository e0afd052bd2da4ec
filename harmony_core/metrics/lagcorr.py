"""Lag correlation of a visual and an audio per-frame signal (a SyncNet-like offset sweep, without a network).

For lag l the Pearson correlation of visual[t] with audio[t + l] over the frames both cover; positive l means
the sound comes l frames after the picture. At lag 0, motion[k] (the change from frame k - 1 to frame k) pairs
with the onset strength of the sound in ((k - 1) / fps, k / fps] (events.py). Value 0 of each per-frame signal (constant by construction, see
events.py) is left out: a shared constant frame would inflate the correlation of unrelated signals.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from .events import as_frames, audio_envelope, motion_energy, onset_strength

DEFAULT_MAX_LAG = 8  # frames (0.32 s at 25 fps)


@dataclass(frozen=True)
class LagCorrelation:
    """Correlation per lag and the figures read from it.

    lag0: correlation at lag 0; best_lag: the lag of the highest correlation (ties: the most negative lag,
    so flat signals never claim lag 0); confidence: peak minus median over lags (reported, not a target:
    unrelated pairs already score well above 0 on it); within_one: the best correlation within +-1 frame.
    """

    lags: tuple[int, ...]
    corr: tuple[float, ...]
    lag0: float
    best_lag: int
    best_is_zero: bool
    confidence: float

    @property
    def within_one(self) -> float:
        """The highest correlation at lags -1, 0, 1 (those searched): forgives a one-frame slip."""
        centre = self.lags.index(0)
        return max(self.corr[max(0, centre - 1):centre + 2])


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two equal-length 1-D signals; 0 when either is constant (no evidence).

    "Constant" is relative (centred norm <= 1e-9 x the signal's norm, or zero), so the result does not depend
    on either signal's scale.
    """
    ca, cb = a - a.mean(), b - b.mean()
    na, nb = float(ca.norm()), float(cb.norm())
    if na <= 1e-9 * float(a.norm()) or nb <= 1e-9 * float(b.norm()):
        return 0.0
    return float((ca * cb).sum()) / (na * nb)


def lag_correlation(visual: torch.Tensor, audio: torch.Tensor, max_lag: int = DEFAULT_MAX_LAG,
                    skip: int = 1) -> LagCorrelation:
    """Normalised cross-correlation of two per-frame signals [F] over lags -max_lag..max_lag.

    The first `skip` values of both signals are left out; each lag uses the frames both signals cover.
    """
    v, a = visual.double().flatten()[skip:], audio.double().flatten()[skip:]
    if v.shape != a.shape:
        raise ValueError(f"visual and audio signals must have the same length, got {v.shape[0]} and "
                         f"{a.shape[0]}")
    if not 0 <= max_lag <= v.shape[0] - 3:
        raise ValueError(f"max_lag must be 0..{v.shape[0] - 3} for {v.shape[0] + skip} frames, got {max_lag}")
    n = v.shape[0]
    lags = tuple(range(-max_lag, max_lag + 1))
    corr = tuple(_pearson(v[max(0, -lag):n - max(0, lag)], a[max(0, lag):n - max(0, -lag)]) for lag in lags)
    best = int(np.argmax(corr))
    return LagCorrelation(lags, corr, corr[max_lag], lags[best], lags[best] == 0,
                          float(max(corr) - np.median(corr)))


def sync_signals(frames: torch.Tensor | np.ndarray, fps: Fraction | float, wave: torch.Tensor | np.ndarray,
                 sample_rate: int, mouth: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(visual [F], audio [F]) signals to correlate.

    Default: motion energy with onset strength (two rates of change). With a mouth opening [F] (a level) the
    audio side is the RMS envelope (a level) instead: a level against a rate peaks off lag 0 by construction.
    """
    num_frames = as_frames(frames).shape[0]
    if mouth is None:
        return motion_energy(frames), onset_strength(wave, sample_rate, fps, num_frames)
    mouth = torch.as_tensor(mouth).float().flatten()
    if mouth.shape[0] != num_frames:
        raise ValueError(f"mouth opening must have one value per frame ({num_frames}), got {mouth.shape[0]}")
    return mouth, audio_envelope(wave, sample_rate, fps, num_frames)


def clip_lag_correlation(frames: torch.Tensor | np.ndarray, fps: Fraction | float,
                         wave: torch.Tensor | np.ndarray, sample_rate: int, max_lag: int = DEFAULT_MAX_LAG,
                         mouth: torch.Tensor | None = None) -> LagCorrelation:
    """Lag correlation of one clip (see sync_signals for which signals are compared)."""
    visual, audio = sync_signals(frames, fps, wave, sample_rate, mouth)
    return lag_correlation(visual, audio, max_lag)
