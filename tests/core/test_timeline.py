"""Seconds <-> frames <-> samples <-> audio latents (harmony_core.timeline, media part).

Property tests over NTSC and integer/fractional frame rates, common sample rates and codec hops: round
trips into a finer unit are exact, through a coarser unit drift by less than one period of it.
"""
from __future__ import annotations

import logging
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harmony_core import timeline as tl

FPS = [Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001), Fraction(24), Fraction(25),
       Fraction(30), Fraction(25, 2), Fraction(16), Fraction(50), Fraction(8)]
RATES = [8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000]
HOPS = [256, 320, 512, 1024, 2048]  # samples per audio latent (MMAudio 16k: 512)

fps_st = st.sampled_from(FPS)
rate_st = st.sampled_from(RATES)
hop_st = st.sampled_from(HOPS)
frames_st = st.integers(min_value=0, max_value=60 * 60 * 60)  # up to an hour at 60 fps
props = settings(max_examples=300, deadline=None, derandomize=True)  # deterministic: same examples every run


# ------------------------------------------------------------------------------------------------
# Rates
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, exact", [
    (Fraction(30000, 1001), Fraction(30000, 1001)), ("30000/1001", Fraction(30000, 1001)),
    (29.97, Fraction(30000, 1001)), (23.976, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)),
    (12.5, Fraction(25, 2)), (25, Fraction(25)), ("12.5", Fraction(25, 2)), (31.25, Fraction(125, 4)),
    (29.0, Fraction(29)),
])
def test_as_rate_is_exact(value, exact):
    assert tl.as_rate(value) == exact


@pytest.mark.parametrize("bad", [0, -25, "abc", "1/0", float("nan"), float("inf"), True, None, [25]])
def test_as_rate_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="rate"):
        tl.as_rate(bad, "fps rate")


def test_known_values():
    assert tl.samples_for_frames(33, 25, 16000) == 21120
    assert tl.samples_for_frames(33, Fraction(24000, 1001), 16000) == 22022
    assert tl.samples_for_frames(33, Fraction(30000, 1001), 44100) == 48559  # 48558.3 rounded up
    assert tl.audio_latent_rate(16000, 512) == Fraction(125, 4)
    assert tl.audio_latents_for_frames(121, 24, tl.audio_latent_rate(16000, 512)) == 158
    assert tl.audio_latents_for_frames(109, 25, 31.25) == 137  # Harmony demo length: 4.36 s
    assert tl.frames_for_audio_latents(250, 31.25, 25) == 200  # 8 s
    assert tl.max_causal_frames(4.4, 25) == 109
    assert tl.max_causal_frames(Fraction(121, 24), 24) == 121
    assert tl.frames_duration(30000, Fraction(30000, 1001)) == 1001  # exactly 1001 s, no float drift


def test_bad_counts_and_durations():
    with pytest.raises(ValueError, match="num_frames"):
        tl.frames_duration(-1, 25)
    with pytest.raises(ValueError, match="num_frames"):
        tl.samples_for_frames(2.5, 25, 16000)
    with pytest.raises(ValueError, match="duration"):
        tl.frames_in_duration(-0.5, 25)
    with pytest.raises(ValueError, match="duration"):
        tl.samples_for_duration(float("inf"), 16000)
    with pytest.raises(ValueError, match="samples_per_latent"):
        tl.audio_latent_rate(16000, 0)
    with pytest.raises(ValueError, match="no whole frame"):
        tl.max_causal_frames(0.01, 25)


# ------------------------------------------------------------------------------------------------
# Round trips
# ------------------------------------------------------------------------------------------------

@props
@given(frames_st, fps_st, rate_st)
def test_frames_samples_frames_is_exact(f, fps, sr):
    samples = tl.samples_for_frames(f, fps, sr)
    assert tl.frames_for_samples(samples, sr, fps) == f
    # the samples cover the video, and one sample less would not
    assert Fraction(samples, sr) >= Fraction(f) / fps > Fraction(samples - 1, sr)


@props
@given(st.integers(0, 48000 * 3600), fps_st, rate_st)
def test_samples_frames_samples_drifts_less_than_a_frame(s, fps, sr):
    back = tl.samples_for_frames(tl.frames_for_samples(s, sr, fps), fps, sr)
    assert back <= s
    assert Fraction(s - back, sr) < 1 / fps


@props
@given(frames_st, fps_st, rate_st, hop_st)
def test_frames_latents_frames_drifts_less_than_a_latent(f, fps, sr, hop):
    rate = tl.audio_latent_rate(sr, hop)
    back = tl.frames_for_audio_latents(tl.audio_latents_for_frames(f, fps, rate), rate, fps)
    assert back >= f
    assert Fraction(back - f) / fps < max(1 / fps, 1 / rate)
    if rate >= fps:  # latents finer than frames: exact
        assert back == f


