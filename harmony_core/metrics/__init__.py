"""Synchronisation metrics usable on any clip (frames [F, H, W, 3], fps, wave, sample_rate).

events.py: per-frame motion energy / onset strength (timing convention and loudness invariance stated
there), event detection and a DeSync-like offset error; lagcorr.py: lag correlation of the two signals;
report.py: per-clip rows, bootstrap CIs and the shuffled-pair baseline for a set of clips; score.py: one
clip's score, its text report and a plot; loudness.py: RMS, peak, clipped fraction, peak normalisation.
"""
from .events import (
                     EventConfig,
                     OffsetResult,
                     audio_envelope,
                     audio_onsets,
                     detect_peaks,
                     motion_energy,
                     offset_error,
                     onset_strength,
                     visual_events,
)
from .lagcorr import DEFAULT_MAX_LAG, LagCorrelation, clip_lag_correlation, lag_correlation, sync_signals
from .loudness import SILENCE_PEAK, clipped_fraction, normalise_peak, peak, rms
from .report import (
                     TIMING_NOTE,
                     AVClip,
                     AVPair,
                     ClipRow,
                     Stat,
                     SyncConfig,
                     SyncReport,
                     derangement,
                     evaluate_clips,
                     format_table,
                     to_json,
)
from .score import SyncScore, plot_sync, score_clip

__all__ = [
    "DEFAULT_MAX_LAG", "EventConfig", "OffsetResult", "audio_envelope", "audio_onsets", "detect_peaks",
    "motion_energy", "offset_error", "onset_strength", "visual_events", "LagCorrelation", "clip_lag_correlation",
    "lag_correlation", "sync_signals", "AVClip", "AVPair", "ClipRow", "Stat", "SyncConfig", "SyncReport",
    "derangement", "evaluate_clips", "format_table", "to_json", "SyncScore", "plot_sync", "score_clip",
    "SILENCE_PEAK", "clipped_fraction", "normalise_peak", "peak", "rms", "TIMING_NOTE",
]
