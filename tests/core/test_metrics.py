"""Sync metrics: planted offsets are recovered, real pairs correlate at lag 0, shuffled pairs do not."""
from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from harmony_core.cli import main
from harmony_core.metrics import (TIMING_NOTE, AVPair, EventConfig, SyncConfig, audio_onsets,
                                  clip_lag_correlation, derangement, detect_peaks, evaluate_clips, format_table,
                                  lag_correlation, motion_energy, offset_error, onset_strength, to_json,
                                  visual_events)
from harmony_core.metrics.report import METRICS
from harmony_core.train.synthetic import KINDS, SceneSpec, clip_seed, make_clip

FPS, SR = 25, 16000
PER_FRAME = SR // FPS  # 640 samples per video frame
EVENT_KINDS = tuple(k for k in KINDS if k != "still")  # still scenes have no motion: no lag to recover


def delay(wave: torch.Tensor, frames: int) -> torch.Tensor:
    """The same audio `frames` video frames later (positive) or earlier (negative), length kept."""
    s = frames * PER_FRAME
    if s >= 0:
        return torch.cat([wave.new_zeros(s), wave[:wave.shape[0] - s]])
    return torch.cat([wave[-s:], wave.new_zeros(-s)])


@pytest.fixture(scope="module")
def clips() -> dict[str, list]:
    return {kind: [make_clip(clip_seed(23, i), SceneSpec(kind=kind)) for i in range(16)] for kind in KINDS}


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("shift", [-3, 2, 4])
def test_planted_offset_is_recovered_by_lag_correlation(clips: dict[str, list], kind: str,
                                                        shift: int) -> None:
    for clip in clips[kind][:8]:
        lc = clip_lag_correlation(clip.frames, clip.fps, delay(clip.wave, shift), clip.sample_rate)
        assert abs(lc.best_lag - shift) <= 1, (clip.seed, lc.best_lag, shift)


@pytest.mark.parametrize("shift", [-2, 2])
def test_planted_offset_is_recovered_by_event_matching(shift: int) -> None:
    """Sparse events (one bouncing object, impacts >= 9 frames apart) make the matching unambiguous."""
    for i in range(6):
        clip = make_clip(clip_seed(31, i), SceneSpec(kind="impact", max_objects=1))
        v = visual_events(clip.frames, clip.fps)
        a = audio_onsets(delay(clip.wave, shift), SR, clip.fps, 81)
        result = offset_error(v, a)
        assert abs(result.mean_offset - shift / FPS) <= 1 / FPS, (clip.seed, result)
        assert result.mean_abs_offset == pytest.approx(abs(result.mean_offset), abs=1e-9)


def test_real_pairs_correlate_and_shuffled_pairs_sit_near_zero(clips: dict[str, list]) -> None:
    everything = clips["impact"] + clips["speaker"]
    report = evaluate_clips(everything, SyncConfig(bootstrap=200))
    for group in ("all", "impact", "speaker"):
        real, shuffled = report.summary[group], report.shuffled_summary[group]
        assert real["lag0"].mean >= 0.6, (group, real["lag0"])
        assert real["best_is_zero"].mean >= 0.9, (group, real["best_is_zero"])
        assert real["hit_rate"].mean >= 0.9 and real["mean_abs_offset"].mean <= 0.02, (group, real)
        assert abs(shuffled["lag0"].mean) <= 0.1 if group == "all" else abs(shuffled["lag0"].mean) <= 0.15
        assert shuffled["best_is_zero"].mean <= 0.3
    assert report.summary["all"]["lag0"].lo > report.shuffled_summary["all"]["lag0"].hi


def test_motion_energy_skips_the_first_frame_and_accepts_uint8() -> None:
    frames = torch.rand(6, 8, 8, 3)
    energy = motion_energy(frames)
    assert energy.shape == (6,) and energy[0] == 0
    assert energy[3] == pytest.approx(float((frames[3] - frames[2]).abs().mean()))
    as_bytes = (frames * 255).round().to(torch.uint8)
    assert torch.allclose(motion_energy(as_bytes), motion_energy(as_bytes.float() / 255), atol=1e-6)
    assert torch.all(motion_energy(torch.ones(5, 4, 4, 3)) == 0)
    with pytest.raises(ValueError, match=r"\[F, H, W, C\]"):
        motion_energy(torch.rand(1, 4, 4, 3))


@pytest.mark.parametrize("offset_ms", [-15.0, 0.0, 15.0])
def test_onset_strength_puts_a_click_in_the_frame_it_falls_in(offset_ms: float) -> None:
    """A click inside ((k - 1) / fps, k / fps] peaks at value k, also close to the interval's ends."""
    wave = 0.001 * torch.randn(SR * 2, generator=torch.Generator().manual_seed(1))
    frames = [10, 23, 37]
    for k in frames:
        start = round(((k - 0.5) / FPS + offset_ms / 1000) * SR)
        wave[start:start + 400] += torch.exp(-torch.arange(400) / 80.0) * torch.sin(torch.arange(400) * 0.7)
    strength = onset_strength(wave, SR, FPS, 50)
    assert strength.shape == (50,) and strength[0] == 0
    assert detect_peaks(strength) == frames