@props
@given(st.integers(0, 200000), fps_st, rate_st, hop_st)
def test_latents_frames_latents_drifts_less_than_a_frame(n, fps, sr, hop):
    rate = tl.audio_latent_rate(sr, hop)
    back = tl.audio_latents_for_frames(tl.frames_for_audio_latents(n, rate, fps), fps, rate)
    assert back <= n
    assert Fraction(n - back) / rate < max(1 / fps, 1 / rate)
    if fps >= rate:  # frames finer than latents: exact
        assert back == n


@props
@given(frames_st, fps_st, rate_st, hop_st)
def test_latents_agree_with_samples(f, fps, sr, hop):
    """Latents for a video == latents covering the video's samples (ceil of ceil is one ceil)."""
    via_samples = tl.audio_latents_for_samples(tl.samples_for_frames(f, fps, sr), hop)
    assert tl.audio_latents_for_frames(f, fps, tl.audio_latent_rate(sr, hop)) == via_samples
    assert tl.audio_latents_for_samples(tl.samples_for_audio_latents(via_samples, hop), hop) == via_samples


@props
@given(frames_st, fps_st)
def test_frames_seconds_frames_is_exact(f, fps):
    assert tl.frames_in_duration(tl.frames_duration(f, fps), fps) == f
    # through a float (what a UI widget holds) it stays exact for these lengths
    assert tl.frames_in_duration(float(tl.frames_duration(f, fps)) + 1e-9, fps) == f


@props
@given(st.floats(min_value=0.2, max_value=600.0), fps_st)
def test_max_causal_frames(seconds, fps):
    n = tl.max_causal_frames(seconds, fps)
    assert n % 4 == 1
    assert Fraction(n) / fps <= Fraction(repr(seconds)) < Fraction(n + 4) / fps
    assert tl.latent_frames_for(n) == (n - 1) // 4 + 1


# ------------------------------------------------------------------------------------------------
# fit_audio_to_video
# ------------------------------------------------------------------------------------------------

@props
@given(st.integers(1, 400), fps_st, rate_st, st.integers(0, 30000))
def test_fit_audio_to_video_length_and_content(f, fps, sr, length):
    wave = torch.linspace(-1, 1, length).expand(2, -1)  # [2, L]
    out, note = tl.fit_audio_to_video(wave, sr, f, fps)
    target = tl.samples_for_frames(f, fps, sr)
    assert out.shape == (2, target)
    keep = min(length, target)
    assert torch.equal(out[:, :keep], wave[:, :keep])
    assert not out[:, keep:].any()
    assert note


def test_fit_audio_to_video_logs_every_change(caplog):
    caplog.set_level(logging.INFO, logger="harmony_core.timeline")
    wave = torch.ones(1, 3, 21000)  # [B, C, L]; 33 frames @ 25 fps, 16 kHz = 21120 samples
    out, note = tl.fit_audio_to_video(wave, 16000, 33, 25)
    assert out.shape == (1, 3, 21120) and "padded" in note
    assert caplog.records[-1].levelno == logging.INFO  # 120 samples < one frame (640)
    out, note = tl.fit_audio_to_video(torch.ones(30000), 16000, 33, 25)
    assert out.shape == (21120,) and "trimmed" in note
    assert caplog.records[-1].levelno == logging.WARNING  # > one frame
    assert caplog.records[-1].getMessage() == note
    count = len(caplog.records)
    out, note = tl.fit_audio_to_video(torch.ones(21120), 16000, 33, 25)
    assert out.shape == (21120,) and "matches" in note and len(caplog.records) == count


def test_fit_audio_float_fps_matches_exact():
    wave = torch.zeros(1, 100)
    a, _ = tl.fit_audio_to_video(wave, 44100, 97, 29.97)
    b, _ = tl.fit_audio_to_video(wave, 44100, 97, Fraction(30000, 1001))
    assert a.shape == b.shape == (1, math.ceil(Fraction(97 * 1001, 30000) * 44100))


def test_causal_frame_counts_within_and_covering():
    from harmony_core.timeline import causal_frames_covering, causal_frames_within

    assert [causal_frames_within(n) for n in (1, 4, 5, 8, 9, 10, 81, 84)] == [1, 1, 5, 5, 9, 9, 81, 81]
    assert causal_frames_within(7, 2) == 7 and causal_frames_within(8, 2) == 7
    with pytest.raises(ValueError, match=">= 1"):
        causal_frames_within(0)
    # 3.24 s at 25 fps is 81 frames exactly; a hair more needs the next group of 4
    assert causal_frames_covering("3.24", 25) == 81 and causal_frames_covering(3.25, 25) == 85
    assert causal_frames_covering(0, 25) == 1 and causal_frames_covering(0.2, 25) == 5  # 5 frames = 0.2 s
    for seconds in (0.5, 1, 2.02, 5.06):
        n = causal_frames_covering(seconds, 24)
        assert (n - 1) % 4 == 0 and n / 24 >= seconds > (n - 4) / 24 - 1e-9
