"""Sync report for a set of clips: per-clip rows, aggregates with 95% bootstrap CIs, a shuffled-pair baseline.

The baseline pairs video i with audio j != i (a deterministic derangement) and is computed for every report,
so each real figure is read beside what unrelated pictures and sounds score on the same clips. Every figure is
loudness-invariant (the audio is peak-normalised before onset strength, events.py) and follows the timing
convention in TIMING_NOTE.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Protocol

import numpy as np
import torch

from .events import EventConfig, as_frames, detect_peaks, frame_time, offset_error
from .lagcorr import DEFAULT_MAX_LAG, lag_correlation, sync_signals

METRICS = ("lag0", "best_is_zero", "confidence", "mean_abs_offset", "hit_rate", "within_one")
METRIC_LABELS = {"lag0": "lag-0 correlation", "best_is_zero": "best lag = 0 (fraction)",
                 "confidence": "peak - median (not a target)", "mean_abs_offset": "mean |offset| (s)",
                 "hit_rate": "hit rate", "within_one": "best corr. within ±1 frame"}
TABLE_ORDER = ("lag0", "within_one", "best_is_zero", "confidence", "mean_abs_offset", "hit_rate")  # rows
TIMING_NOTE = ("timing: motion[k] = mean |frame k - frame k-1| (k >= 1; motion[0] = 0, left out) is paired with\n"
               "the onset strength of the sound in ((k-1)/fps, k/fps]; lag l pairs motion[k] with sound[k + l],\n"
               "positive lag = sound after picture; the audio is peak-normalised first (loudness-invariant).")
MOUTH_NOTE = ("clips with a mouth opening: mouth[k] (frame k, shown at k/fps) is paired with the RMS of the "
              "sound in a one-frame window centred on k/fps")


class AVClip(Protocol):
    """Anything with frames [F, H, W, 3], fps, wave [L] and sample_rate (a synthetic Clip, an AVPair)."""

    frames: torch.Tensor
    fps: Fraction
    wave: torch.Tensor
    sample_rate: int


@dataclass(frozen=True, eq=False)
class AVPair:
    """A plain clip for callers that read video and audio themselves (e.g. from an mp4)."""

    frames: torch.Tensor
    fps: Fraction
    wave: torch.Tensor
    sample_rate: int
    name: str = ""
    kind: str = ""
    mouth: torch.Tensor | None = None


@dataclass(frozen=True)
class SyncConfig:
    """Evaluation settings. tolerance / max_offset in seconds; use_mouth compares a clip's mouth opening
    (when it has one) with the audio envelope instead of motion energy with onset strength."""

    max_lag: int = DEFAULT_MAX_LAG
    tolerance: float = 0.05
    max_offset: float = 0.2
    events: EventConfig = field(default_factory=EventConfig)
    use_mouth: bool = False
    bootstrap: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class ClipRow:
    """Per-clip figures (video of clip `name`, audio of clip `audio_name`)."""

    name: str
    audio_name: str
    kind: str
    lag0: float
    best_lag: int
    best_is_zero: bool
    confidence: float
    mean_abs_offset: float
    mean_offset: float
    hit_rate: float
    n_visual: int
    n_audio: int
    within_one: float  # best correlation at lags -1, 0, 1


@dataclass(frozen=True)
class Stat:
    """Mean over clips with finite values, its 95% percentile-bootstrap CI, and how many clips counted."""

    mean: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class SyncReport:
    """Real and shuffled rows, and per group ("all" and each scene kind) the Stat of every metric."""

    rows: tuple[ClipRow, ...]
    shuffled: tuple[ClipRow, ...]
    summary: dict[str, dict[str, Stat]]
    shuffled_summary: dict[str, dict[str, Stat]]
    config: SyncConfig


def derangement(n: int, seed: int = 0) -> list[int]:
    """A random cyclic permutation of range(n) (Sattolo's algorithm): perm[i] != i for all i. Needs n >= 2."""
    if n < 2:
        raise ValueError(f"a shuffled baseline needs at least 2 clips, got {n}")
    rng = np.random.default_rng(seed)
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _evaluate(video: AVClip, audio: AVClip, names: tuple[str, str], config: SyncConfig) -> ClipRow:
    """Figures for the picture of `video` against the sound of `audio` (on the video's frame grid)."""
    motion, onset = sync_signals(video.frames, video.fps, audio.wave, audio.sample_rate)
    mouth = getattr(video, "mouth", None) if config.use_mouth else None
    signals = (motion, onset) if mouth is None else sync_signals(video.frames, video.fps, audio.wave,
                                                                 audio.sample_rate, mouth)
    lc = lag_correlation(*signals, config.max_lag)
    v_times = [frame_time(k, video.fps) for k in detect_peaks(motion, config.events)]
    a_times = [frame_time(k, video.fps) for k in detect_peaks(onset, config.events)]
    off = offset_error(v_times, a_times, config.tolerance, config.max_offset)
    return ClipRow(names[0], names[1], getattr(video, "kind", ""), lc.lag0, lc.best_lag, lc.best_is_zero,
                   lc.confidence, off.mean_abs_offset, off.mean_offset, off.hit_rate, off.n_visual,
                   off.n_audio, lc.within_one)


def bootstrap_stat(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> Stat:
    """Mean and 95% percentile-bootstrap CI of the finite values (NaN stat when there are none)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return Stat(math.nan, math.nan, math.nan, 0)
    if x.size == 1 or resamples < 1:
        return Stat(float(x.mean()), float(x.mean()), float(x.mean()), int(x.size))
    idx = np.random.default_rng(seed).integers(0, x.size, size=(resamples, x.size))  # [B, n]
    means = x[idx].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Stat(float(x.mean()), float(lo), float(hi), int(x.size))


def summarise(rows: Sequence[ClipRow], config: SyncConfig) -> dict[str, dict[str, Stat]]:
    """Stats per metric for all rows and, when several scene kinds are present, for each kind."""
    groups = {"all": list(rows)}
    kinds = sorted({r.kind for r in rows})
    if len(kinds) > 1:
        groups.update({k: [r for r in rows if r.kind == k] for k in kinds})
    return {g: {m: bootstrap_stat([float(getattr(r, m)) for r in rs], config.bootstrap, config.seed)
                for m in METRICS} for g, rs in groups.items()}


def evaluate_clips(clips: Sequence[AVClip], config: SyncConfig = SyncConfig(),
                   names: Sequence[str] | None = None) -> SyncReport:
    """Evaluate every clip and the shuffled pairs (video i, audio perm[i]); one clip gets no baseline."""
    if not clips:
        raise ValueError("evaluate_clips needs at least one clip")
    for clip in clips:
        as_frames(clip.frames)  # validates the layout before any work
    if names is None:
        names = [getattr(c, "name", "") or f"clip{i}" for i, c in enumerate(clips)]
    rows = tuple(_evaluate(c, c, (names[i], names[i]), config) for i, c in enumerate(clips))
    perm = derangement(len(clips), config.seed) if len(clips) > 1 else []
    shuffled = tuple(_evaluate(clips[i], clips[j], (names[i], names[j]), config) for i, j in enumerate(perm))
    return SyncReport(rows, shuffled, summarise(rows, config), summarise(shuffled, config), config)


def _cell(stat: Stat | None) -> str:
    if stat is None or stat.n == 0:
        return "-"
    return f"{stat.mean:7.3f} [{stat.lo:6.3f}, {stat.hi:6.3f}]"


def format_table(report: SyncReport) -> str:
    """Plain-text table: one block per group, each metric's real figure beside the shuffled baseline (the
    within-one-frame correlation next to lag 0), then the timing convention."""
    lines = [f"sync metrics over {len(report.rows)} clips (mean [95% bootstrap CI]); shuffled = video i with "
             f"audio j != i; lags within +-{report.config.max_lag} frames",
             f"{'group':<10}{'metric':<40}{'real':>28}{'shuffled':>28}"]
    for group, stats in report.summary.items():
        shuffled = report.shuffled_summary.get(group, {})
        for metric in TABLE_ORDER:
            label = f"{METRIC_LABELS[metric]} (n={stats[metric].n})"
            lines.append(f"{group:<10}{label:<40}{_cell(stats[metric]):>28}{_cell(shuffled.get(metric)):>28}")
    lines.append(TIMING_NOTE)
    if report.config.use_mouth:
        lines.append(MOUTH_NOTE)
    return "\n".join(lines)


def _finite(value: object) -> object:
    """JSON has no NaN: non-finite floats become null, nested containers are converted recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(report: SyncReport) -> str:
    """The whole report (config, rows, shuffled rows, summaries) as a JSON string."""
    return json.dumps(_finite(asdict(report)), indent=2)