def test_onset_strength_fits_audio_to_the_video_and_mixes_channels() -> None:
    wave = torch.randn(2, 30000, generator=torch.Generator().manual_seed(2))
    short = onset_strength(wave, SR, FPS, 81)  # 1.875 s of audio for 3.24 s of video: padded with silence
    assert short.shape == (81,) and float(short[60:].abs().max()) == 0.0
    assert torch.allclose(onset_strength(wave, SR, FPS, 40), onset_strength(wave.mean(0), SR, FPS, 40))


def test_detect_peaks_threshold_distance_and_flat_signals() -> None:
    signal = torch.tensor([9.0, 0, 1, 0, 5, 4.9, 0, 0, 0.5, 0, 3, 0])
    assert detect_peaks(signal) == [4, 10]  # 9 at index 0 is skipped; 1 and 0.5 are below the threshold
    # 2 and 8 lie within 3 frames of a higher peak
    assert detect_peaks(signal, EventConfig(rel_threshold=0.05)) == [4, 10]
    assert detect_peaks(signal, EventConfig(rel_threshold=0.05, min_distance=2)) == [2, 4, 8, 10]
    assert detect_peaks(torch.tensor([0.0, 1, 0, 1, 0])) == [1]
    assert detect_peaks(torch.zeros(10)) == [] and detect_peaks(torch.full((10,), 3.0)) == []


def test_lag_correlation_identity_shift_and_flat() -> None:
    x = torch.randn(81, generator=torch.Generator().manual_seed(3))
    same = lag_correlation(x, x, max_lag=5)
    assert same.lag0 == pytest.approx(1.0) and same.best_lag == 0 and same.best_is_zero
    assert same.lags == tuple(range(-5, 6)) and len(same.corr) == 11
    later = torch.cat([torch.zeros(3), x[:-3]])  # audio 3 frames after the picture
    assert lag_correlation(x, later, max_lag=5).best_lag == 3
    flat = lag_correlation(torch.zeros(81), x, max_lag=5)
    assert flat.lag0 == 0.0 and flat.best_lag == -5 and not flat.best_is_zero
    first_only = x.clone()
    first_only[0] = 1e6  # value 0 is left out, so it cannot matter
    assert lag_correlation(first_only, x).corr == pytest.approx(lag_correlation(x, x).corr)
    with pytest.raises(ValueError, match="same length"):
        lag_correlation(x, x[:-1])


def test_offset_error_by_hand() -> None:
    result = offset_error([1.0, 2.0, 3.0], [1.04, 1.9, 3.3], tolerance=0.05, max_offset=0.2)
    assert result.n_visual == 3 and result.n_audio == 3
    assert result.mean_offset == pytest.approx((0.04 - 0.1) / 2)  # 3.0 has no onset within 0.2 s
    assert result.mean_abs_offset == pytest.approx(0.07) and result.hit_rate == pytest.approx(1 / 3)
    empty = offset_error([], [1.0])
    assert math.isnan(empty.mean_abs_offset) and math.isnan(empty.hit_rate)


def test_derangement_has_no_fixed_points_and_is_deterministic() -> None:
    for n in (2, 3, 7, 32):
        perm = derangement(n, seed=5)
        assert sorted(perm) == list(range(n)) and all(p != i for i, p in enumerate(perm))
        assert perm == derangement(n, seed=5)
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1)


def test_report_on_plain_pairs_table_and_json(clips: dict[str, list]) -> None:
    pairs = []
    for i, clip in enumerate(clips["impact"][:3]):
        frames = (clip.frames * 255).round().to(torch.uint8).numpy()  # what a decoded mp4 gives
        stereo = np.stack([clip.wave.numpy(), clip.wave.numpy()])
        pairs.append(AVPair(torch.from_numpy(frames), Fraction(25), torch.from_numpy(stereo), SR,
                            name=f"v{i}"))
    report = evaluate_clips(pairs, SyncConfig(bootstrap=100))
    assert [r.name for r in report.rows] == ["v0", "v1", "v2"] and len(report.shuffled) == 3
    assert all(r.name != r.audio_name for r in report.shuffled)
    assert set(report.summary) == {"all"} and report.summary["all"]["lag0"].n == 3
    table = format_table(report)
    assert "shuffled" in table and "lag-0 correlation" in table
    data = json.loads(to_json(report))
    assert data["rows"][0]["name"] == "v0" and "shuffled_summary" in data
    single = evaluate_clips(pairs[:1])
    assert single.shuffled == () and single.shuffled_summary["all"]["lag0"].n == 0
    assert json.loads(to_json(single))["shuffled_summary"]["all"]["lag0"]["mean"] is None


def test_mouth_opening_pairs_with_the_audio_envelope(clips: dict[str, list]) -> None:
    report = evaluate_clips(clips["speaker"][:8], SyncConfig(use_mouth=True, bootstrap=100))
    assert report.summary["all"]["lag0"].mean >= 0.7
    assert report.summary["all"]["lag0"].mean > report.shuffled_summary["all"]["lag0"].mean + 0.4


