"""score_clip / plot_sync: planted offsets rank and are recovered, the plot draws the signals, errors."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from harmony_core.metrics import motion_energy, onset_strength, plot_sync, score_clip
from harmony_core.metrics.events import frame_time
from harmony_core.metrics.score import BACKGROUND, GRID, MARGIN, MOTION_COLOUR, ONSET_COLOUR, SyncScore
from harmony_core.train.synthetic import SceneSpec, make_clip

SEEDS = range(6)
OFFSETS = (0, 1, -1, 3, -3)
# a full-coverage pixel is colour * 1 + background * 0: exact up to float32 rounding of one multiply-add
COLOUR_TOL = 4 * float(torch.finfo(torch.float32).eps)
# a drawn peak's column: half width (1 px) + anti-aliased edge (0.5 px) + rounding to a column (0.5 px)
PEAK_TOL_PX = 2.0


def delay(wave: torch.Tensor, frames: int, per_frame: int) -> torch.Tensor:
    """The same audio `frames` video frames later (positive) or earlier (negative), zero-padded."""
    s = frames * per_frame
    if s >= 0:
        return torch.cat([wave.new_zeros(s), wave[:wave.shape[0] - s]])
    return torch.cat([wave[-s:], wave.new_zeros(-s)])


@pytest.fixture(scope="module")
def clips() -> list:
    return [make_clip(seed, SceneSpec(kind="impact")) for seed in SEEDS]


@pytest.fixture(scope="module")
def scores(clips: list) -> dict[object, list[SyncScore]]:
    """Scores per condition (an offset in frames, or "shuffled": audio of the next clip), one per clip."""
    per_frame = clips[0].sample_rate // int(clips[0].fps)
    out: dict[object, list[SyncScore]] = {
        offset: [score_clip(c.frames, c.fps, delay(c.wave, offset, per_frame), c.sample_rate) for c in clips]
        for offset in OFFSETS}
    out["shuffled"] = [score_clip(c.frames, c.fps, clips[(i + 1) % len(clips)].wave, c.sample_rate)
                       for i, c in enumerate(clips)]
    return out


def test_aligned_audio_scores_highest_on_every_clip(scores: dict) -> None:
    for i in range(len(SEEDS)):
        for condition in (1, -1, 3, -3, "shuffled"):
            assert scores[0][i].score > scores[condition][i].score, (i, condition)
    means = {k: np.mean([s.score for s in v]) for k, v in scores.items()}
    assert means[0] > max(v for k, v in means.items() if k != 0), means


def test_score_ranks_zero_above_one_frame_above_three_frames_above_shuffled(scores: dict) -> None:
    """The ranking a user expects from takes: in sync > one frame off > three frames off > unrelated sound, on
    every clip. Lag-0 correlation alone cannot order +-1 against +-3 (one-frame impacts: a one-frame slip drops
    it to about 0); the lag-discounted peak can."""
    for i in range(len(SEEDS)):
        for near in (1, -1):
            assert scores[0][i].score > scores[near][i].score, (i, near)
            for far in (3, -3, "shuffled"):
                assert scores[near][i].score > scores[far][i].score, (i, near, far)
        for far in (3, -3):
            assert scores[far][i].score > scores["shuffled"][i].score, (i, far)


def test_within_one_frame_ranks_one_frame_slips_above_three_and_shuffled(scores: dict) -> None:
    for i in range(len(SEEDS)):
        for near in (1, -1):
            for far in (3, -3, "shuffled"):
                assert scores[near][i].best_within_one > scores[far][i].best_within_one, (i, near, far)


@pytest.mark.parametrize("offset", OFFSETS)
def test_best_lag_recovers_the_planted_offset_with_its_sign(scores: dict, offset: int) -> None:
    for s in scores[offset]:
        assert s.best_lag_frames == offset  # positive: the sound comes after the picture
        assert s.best_lag_seconds == pytest.approx(offset / 25, abs=1e-12)
        assert s.n_frames == 81 and s.fps == Fraction(25)
        assert s.lags == tuple(range(-8, 9)) and len(s.correlations) == 17
        assert s.lag0 == s.correlations[s.lags.index(0)]
        discounted = [c * (1 - abs(lag) / 9) for lag, c in zip(s.lags, s.correlations)]
        assert s.score == max(discounted) == discounted[s.lags.index(offset)]


@pytest.mark.parametrize(("offset", "reading"), [(0, "in sync"), (1, "sound 40 ms late"),
                                                 (-3, "sound 120 ms early")])
def test_report_says_what_the_lag_means(scores: dict, offset: int, reading: str) -> None:
    text = scores[offset][0].report()
    assert f"reading: {reading}" in text
    assert f"best lag {offset:+d} frame(s) = {offset * 40:+d} ms" in text
    assert f"sync score {scores[offset][0].score:+.3f}" in text


def test_silence_reads_as_no_relation(clips: list) -> None:
    c = clips[0]
    s = score_clip(c.frames, c.fps, torch.zeros(c.wave.shape[0]), c.sample_rate)
    assert s.score == s.lag0 == 0.0 and "no relation found" in s.report() and "best lag: none" in s.report()


def test_uint8_frames_and_stereo_audio_are_accepted(clips: list) -> None:
    c = clips[1]
    as_uint8 = (c.frames * 255).round().to(torch.uint8)
    a = score_clip(as_uint8, c.fps, torch.stack([c.wave, c.wave]), c.sample_rate)
    b = score_clip(as_uint8.float() / 255, float(c.fps), c.wave, c.sample_rate)
    assert a == b


def test_max_lag_is_clamped_to_the_clip_length(clips: list) -> None:
    c = clips[0]
    s = score_clip(c.frames[:9], c.fps, c.wave[:9 * 640], c.sample_rate, max_lag=8)
    assert s.lags == tuple(range(-5, 6))  # 9 frames: max_lag <= 9 - 4


def test_errors_name_the_problem(clips: list) -> None:
    c = clips[0]
    with pytest.raises(ValueError, match=r"4 frame\(s\); a sync score needs at least 5"):
        score_clip(c.frames[:4], c.fps, c.wave, c.sample_rate)
    wave = c.wave.clone()
    wave[[10, 20, 30]] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    with pytest.raises(ValueError, match=r"wave: 3 of \d+ values are NaN or infinite"):
        score_clip(c.frames, c.fps, wave, c.sample_rate)
    frames = c.frames.clone()
    frames[0, 0, 0, :2] = float("nan")
    with pytest.raises(ValueError, match=r"frames: 2 of \d+ values are NaN or infinite"):
        plot_sync(frames, c.fps, c.wave, c.sample_rate)
    with pytest.raises(ValueError, match="max_lag must be >= 1"):
        score_clip(c.frames, c.fps, c.wave, c.sample_rate, max_lag=0)
    with pytest.raises(ValueError, match="plot size 20x240 is too small"):
        plot_sync(c.frames, c.fps, c.wave, c.sample_rate, width=20)


# ------------------------------------------------------------------------------------------------
# plot
# ------------------------------------------------------------------------------------------------
def _mask(image: torch.Tensor, colour: tuple[float, float, float]) -> torch.Tensor:
    """[H, W] pixels drawn in exactly `colour` (full line coverage)."""
    return (image - torch.tensor(colour)).abs().amax(-1) <= COLOUR_TOL


def _top_columns(mask: torch.Tensor) -> list[int]:
    """Columns of the topmost row that holds the colour (near-equal peaks may share it)."""
    rows, cols = mask.nonzero(as_tuple=True)
    return cols[rows == rows.min()].tolist()


def _check_peaks(mask: torch.Tensor, signal: torch.Tensor, event_times: list[float], width: int) -> None:
    """The line's highest pixels sit at event times, one of them at the signal's maximum."""
    duration = signal.shape[0] / 25
    event_cols = [_column(t, duration, width) for t in event_times]
    top = _top_columns(mask)
    assert all(min(abs(col - e) for e in event_cols) <= PEAK_TOL_PX for col in top), (top, event_cols)
    k_max = int(signal[1:].argmax()) + 1
    assert min(abs(frame_time(k_max, 25) - t) for t in event_times) < 1e-9  # the maximum is an event
    assert min(abs(col - _column(frame_time(k_max, 25), duration, width)) for col in top) <= PEAK_TOL_PX


def _column(seconds: float, duration: float, width: int) -> float:
    return MARGIN + seconds / duration * (width - 1 - 2 * MARGIN)


@pytest.mark.parametrize("shift", [0, 3])
def test_plot_peaks_sit_at_the_event_frames(clips: list, shift: int) -> None:
    c = clips[2]
    wave = delay(c.wave, shift, 640)
    width, height = 640, 240
    image = plot_sync(c.frames, c.fps, wave, c.sample_rate, width=width, height=height)
    assert image.shape == (height, width, 3) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    motion, onset = _mask(image, MOTION_COLOUR), _mask(image, ONSET_COLOUR)
    assert motion[height // 2:].sum() == 0 and onset[:height // 2].sum() == 0  # upper / lower lane
    # orange peaks at the impacts, blue at the impacts' sounds, `shift` frames later
    _check_peaks(motion, motion_energy(c.frames), list(c.event_times), width)
    sounds = [t + shift / 25 for t in c.event_times]
    _check_peaks(onset, onset_strength(wave, c.sample_rate, c.fps, 81), sounds, width)


def test_plot_draws_a_grid_line_per_second_on_a_dark_background(clips: list) -> None:
    c = clips[0]
    width = 500
    image = plot_sync(c.frames, c.fps, c.wave, c.sample_rate, width=width, height=120)
    top_row = image[0]  # the margin above the lanes: only background and grid
    grid_cols = _mask(top_row[None], GRID)[0].nonzero().flatten().tolist()
    assert grid_cols == [round(_column(s, 81 / 25, width)) for s in (1, 2, 3)]
    assert _mask(top_row[None], BACKGROUND)[0].sum() == width - 3
    assert float(image.mean()) < 0.25  # dark: the lines cover a small part of the picture
