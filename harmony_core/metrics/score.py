"""One clip's synchronisation score, a short text a user reads, and a picture of the two signals.

score_clip: the lag sweep of lagcorr.py (Pearson correlation of motion energy with onset strength per lag), read
as one score that ranks takes (the peak correlation, discounted by how far its lag is from 0), the lag-0
correlation (the figure the project's evaluations report) and "sound N ms late/early".
plot_sync: the two per-frame signals on a shared time axis, drawn with torch only (no fonts, no matplotlib).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..checks import require_finite
from .events import as_frames, as_mono, frame_time
from .lagcorr import DEFAULT_MAX_LAG, lag_correlation, sync_signals

MIN_FRAMES = 5  # lag_correlation needs max_lag <= F - 4; lags -1..1 (best_within_one) need F >= 5

BACKGROUND = (0.07, 0.07, 0.09)
GRID = (0.22, 0.22, 0.26)
MOTION_COLOUR = (1.0, 0.62, 0.15)  # orange: motion energy (upper lane)
ONSET_COLOUR = (0.25, 0.75, 1.0)  # sky blue: onset strength (lower lane)
MARGIN = 6  # px around and between the lanes
LINE_HALF_WIDTH = 1.0  # px; lines are 2 px wide with a 1 px anti-aliased edge


@dataclass(frozen=True)
class SyncScore:
    """Synchronisation of one clip.

    score: max over lags l of corr(l) * (1 - |l| / (L + 1)), L the largest lag searched (-1..1, higher is
    better). In sync, it is the lag-0 correlation; the same sound one frame late keeps L/(L+1) of its peak and
    three frames late (L - 2)/(L + 1), so takes rank by how strongly AND how closely their sound follows their
    motion (lag-0 correlation alone drops to about 0 at a one-frame slip of one-frame events and cannot tell a
    one-frame slip from a three-frame one); unrelated sound scores what chance alignments give.
    lag0: the lag-0 correlation; best_lag_frames / best_lag_seconds: the lag of the highest correlation,
    positive = the sound comes after the picture (ties: the most negative lag);
    best_within_one: the highest correlation within +-1 frame (forgives a one-frame slip);
    lags / correlations: the sweep itself.
    """

    score: float
    lag0: float
    best_lag_frames: int
    best_lag_seconds: float
    best_within_one: float
    lags: tuple[int, ...]
    correlations: tuple[float, ...]
    n_frames: int
    fps: Fraction

    @property
    def best_correlation(self) -> float:
        """The correlation at best_lag_frames."""
        return max(self.correlations)

    def verdict(self) -> str:
        """'in sync', 'sound 40 ms late', 'sound 80 ms early', or 'no relation found'."""
        if self.best_correlation <= 0.0:
            return "no relation found (no lag correlates positively)"
        if self.best_lag_frames == 0:
            return "in sync"
        ms = round(abs(self.best_lag_seconds) * 1000)
        return f"sound {ms} ms {'late' if self.best_lag_frames > 0 else 'early'}"

    def report(self) -> str:
        """A few lines for a person: the score, the best lag in frames and ms, and what it means."""
        seconds = self.n_frames / float(self.fps)
        best = (f"best lag {self.best_lag_frames:+d} frame(s) = {self.best_lag_seconds * 1000:+.0f} ms "
                f"(correlation {self.best_correlation:+.3f}; within +-1 frame: {self.best_within_one:+.3f})"
                if self.best_correlation > 0.0 else "best lag: none (no lag correlates positively)")
        return "\n".join([
            f"sync score {self.score:+.3f} (peak correlation of motion and sound onsets, less 1/{max(self.lags) + 1} "
            f"per frame of lag; -1..1, higher is better); lag-0 correlation {self.lag0:+.3f}",
            best,
            f"reading: {self.verdict()}",
            f"clip: {self.n_frames} frames at {self.fps} fps ({seconds:.2f} s), "
            f"lags +-{max(self.lags)} frames",
        ])


def _check_inputs(frames: torch.Tensor | np.ndarray, fps: Fraction | float, wave: torch.Tensor | np.ndarray,
                  sample_rate: int) -> tuple[torch.Tensor, Fraction, torch.Tensor]:
    """(frames [F, H, W, C] float, fps, mono wave [L]) after the checks every scorer needs."""
    video = as_frames(frames)
    rate = Fraction(fps).limit_denominator(1_000_000) if isinstance(fps, float) else Fraction(fps)
    if rate <= 0 or sample_rate <= 0:
        raise ValueError(f"fps and sample_rate must be > 0, got {fps} and {sample_rate}")
    if video.shape[0] < MIN_FRAMES:
        raise ValueError(f"the clip has {video.shape[0]} frame(s); a sync score needs at least {MIN_FRAMES} "
                         f"(lags -1..1 must leave 3 frames to correlate): generate or pass a longer clip")
    mono = as_mono(wave)
    for name, x in (("frames", video), ("wave", mono)):
        require_finite(x, name, "values", "the clip is corrupt; replace them (e.g. torch.nan_to_num) or "
                       "regenerate it")
    return video, rate, mono


def score_clip(frames: torch.Tensor | np.ndarray, fps: Fraction | float, wave: torch.Tensor | np.ndarray,
               sample_rate: int, max_lag: int = DEFAULT_MAX_LAG) -> SyncScore:
    """Score frames [F, H, W, 3] (float in [0, 1] or uint8) against wave [L] or [C, L] (channels averaged).

    max_lag (frames) is clamped to what the clip allows (F - 4); F >= 5 is required.
    """
    if max_lag < 1:
        raise ValueError(f"max_lag must be >= 1 frame, got {max_lag}")
    video, rate, mono = _check_inputs(frames, fps, wave, sample_rate)
    visual, audio = sync_signals(video, rate, mono, sample_rate)  # [F], [F]
    lc = lag_correlation(visual, audio, min(max_lag, video.shape[0] - 4))
    reach = max(lc.lags) + 1
    score = max(c * (1.0 - abs(lag) / reach) for lag, c in zip(lc.lags, lc.corr))
    return SyncScore(score=score, lag0=lc.lag0, best_lag_frames=lc.best_lag,
                     best_lag_seconds=float(lc.best_lag / rate),
                     best_within_one=lc.within_one, lags=lc.lags,
                     correlations=lc.corr, n_frames=int(video.shape[0]), fps=rate)


# ------------------------------------------------------------------------------------------------
# plot
# ------------------------------------------------------------------------------------------------
def _interp(xq: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear y at xq [Q] through points (xs, ys) [N], xs increasing; constant beyond the ends."""
    i = torch.searchsorted(xs, xq).clamp(1, xs.shape[0] - 1)  # [Q] right neighbour
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    w = ((xq - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0.0, 1.0)
    return y0 + w * (y1 - y0)


def _line_alpha(xs: torch.Tensor, ys: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Coverage [height, width] in [0, 1] of the polyline through pixel points (xs, ys) [N], xs increasing.

    Each column is filled between the lowest and highest y the line takes inside it (steep edges stay
    connected), widened by LINE_HALF_WIDTH, with a one-pixel linear fall-off (anti-aliasing).
    """
    xq = torch.cat([torch.linspace(float(xs[0]), float(xs[-1]), 4 * width, dtype=torch.float64), xs])  # [Q]
    yq = _interp(xq, xs, ys)
    col = xq.round().long().clamp(0, width - 1)
    inf = torch.full((width,), math.inf, dtype=torch.float64)
    lo = inf.scatter_reduce(0, col, yq, "amin")  # [W]; inf where the line does not reach
    hi = (-inf).scatter_reduce(0, col, yq, "amax")
    rows = torch.arange(height, dtype=torch.float64)[:, None]  # [H, 1]
    inside = torch.minimum(rows - (lo - LINE_HALF_WIDTH), (hi + LINE_HALF_WIDTH) - rows)  # [H, W]
    return (inside + 0.5).clamp(0.0, 1.0).float()


def _blend(image: torch.Tensor, alpha: torch.Tensor, colour: tuple[float, float, float]) -> torch.Tensor:
    """image [H, W, 3] with `colour` laid over it at coverage alpha [H, W]."""
    a = alpha[..., None]
    return image * (1 - a) + torch.tensor(colour) * a


def _column(seconds: float, duration: float, width: int) -> float:
    """Pixel column of a time: 0 s at the left margin, the clip's end at the right one."""
    return MARGIN + seconds / duration * (width - 1 - 2 * MARGIN)


def _lanes(height: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(top, bottom) pixel rows of the motion lane and of the onset lane."""
    lane = (height - 3 * MARGIN) / 2
    return (MARGIN, MARGIN + lane), (2 * MARGIN + lane, 2 * MARGIN + 2 * lane)


def plot_sync(frames: torch.Tensor | np.ndarray, fps: Fraction | float, wave: torch.Tensor | np.ndarray,
              sample_rate: int, width: int = 640, height: int = 240) -> torch.Tensor:
    """RGB image [height, width, 3] in [0, 1]: motion energy (orange, upper lane) above onset strength
    (blue, lower lane), each scaled to its own maximum, over a time axis spanning the clip.

    Value k of each signal sits at its time (k - 0.5) / fps (events.py); value 0 (constant) is left out.
    A faint vertical line marks every whole second.
    """
    if width < 4 * MARGIN or height < 8 * MARGIN:
        raise ValueError(f"plot size {width}x{height} is too small: use at least "
                         f"{4 * MARGIN}x{8 * MARGIN} px")
    video, rate, mono = _check_inputs(frames, fps, wave, sample_rate)
    visual, audio = sync_signals(video, rate, mono, sample_rate)  # [F], [F]
    n, duration = video.shape[0], video.shape[0] / float(rate)
    image = torch.tensor(BACKGROUND).expand(height, width, 3).clone()
    for second in range(1, math.ceil(duration)):
        image[:, round(_column(second, duration, width))] = torch.tensor(GRID)
    times = [frame_time(k, rate) for k in range(1, n)]
    xs = torch.tensor([_column(t, duration, width) for t in times], dtype=torch.float64)  # [F - 1]
    for signal, (top, bottom), colour in zip((visual, audio), _lanes(height), (MOTION_COLOUR, ONSET_COLOUR)):
        values = signal[1:].double()
        values = values / values.max() if float(values.max()) > 0 else values.zero_()  # [F - 1] in [0, 1]
        image = _blend(image, _line_alpha(xs, bottom - values * (bottom - top), height, width), colour)
    return image.clamp(0.0, 1.0)
