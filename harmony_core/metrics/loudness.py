"""Loudness of a wave: RMS, peak, clipped fraction (to report beside sync figures), and peak normalisation.

The sync signals are made loudness-invariant by peak-normalising the (fitted) wave before any level-dependent
step, so a clip's figures do not change when its audio is multiplied by a gain. A wave whose peak is at most
SILENCE_PEAK counts as silence (a zero wave, not a quiet sound amplified to full scale).
"""
from __future__ import annotations

import numpy as np
import torch

# -200 dBFS: below one step of any integer sample format (32-bit: 2^-31, about -187 dBFS); only digital
# silence and float residue are this quiet
SILENCE_PEAK = 1e-10


def _samples(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """All samples of a [L] or [C, L] wave as float64 [N]; empty waves are an error."""
    x = torch.as_tensor(wave).double().flatten()
    if x.numel() == 0:
        raise ValueError("the wave is empty: pass audio with at least one sample")
    return x


def rms(wave: torch.Tensor | np.ndarray) -> float:
    """Root mean square over all samples (and channels) of a [L] or [C, L] wave; full scale is 1."""
    return float(_samples(wave).square().mean().sqrt())


def peak(wave: torch.Tensor | np.ndarray) -> float:
    """Largest absolute sample of a [L] or [C, L] wave; above 1 exceeds full scale."""
    return float(_samples(wave).abs().max())


def clipped_fraction(wave: torch.Tensor | np.ndarray, threshold: float = 0.999) -> float:
    """Fraction of samples (all channels) with |sample| >= threshold: clipped, or about to be once written."""
    if threshold <= 0:
        raise ValueError(f"threshold must be > 0 (a fraction of full scale), got {threshold}")
    x = _samples(wave)
    return float((x.abs() >= threshold).double().mean())


def normalise_peak(wave: torch.Tensor) -> torch.Tensor:
    """float32 [L] scaled so its peak is 1 (divided in float64); zeros when the peak is <= SILENCE_PEAK."""
    top = float(wave.abs().max()) if wave.numel() else 0.0
    if top <= SILENCE_PEAK:
        return torch.zeros_like(wave, dtype=torch.float32)
    return (wave.double() / top).float()
