"""Sounds of the synthetic scenes: impact sounds whose pitch/timbre follow the object, and a voiced buzz.

Everything is vectorised over samples (torch, float32). Random draws come from the caller's numpy Generator,
so a clip is a pure function of its seed. Times are seconds on the clip's timeline; sample n sits at
n / sample_rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NOISE_FLOOR = 0.003  # white background noise (about -50 dB), so silence is never digitally exact
PEAK_LEVEL = 0.8     # every clip is normalised to this peak


@dataclass(frozen=True)
class Timbre:
    """How an object shape sounds: partial frequency ratios and gains, decay time, strike-noise mix."""

    ratios: tuple[float, ...]
    gains: tuple[float, ...]
    decay_s: float
    noise: float
    pitch_scale: float
    words: str


# Pitch follows colour, timbre follows shape (our vocabulary; the paper has no synthetic data).
COLOUR_PITCH_HZ = {"blue": 196.0, "red": 330.0, "green": 660.0, "yellow": 1320.0}
COLOUR_PITCH_WORD = {"blue": "low", "red": "mid-pitched", "green": "high", "yellow": "very high"}
SHAPE_TIMBRE = {
    "circle": Timbre((1.0, 2.0), (1.0, 0.3), 0.16, 0.15, 1.0, "ringing ping"),
    "square": Timbre((1.0, 1.5, 2.3), (1.0, 0.5, 0.3), 0.07, 0.6, 0.5, "dull knock"),
    "triangle": Timbre((1.0, 2.76, 5.40, 8.93), (1.0, 0.6, 0.4, 0.25), 0.22, 0.2, 1.0,
                       "bright metallic clink"),
}

# Vowel formants F1/F2 in Hz (textbook averages), used to colour the voiced buzz per syllable.
VOWEL_FORMANTS = {"a": (730.0, 1090.0), "e": (530.0, 1840.0), "i": (270.0, 2290.0),
                  "o": (570.0, 840.0), "u": (300.0, 870.0)}
FORMANT_WIDTH_HZ = 160.0
VOICE_MAX_HZ = 4000.0


@dataclass(frozen=True)
class Syllable:
    """One syllable of the speaker scene: onset (s), attack/hold/release (s), peak amplitude, vowel."""

    onset: float
    attack: float
    hold: float
    release: float
    peak: float
    vowel: str


def _time_axis(length: int, sample_rate: int) -> torch.Tensor:
    return torch.arange(length, dtype=torch.float32) / sample_rate  # [L]


def finish_wave(wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Add the noise floor and normalise to PEAK_LEVEL. [L] -> [L] in [-1, 1]."""
    noise = torch.from_numpy(rng.standard_normal(wave.shape[0]).astype(np.float32))
    wave = wave / wave.abs().max().clamp_min(1e-6) * PEAK_LEVEL + NOISE_FLOOR * noise
    return wave.clamp(-1.0, 1.0)


def impact_sound(times: list[float], colour: str, shape: str, gains: list[float], sample_rate: int,
                 length: int, rng: np.random.Generator) -> torch.Tensor:
    """Sum of struck-object sounds starting exactly at `times` (s). Returns [L] (not normalised).

    Each strike: partials at pitch(colour) * ratios(shape) with an exponential decay (higher partials die
    faster), plus a 4 ms broadband click so the onset is sharp across the spectrum.
    """
    timbre = SHAPE_TIMBRE[shape]
    freqs = COLOUR_PITCH_HZ[colour] * timbre.pitch_scale * torch.tensor(timbre.ratios)[:, None]  # [P, 1]
    weights = torch.tensor(timbre.gains)[:, None]
    decay = timbre.decay_s / torch.tensor(timbre.ratios).sqrt()[:, None]
    ring = int(6 * timbre.decay_s * sample_rate)
    rel = torch.arange(ring, dtype=torch.float32) / sample_rate  # [n] time since the strike
    strike = (weights * torch.sin(2 * math.pi * freqs * rel) * torch.exp(-rel / decay)).sum(0)  # [n]
    n_click = int(0.04 * sample_rate)
    out = torch.zeros(length)
    for t_e, gain in zip(times, gains):
        start = round(t_e * sample_rate)
        n = min(ring, length - start)
        if n <= 0:
            continue
        noise = torch.from_numpy(rng.standard_normal(n_click).astype(np.float32))
        click = noise * torch.exp(-rel[:n_click] / 0.004)  # [n_click]
        out[start:start + n] += gain * strike[:n]
        m = min(n_click, n)
        out[start:start + m] += gain * timbre.noise * click[:m]
    return out