# ------------------------------------------------------------------------------------------------
# timing convention, best correlation within +-1 frame
# ------------------------------------------------------------------------------------------------
def _step_clip(change: int, click_s: float, num_frames: int = 40) -> AVPair:
    """One visual change between frames change - 1 and change (a square appears) and one click at click_s."""
    frames = torch.zeros(num_frames, 16, 16, 3)
    frames[change:, 4:12, 4:12] = 1.0
    wave = 0.001 * torch.randn(num_frames * PER_FRAME, generator=torch.Generator().manual_seed(6))
    start = round(click_s * SR)
    wave[start:start + 400] += torch.exp(-torch.arange(400) / 80.0) * torch.sin(torch.arange(400) * 0.7)
    return AVPair(frames, Fraction(FPS), wave, SR, name=f"click {click_s:.3f} s")


@pytest.mark.parametrize("where", [0.006, 0.5 / FPS, 1 / FPS - 0.006])  # s after (k - 1) / fps
@pytest.mark.parametrize("late", [-1, 0, 1])
def test_timing_convention_change_k_pairs_with_sound_in_its_interval(where: float, late: int) -> None:
    """motion[k] = change from frame k - 1 to k; it pairs with the sound in ((k - 1) / fps, k / fps] (lag 0),
    and the same click `late` frames later peaks at lag `late` (positive = sound after picture)."""
    k = 20
    clip = _step_clip(k, (k - 1) / FPS + where + late / FPS)
    motion = motion_energy(clip.frames)
    onset = onset_strength(clip.wave, SR, clip.fps, 40)
    assert int(motion.argmax()) == k and int((motion > 0).sum()) == 1
    assert int(onset.argmax()) == k + late
    lc = clip_lag_correlation(clip.frames, clip.fps, clip.wave, SR)
    assert lc.best_lag == late and lc.corr[lc.lags.index(late)] >= 0.9, lc
    row = evaluate_clips([clip], SyncConfig(bootstrap=0)).rows[0]
    assert row.best_lag == late and row.within_one == pytest.approx(lc.corr[lc.lags.index(late)])
    assert row.within_one >= 0.9 and (row.lag0 >= 0.9) == (late == 0)


def test_within_one_is_the_best_of_lags_minus_one_to_one(clips: dict[str, list]) -> None:
    for clip in clips["impact"][:4]:
        for shift in (0, 1, 3):
            lc = clip_lag_correlation(clip.frames, clip.fps, delay(clip.wave, shift), clip.sample_rate)
            assert lc.within_one == max(lc.corr[lc.lags.index(-1):lc.lags.index(1) + 1]) >= lc.lag0
    only_zero = lag_correlation(torch.arange(10.0), torch.arange(10.0), max_lag=0)
    assert only_zero.within_one == only_zero.lag0 == pytest.approx(1.0)


def test_report_has_within_one_next_to_lag0_with_baseline_and_timing(clips: dict[str, list]) -> None:
    clip_set = clips["impact"][:3] + clips["speaker"][:3]
    shifted = [AVPair(c.frames, c.fps, delay(c.wave, 1), c.sample_rate, kind=c.kind) for c in clip_set]
    report = evaluate_clips(shifted, SyncConfig(bootstrap=100))
    assert METRICS[:5] == ("lag0", "best_is_zero", "confidence", "mean_abs_offset", "hit_rate")
    assert METRICS[5] == "within_one"
    for rows, summary in ((report.rows, report.summary), (report.shuffled, report.shuffled_summary)):
        assert all(r.within_one >= r.lag0 for r in rows)
        stat = summary["all"]["within_one"]
        assert stat.n == 6 and stat.mean == pytest.approx(np.mean([r.within_one for r in rows]))
        assert stat.lo <= stat.mean <= stat.hi and set(summary) == {"all", "impact", "speaker"}
    # sound one frame late: lag 0 loses most of the correlation, the +-1-frame figure keeps it
    assert report.summary["all"]["within_one"].mean >= report.summary["all"]["lag0"].mean + 0.3
    lines = format_table(report).splitlines()
    labels = [line[10:50].split(" (n=")[0].strip() for line in lines if line.startswith("all ")]
    assert labels[:2] == ["lag-0 correlation", "best corr. within ±1 frame"] and len(labels) == 6
    assert format_table(report).endswith(TIMING_NOTE) and "((k-1)/fps, k/fps]" in TIMING_NOTE
    data = json.loads(to_json(report))
    assert data["rows"][0]["within_one"] == pytest.approx(report.rows[0].within_one)
    assert data["shuffled_summary"]["all"]["within_one"]["n"] == 6


def test_eval_sync_help_states_the_timing_convention(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["eval-sync", "--help"])
    text = capsys.readouterr().out
    assert TIMING_NOTE in text and "±1 video frame" in text and "Loudness-invariant" in text
    assert main(["eval-sync", "--max-lag", "0", "missing.mp4"]) == 2  # checked before any file is read
