"""Per-video-frame synchronisation signals and event detection, usable on any clip.

Timing convention. The video frame grid is the common time base: frame k is shown at k / fps (frame 0 at
0 s). Value k of every per-frame signal describes what changed between frame k - 1 and frame k, i.e. the
interval ((k - 1) / fps, k / fps], and stands for the time (k - 0.5) / fps. Value 0 is constant (0) by
construction and every consumer leaves it out.
- motion energy: motion[k] = mean |frame k - frame k - 1| (k >= 1), motion[0] = 0.
- onset strength: onset[k] = spectral flux of the sound in ((k - 1) / fps, k / fps] (half-wave rectified
  rise of the noise-gated dB spectrum, 16 ms window, 8 hops per video frame, averaged over the STFT frames
  placed in the interval at 3/4 of their window), so motion[k] pairs with onset[k]; lagcorr.py's lag l pairs
  motion[k] with onset[k + l] (positive lag = sound after picture).
Loudness invariance. Onset strength and the RMS envelope peak-normalise the fitted wave first (loudness.py)
and every later floor is relative (dB below the clip's loudest bin, dB above a bin's own noise floor, peak
thresholds relative to the signal's range), so multiplying a clip's audio by any gain leaves the signals
(and every figure made from them) unchanged up to float32 rounding; a wave with peak <= SILENCE_PEAK is
silence (zero signals).
Offset error pairs motion-energy peaks with onset-strength peaks: a DeSync-like mean |offset| in seconds
(cf. Synchformer's DeSync as used by av-benchmark, arXiv 2511.21579 Table 3) and a hit rate.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from .loudness import normalise_peak

log = logging.getLogger(__name__)

FLUX_RANGE_DB = 80.0  # dB spectrum floored at (max - 80 dB) before the flux
GATE_MARGIN_DB = 12.0  # ... and at each bin's noise floor (20th percentile over time) + 12 dB
LOG_FLOOR = 1e-10  # magnitudes floored at 1e-10 x the clip's loudest bin (-200 dB) before the log: avoids log(0)


@dataclass(frozen=True)
class EventConfig:
    """Peak picking on a per-frame signal: peaks reach median + rel_threshold * (max - median) and lie at
    least min_distance frames apart (the higher one wins)."""

    rel_threshold: float = 0.3
    min_distance: int = 3


def as_frames(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[F, H, W, C] or [F, H, W] video, uint8 or float in [0, 1] -> float32 [F, H, W, C] in [0, 1]."""
    x = torch.as_tensor(frames)
    if x.ndim == 3:
        x = x[..., None]  # [F, H, W, 1]
    if x.ndim != 4 or x.shape[0] < 2:
        raise ValueError(f"frames must be [F, H, W, C] or [F, H, W] with F >= 2, got shape {tuple(x.shape)}")
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def as_mono(wave: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[L] or [C, L] audio -> float32 mono [L] (channels averaged)."""
    x = torch.as_tensor(wave).float()
    if x.ndim == 2:
        x = x.mean(0)
    if x.ndim != 1 or x.shape[0] == 0:
        shape = tuple(torch.as_tensor(wave).shape)
        raise ValueError(f"wave must be [L] or [C, L] with L > 0, got shape {shape}")
    return x


def frame_time(index: int, fps: Fraction | float) -> float:
    """Time (s) that per-frame value `index` stands for: the middle of ((index - 1) / fps, index / fps]."""
    return (index - 0.5) / float(fps)


def motion_energy(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[F] motion[k] = mean |frame k - frame k - 1| over pixels and channels (k >= 1), motion[0] = 0.

    Value k is the change shown between k - 1 and k (frame k is shown at k / fps), paired with the sound in
    ((k - 1) / fps, k / fps] (onset_strength's value k).
    """
    x = as_frames(frames)
    diff = (x[1:] - x[:-1]).abs().flatten(1).mean(1)  # [F - 1]
    return torch.cat([diff.new_zeros(1), diff])


def _gated_db(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Magnitude spectrogram in dB, each bin floored at its own noise floor. [L] -> [n_fft // 2 + 1, M].

    Windows are not centred: frame m covers samples [m * hop, m * hop + n_fft). The floor of a bin is its
    20th percentile over time plus GATE_MARGIN_DB (and at least FLUX_RANGE_DB below the clip's max), so
    stationary noise adds almost no flux while anything rising above it does. Every floor is relative to
    the clip's own levels: a gain on `wave` shifts all dB values alike and leaves the flux unchanged.
    """
    spec = torch.stft(wave, n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=False,
                      return_complex=True).abs()
    top = float(spec.max())
    db = 20.0 * torch.log10(spec.clamp_min(top * LOG_FLOOR if top > 0 else 1.0))  # [K, M]
    floor = torch.quantile(db, 0.2, dim=1, keepdim=True) + GATE_MARGIN_DB  # [K, 1]
    return torch.maximum(db, floor.clamp_min(float(db.max()) - FLUX_RANGE_DB))


def _to_frame_grid(values: torch.Tensor, times: torch.Tensor, fps: float, num_frames: int) -> torch.Tensor:
    """Average `values` [M] at `times` [M] (s) into bins ((k - 1) / fps, k / fps]; [F], bin 0 stays 0."""
    index = torch.ceil(times * fps - 1e-9).long()  # [M] bin of each value
    keep = (index >= 1) & (index < num_frames)
    sums = torch.zeros(num_frames).index_add_(0, index[keep], values[keep])
    counts = torch.zeros(num_frames).index_add_(0, index[keep], torch.ones(int(keep.sum())))
    return sums / counts.clamp_min(1.0)


def fit_wave(wave: torch.Tensor | np.ndarray, sample_rate: int, fps: Fraction | float,
             num_frames: int) -> torch.Tensor:
    """Mono [L] padded with silence or trimmed to exactly num_frames / fps seconds."""
    x = as_mono(wave)
    length = round(Fraction(num_frames) / Fraction(fps) * sample_rate)
    if x.shape[0] != length:
        log.debug("audio of %d samples fitted to the video's %d samples", x.shape[0], length)
    return torch.nn.functional.pad(x, (0, max(0, length - x.shape[0])))[:length]


def onset_strength(wave: torch.Tensor | np.ndarray, sample_rate: int, fps: Fraction | float,
                   num_frames: int) -> torch.Tensor:
    """[F] onset[k] = spectral flux (dB per bin) of the sound in ((k - 1) / fps, k / fps], onset[0] = 0.

    Value k pairs with motion_energy's value k (the change from frame k - 1 to frame k). The wave is fitted to
    the video's duration, then peak-normalised: the result does not depend on the audio's gain, and a wave
    with peak <= SILENCE_PEAK (silence) gives zeros.
    """
    x = normalise_peak(fit_wave(wave, sample_rate, fps, num_frames))
    hop = max(1, round(sample_rate / float(fps) / 8))
    n_fft = 2 ** math.ceil(math.log2(0.016 * sample_rate))
    if x.shape[0] < n_fft + hop:
        raise ValueError(f"audio of {x.shape[0]} samples is too short for onset strength "
                         f"(needs {n_fft + hop})")
    if not bool(x.any()):
        return torch.zeros(num_frames)
    db = _gated_db(x, n_fft, hop)  # [K, M]
    flux = torch.relu(db[:, 1:] - db[:, :-1]).mean(0)  # [M - 1], flux m is the rise into STFT frame m + 1
    # a rise shows once a sound is a little way into a window: placed where the Hann window's newer half
    # reaches half weight (3/4 of the window), which puts a click's flux within ~2 ms of the click
    times = (torch.arange(1, db.shape[1], dtype=torch.float64) * hop + 0.75 * n_fft) / sample_rate
    return _to_frame_grid(flux, times, float(fps), num_frames)


def audio_envelope(wave: torch.Tensor | np.ndarray, sample_rate: int, fps: Fraction | float,
                   num_frames: int) -> torch.Tensor:
    """[F] RMS amplitude in a one-frame window centred on each frame's instant k / fps (pairs with a level
    such as mouth opening, which frame k shows at k / fps), of the peak-normalised fitted wave (full scale =
    the clip's peak, so a gain on the audio changes nothing)."""
    x = normalise_peak(fit_wave(wave, sample_rate, fps, num_frames))
    per_frame = sample_rate / float(fps)
    centre = torch.arange(num_frames, dtype=torch.float64) * per_frame  # [F] sample index of k / fps
    starts = (centre - per_frame / 2).round().long().clamp(0, x.shape[0])
    ends = (centre + per_frame / 2).round().long().clamp(0, x.shape[0])
    energy = torch.cat([x.new_zeros(1), torch.cumsum(x.double() ** 2, 0)])  # [L + 1] prefix sums
    return ((energy[ends] - energy[starts]) / (ends - starts).clamp_min(1)).sqrt().float()


def detect_peaks(signal: torch.Tensor, config: EventConfig = EventConfig(), skip: int = 1) -> list[int]:
    """Indices of local maxima of `signal` [F] (ignoring the first `skip` values) above the adaptive
    threshold, thinned to config.min_distance by keeping the higher peak. Flat signals have no peaks.

    The threshold is relative to the signal's own range; the flatness test's 1e-9 is absolute but applies
    to level-free signals (motion energy in [0, 1], onset strength in dB of a normalised wave).
    """
    x = signal.double()[skip:]
    if x.numel() < 2:
        return []
    median, top = float(x.median()), float(x.max())
    if top - median <= 1e-9 * max(1.0, abs(median)):
        return []
    padded = torch.cat([x.new_full((1,), -math.inf), x, x.new_full((1,), -math.inf)])
    is_max = (x >= padded[:-2]) & (x > padded[2:]) & (x >= median + config.rel_threshold * (top - median))
    candidates = sorted(is_max.nonzero().flatten().tolist(), key=lambda i: -float(x[i]))
    kept: list[int] = []
    for i in candidates:
        if all(abs(i - j) >= config.min_distance for j in kept):
            kept.append(i)
    return sorted(i + skip for i in kept)


def visual_events(frames: torch.Tensor | np.ndarray, fps: Fraction | float,
                  config: EventConfig = EventConfig()) -> list[float]:
    """Times (s) of motion-energy peaks."""
    return [frame_time(k, fps) for k in detect_peaks(motion_energy(frames), config)]


def audio_onsets(wave: torch.Tensor | np.ndarray, sample_rate: int, fps: Fraction | float, num_frames: int,
                 config: EventConfig = EventConfig()) -> list[float]:
    """Times (s) of onset-strength peaks on the video frame grid."""
    strength = onset_strength(wave, sample_rate, fps, num_frames)
    return [frame_time(k, fps) for k in detect_peaks(strength, config)]


@dataclass(frozen=True)
class OffsetResult:
    """Visual events matched to their nearest audio onset (within max_offset).

    mean_abs_offset / mean_offset (s, audio minus video, positive = sound late) over matched events, NaN when
    none matched; hit_rate: fraction of visual events with an onset within the tolerance (NaN without events).
    """

    mean_abs_offset: float
    mean_offset: float
    hit_rate: float
    n_visual: int
    n_audio: int
    n_matched: int


def offset_error(visual_times: list[float], audio_times: list[float], tolerance: float = 0.05,
                 max_offset: float = 0.2) -> OffsetResult:
    """Match every visual event to the nearest audio onset; offsets beyond max_offset count as unmatched."""
    offsets = []
    for t in visual_times:
        if audio_times:
            nearest = min(audio_times, key=lambda a: abs(a - t))
            if abs(nearest - t) <= max_offset:
                offsets.append(nearest - t)
    o = np.asarray(offsets, dtype=np.float64)
    nan = math.nan
    hits = int((np.abs(o) <= tolerance + 1e-9).sum())
    return OffsetResult(float(np.abs(o).mean()) if o.size else nan, float(o.mean()) if o.size else nan,
                        hits / len(visual_times) if visual_times else nan, len(visual_times),
                        len(audio_times), int(o.size))