def syllable_envelope(syllables: list[Syllable], times: torch.Tensor) -> torch.Tensor:
    """Amplitude envelope of each syllable at `times` (s): linear attack, hold, slower linear release.

    times [N] -> [S, N]; the clip's envelope is the max over syllables.
    """
    onset = torch.tensor([s.onset for s in syllables])[:, None]  # [S, 1]
    attack = torch.tensor([s.attack for s in syllables])[:, None]
    hold = torch.tensor([s.hold for s in syllables])[:, None]
    release = torch.tensor([s.release for s in syllables])[:, None]
    peak = torch.tensor([s.peak for s in syllables])[:, None]
    rel = times[None, :] - onset  # [S, N]
    rise = (rel / attack).clamp(0.0, 1.0)
    fall = ((rel - attack - hold) / release).clamp(0.0, 1.0)
    return peak * rise * (1.0 - fall)


def _formant_gains(pitch: torch.Tensor, formants: torch.Tensor, n_harm: int,
                   strength: float = 1.0) -> torch.Tensor:
    """Per-harmonic gains [H, N] for pitch [N] and formants [N, 2]: source tilt 1/h plus formant peaks
    (scaled by `strength`; 0 leaves the tilt alone)."""
    h = torch.arange(1, n_harm + 1, dtype=torch.float32)[:, None]  # [H, 1]
    freq = h * pitch[None, :]  # [H, N]
    resonance = sum(torch.exp(-0.5 * ((freq - formants[None, :, k]) / FORMANT_WIDTH_HZ) ** 2)
                    for k in range(2))
    return (0.15 + strength * resonance) / h


def voice_sound(syllables: list[Syllable], f0: float, sample_rate: int, length: int,
                rng: np.random.Generator, plain: bool = False) -> torch.Tensor:
    """Harmonic buzz at pitch ~f0 filtered by per-syllable vowel formants, amplitude = the syllable envelope.

    Returns the wave [L] (not normalised). Gains are computed at a 2 ms control rate. Each syllable starts
    with a short consonant noise burst so its onset is sharp. `plain`: no formants (a 1/h sawtooth-like
    tilt) and no bursts, so only the buzz's own attack marks a syllable.
    """
    t = _time_axis(length, sample_rate)
    env, owner = syllable_envelope(syllables, t).max(0)  # [L], [L] the syllable that dominates each sample
    drift = 1.0 + 0.05 * torch.sin(2 * math.pi * 0.7 * t + float(rng.uniform(0, 2 * math.pi)))
    pitch = f0 * drift  # [L] slow intonation
    cycles = torch.remainder(torch.cumsum(pitch.double(), 0) / sample_rate, 1.0)  # [L] phase in cycles
    n_harm = int(min(VOICE_MAX_HZ, 0.45 * sample_rate) // (f0 * 1.06))
    hop = max(1, sample_rate // 500)
    formants = torch.tensor([VOWEL_FORMANTS[s.vowel] for s in syllables])[owner[::hop]]  # [N, 2]
    gains = _formant_gains(pitch[::hop], formants, n_harm, 0.0 if plain else 1.0)
    gains = gains.repeat_interleave(hop, dim=1)[:, :length]  # [H, L]
    rotor = torch.polar(torch.ones(length, dtype=torch.float64), 2 * math.pi * cycles).to(torch.complex64)
    harmonic, buzz = rotor, torch.zeros(length)
    for k in range(n_harm):  # harmonic k + 1 = rotor ** (k + 1) by repeated multiplication (no sin)
        buzz += gains[k] * harmonic.imag
        harmonic = harmonic * rotor
    wave = env * buzz
    n_burst = int(0.05 * sample_rate)
    decay = torch.exp(-torch.arange(n_burst, dtype=torch.float32) / (0.012 * sample_rate))  # [n]
    level = buzz.abs().max() * 0.6
    for s in [] if plain else syllables:
        start = round(s.onset * sample_rate)
        n = min(n_burst, length - start)
        if n > 0:
            noise = torch.from_numpy(rng.standard_normal(n).astype(np.float32))
            wave[start:start + n] += level * s.peak * decay[:n] * noise
    return wave
