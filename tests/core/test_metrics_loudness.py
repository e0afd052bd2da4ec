"""Loudness helpers, and loudness invariance of the sync figures: a gain on the audio changes nothing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harmony_core.metrics import (SILENCE_PEAK, AVPair, SyncConfig, audio_envelope, clipped_fraction,
                                  evaluate_clips, lag_correlation, normalise_peak, onset_strength, peak, rms,
                                  score_clip)
from harmony_core.train.synthetic import SceneSpec, clip_seed, make_clip

U = 2.0 ** -24  # float32 unit roundoff
# Onset strength is a mean of differences of float32 dB values (|dB| <= 200 after the floors, so one value's
# spacing is 200 * 2 * U ~ 2.4e-5 dB at worst, 2^-17 ~ 7.6e-6 dB near 100 dB). A scaled copy differs from the
# original by one float32 rounding per sample (and one in the normalisation), which moves a dB value by a few
# spacings; every later step (max with a floor, quantile, relu, means) is 1-Lipschitz in the max norm. Allow 16
# spacings of 100 dB: 2^-13 dB. (Measured: <= 5e-6 dB; the old absolute floor gave 4e-3 .. 2.6 dB at GUARD_GAIN.)
TOL_DB = 2.0 ** -13
GAINS = (1e-3, 0.05, 1.0, 8.0)  # on waves of peak 0.1: peaks 1e-4 .. 0.8, never clipped
GUARD_GAIN = 1e-8  # peak 1e-9 (-180 dBFS): here the old absolute log floor (1e-10) changed the flux
KINDS = ("impact", "speaker", "drum", "flash")


def at_peak(wave: torch.Tensor, level: float = 0.1) -> torch.Tensor:
    return wave * (level / float(wave.abs().max()))


@pytest.fixture(scope="module")
def clips() -> list:
    return [make_clip(clip_seed(41, i), SceneSpec(kind=KINDS[i % len(KINDS)])) for i in range(8)]


def pearson_tolerance(audio_signal: torch.Tensor, max_lag: int, sup_error: float) -> float:
    """Largest change of any lag's Pearson correlation when the audio signal moves by <= sup_error per frame.

    For centred a and a perturbation d, |r(v, a + d) - r(v, a)| <= 2 |d| / |a| (|.| Euclidean): |d| is at most
    sqrt(n) * sup_error over the n frames a lag covers, |a| its centred norm there (the smallest over lags).
    """
    a = audio_signal.double()[1:]
    n = a.shape[0]
    norms = [float((w - w.mean()).norm()) for w in (a[max(0, lag):n + min(0, lag)]
                                                     for lag in range(-max_lag, max_lag + 1))]
    return 2.0 * math.sqrt(n) * sup_error / min(norms)


# ------------------------------------------------------------------------------------------------
# rms, peak, clipped_fraction, normalise_peak
# ------------------------------------------------------------------------------------------------
def test_loudness_helpers_by_hand() -> None:
    wave = torch.tensor([0.5, -1.0, 0.0, 0.25])
    assert rms(wave) == pytest.approx(math.sqrt((0.25 + 1.0 + 0.0625) / 4), rel=1e-12)
    assert peak(wave) == 1.0 and peak(-wave) == 1.0
    assert clipped_fraction(wave) == 0.25 and clipped_fraction(wave, threshold=0.25) == 0.75
    stereo = np.stack([wave.numpy(), np.zeros(4, dtype=np.float32)])  # [C, L]: all channels count
    assert rms(stereo) == pytest.approx(rms(wave) / math.sqrt(2), rel=1e-12)
    assert peak(stereo) == 1.0 and clipped_fraction(stereo) == 0.125
    assert rms(torch.zeros(5)) == peak(torch.zeros(5)) == clipped_fraction(torch.zeros(5)) == 0.0
    with pytest.raises(ValueError, match="empty"):
        rms(torch.zeros(0))
    with pytest.raises(ValueError, match="threshold must be > 0"):
        clipped_fraction(wave, threshold=0.0)


def test_normalise_peak_and_silence() -> None:
    wave = torch.tensor([0.002, -0.004, 0.001])
    assert normalise_peak(wave).tolist() == pytest.approx([0.5, -1.0, 0.25], abs=U)
    assert normalise_peak(wave).dtype == torch.float32
    assert torch.equal(normalise_peak(torch.full((3,), SILENCE_PEAK / 2)), torch.zeros(3))
    assert float(normalise_peak(torch.full((3,), 2 * SILENCE_PEAK)).max()) == 1.0


# ------------------------------------------------------------------------------------------------
# invariance
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gain", [*GAINS, GUARD_GAIN])
def test_onset_strength_and_envelope_do_not_change_with_gain(clips: list, gain: float) -> None:
    """Also with audio shorter than the video (padded with exact zeros), where the old absolute floor bit first."""
    for clip in clips[:4]:
        f = clip.frames.shape[0]
        for wave in (at_peak(clip.wave), at_peak(clip.wave)[: clip.wave.shape[0] * 2 // 3]):
            ref = onset_strength(wave, clip.sample_rate, clip.fps, f)
            scaled = onset_strength(wave * gain, clip.sample_rate, clip.fps, f)
            assert float((scaled - ref).abs().max()) <= TOL_DB, (clip.seed, gain)
            env, env_scaled = (audio_envelope(w, clip.sample_rate, clip.fps, f) for w in (wave, wave * gain))
            # roundings of g * x, of x / peak, of the float32 result: 3 * U relative, doubled for the sums
            assert torch.allclose(env_scaled, env, rtol=6 * U, atol=6 * U * float(env.max()))


def _scaled(clips: list, gains: tuple[float, ...]) -> list[AVPair]:
    return [AVPair(c.frames, c.fps, at_peak(c.wave) * gains[i % len(gains)], c.sample_rate, kind=c.kind,
                   mouth=c.mouth) for i, c in enumerate(clips)]


@pytest.mark.parametrize("use_mouth", [False, True])
def test_report_figures_do_not_change_with_gain(clips: list, use_mouth: bool) -> None:
    """Every clip at a different gain (and the shuffled pairs mixing gains) gives the report of the clips
    at one level: correlations within the Pearson bound of TOL_DB, counts, lags and hit rates exactly."""
    config = SyncConfig(bootstrap=50, use_mouth=use_mouth)
    ref = evaluate_clips(_scaled(clips, (1.0,)), config)
    tol = 0.0
    for c in clips:
        f, wave = c.frames.shape[0], at_peak(c.wave)
        tol = max(tol, pearson_tolerance(onset_strength(wave, c.sample_rate, c.fps, f), config.max_lag, TOL_DB))
        env = audio_envelope(wave, c.sample_rate, c.fps, f)
        tol = max(tol, pearson_tolerance(env, config.max_lag, 6 * U * float(env.max())))
    assert tol < 5e-3  # tight enough to mean something (a few units of the tables' third decimal)
    for gains in (GAINS, GAINS[::-1], (GUARD_GAIN, 1.0)):
        report = evaluate_clips(_scaled(clips, gains), config)
        for got, want in zip(report.rows + report.shuffled, ref.rows + ref.shuffled):
            for name in ("lag0", "within_one"):
                assert abs(getattr(got, name) - getattr(want, name)) <= tol, (name, got, want)
            assert abs(got.confidence - want.confidence) <= 2 * tol  # a max minus a median of correlations
            for name in ("best_lag", "best_is_zero", "n_visual", "n_audio", "hit_rate", "mean_abs_offset"):
                a, b = getattr(got, name), getattr(want, name)
                assert a == b or (a != a and b != b), (name, got, want)  # NaN == NaN here


def test_take_score_does_not_change_with_gain(clips: list) -> None:
    """score_clip (the takes ranking) reads the same sweep: a max of weighted correlations moves <= tol."""
    for clip in clips[:4]:
        wave = at_peak(clip.wave)
        onset = onset_strength(wave, clip.sample_rate, clip.fps, clip.frames.shape[0])
        tol = pearson_tolerance(onset, 8, TOL_DB)
        ref = score_clip(clip.frames, clip.fps, wave, clip.sample_rate)
        for gain in (*GAINS, GUARD_GAIN):
            got = score_clip(clip.frames, clip.fps, wave * gain, clip.sample_rate)
            assert got.best_lag_frames == ref.best_lag_frames and got.verdict() == ref.verdict()
            for name in ("score", "lag0", "best_within_one"):
                assert abs(getattr(got, name) - getattr(ref, name)) <= tol, (name, gain, got, ref)


def test_silence_gives_zero_signals_and_no_correlation(clips: list) -> None:
    clip = clips[0]
    f = clip.frames.shape[0]
    for wave in (torch.zeros_like(clip.wave), torch.full_like(clip.wave, SILENCE_PEAK / 2)):
        assert torch.equal(onset_strength(wave, clip.sample_rate, clip.fps, f), torch.zeros(f))
        assert torch.equal(audio_envelope(wave, clip.sample_rate, clip.fps, f), torch.zeros(f))
    row = evaluate_clips([AVPair(clip.frames, clip.fps, torch.zeros_like(clip.wave), clip.sample_rate)]).rows[0]
    assert row.lag0 == row.within_one == 0.0 and row.n_audio == 0 and row.hit_rate == 0.0


def test_correlation_does_not_depend_on_the_scale_of_a_signal() -> None:
    """The old `norm * norm > 1e-12` test called a correlated but quiet envelope "constant" (0)."""
    x = torch.randn(81, generator=torch.Generator().manual_seed(4))
    y = x + 0.5 * torch.randn(81, generator=torch.Generator().manual_seed(5))
    ref = lag_correlation(x, y, max_lag=4)
    for scale in (1e-14, 1e6):
        # y * scale is rounded to float32 (U relative per value): the Pearson bound is 2 U |y| / |y - mean|
        assert lag_correlation(x, y * scale, max_lag=4).corr == pytest.approx(ref.corr, abs=8 * U)
    assert lag_correlation(x, torch.full((81,), 1e-20), max_lag=4).corr == (0.0,) * 9  # constant: no evidence
