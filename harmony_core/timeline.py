"""The one place that converts between timelines.

Pixel frames <-> video latent frames (Wan2.2 causal VAE), audio samples <-> audio latents, and the
latent-to-latent alignment the local interaction (GLDI) uses. Every other module asks this one.

Conventions
- Wan2.2's causal VAE maps F pixel frames (F = 4k + 1) to (F - 1) / 4 + 1 latent frames: latent 0 is
  pixel frame 0 alone, latent i >= 1 is pixel frames 4i-3 .. 4i.
- On the latent-to-latent level the model only knows Tv video latent frames and Ta audio latents that
  cover the same duration. Audio latent j is placed at the virtual video position j * Tv / Ta
  (the paper's RoPE alignment, arXiv 2511.21579 §3.3.1); video frame i spans [i, i + 1).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction

import torch

VIDEO_TEMPORAL_STRIDE = 4  # Wan2.2 VAE: 4 pixel frames per latent frame (after the first)
MAX_SECONDS = 60.0  # the longest clip anything in the pack reads, generates or writes


def latent_frames_for(num_frames: int, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """Pixel frames -> latent frames of a causal VAE. `num_frames` must be stride*k + 1."""
    if num_frames < 1 or (num_frames - 1) % temporal_stride:
        raise ValueError(
            f"{num_frames} frames is not accepted: the causal video VAE needs {temporal_stride}*k + 1 frames "
            f"(e.g. {temporal_stride * max(1, (num_frames - 1) // temporal_stride) + 1})."
        )
    return (num_frames - 1) // temporal_stride + 1


def causal_frames_within(num_frames: int, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """The most frames of the form stride*k + 1 that `num_frames` (>= 1) frames hold: a driving clip is cut
    to this length for a causal VAE."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return (num_frames - 1) // temporal_stride * temporal_stride + 1


def causal_frames_covering(seconds: Rate, fps: Rate, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """The fewest frames of the form stride*k + 1 that last at least `seconds` at `fps` (at least 1)."""
    needed = math.ceil(_as_seconds(seconds) * as_rate(fps, "fps"))
    return 1 + temporal_stride * max(0, -(-(needed - 1) // temporal_stride))


def pixel_frames_for(latent_frames: int, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """Latent frames -> pixel frames of a causal VAE (inverse of `latent_frames_for`)."""
    if latent_frames < 1:
        raise ValueError(f"latent_frames must be >= 1, got {latent_frames}")
    return (latent_frames - 1) * temporal_stride + 1


# ----------------------------------------------------------------------------------------------
# Latent-to-latent alignment for the local (frame-wise) interaction
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Windows:
    """Ragged index windows padded to a common width.

    index: [G, W] long, entries of padded slots repeat a valid index (safe to gather)
    valid: [G, W] bool, False on padded slots
    """

    index: torch.Tensor
    valid: torch.Tensor

    @property
    def width(self) -> int:
        return int(self.index.shape[1])


def _pad_ranges(ranges: list[tuple[int, int]]) -> Windows:
    """[(lo, hi)) ranges -> padded Windows. Empty ranges get one invalid slot pointing at 0."""
    width = max(1, max(hi - lo for lo, hi in ranges))
    index = torch.zeros(len(ranges), width, dtype=torch.long)
    valid = torch.zeros(len(ranges), width, dtype=torch.bool)
    for g, (lo, hi) in enumerate(ranges):
        n = hi - lo
        if n > 0:
            index[g, :n] = torch.arange(lo, hi)
            index[g, n:] = hi - 1
            valid[g, :n] = True
    return Windows(index, valid)


def a2v_windows(tv: int, ta: int, margin: float) -> Windows:
    """For each video latent frame i, the audio latents whose span overlaps [i - margin, i + 1 + margin).

    Audio latent j spans [j, j + 1) * Tv / Ta on the video timeline. Returns Windows with G = Tv.
    """
    m = Fraction(margin).limit_denominator(1000)
    ranges = []
    for i in range(tv):
        lo = math.floor((i - m) * ta / tv)
        hi = math.ceil((i + 1 + m) * ta / tv)
        ranges.append((max(lo, 0), min(hi, ta)))
    return _pad_ranges(ranges)


def audio_frame_of(tv: int, ta: int) -> torch.Tensor:
    """[Ta] long: the video latent frame containing the centre of each audio latent."""
    centre = (torch.arange(ta, dtype=torch.float64) + 0.5) * tv / ta
    return centre.floor().long().clamp_(0, tv - 1)


def v2a_groups(tv: int, ta: int, margin: int) -> tuple[Windows, Windows]:
    """V2A alignment grouped by video frame (so keys are shared, never copied per audio latent).

    Returns (queries, key_frames), both with G = Tv:
    - queries: the audio latents whose centre lies in video frame i (contiguous, ragged)
    - key_frames: video frames i - margin .. i + margin, clipped to [0, Tv)
    """
    owner = audio_frame_of(tv, ta)
    ranges = []
    for i in range(tv):
        hits = (owner == i).nonzero().flatten()
        ranges.append((int(hits[0]), int(hits[-1]) + 1) if len(hits) else (0, 0))
    frames = [(max(i - margin, 0), min(i + margin + 1, tv)) for i in range(tv)]
    return _pad_ranges(ranges), _pad_ranges(frames)


def audio_positions(ta: int, tv: int, rescale: bool = True) -> torch.Tensor:
    """[Ta] float64 positions of audio latents on the video timeline (j * Tv / Ta), or raw j."""
    j = torch.arange(ta, dtype=torch.float64)
    return j * tv / ta if rescale else j


def video_positions(tv: int, ta: int, rescale: bool = True) -> torch.Tensor:
    """[Tv] float64 positions of video latent frames on the audio timeline (i * Ta / Tv), or raw i."""
    i = torch.arange(tv, dtype=torch.float64)
    return i * ta / tv if rescale else i


# ----------------------------------------------------------------------------------------------
# Seconds <-> pixel frames <-> audio samples <-> audio latents (media I/O and pipeline lengths)
#
# Rounding conventions (exact rational arithmetic throughout, no float drift):
# - video -> audio rounds UP (ceil): the audio always covers the whole video;
# - audio -> video and seconds -> frames round DOWN (floor): the video never outlasts its audio.
# Hence a round trip into a finer unit and back is exact, and one through a coarser unit drifts by
# less than one period of the coarser unit (e.g. < 1 frame, or < 1 audio latent).
# ----------------------------------------------------------------------------------------------

Rate = Fraction | int | float | str
NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))  # 23.976.. 119.88 fps

logger = logging.getLogger(__name__)


def as_rate(value: Rate, what: str = "rate") -> Fraction:
    """An exact positive rate (fps, sample rate, latent rate) as a Fraction.

    Accepts Fraction, int, "30000/1001" or "29.97" strings and floats. A float is read as the decimal
    it prints as (12.5 -> 25/2), and floats within 0.0005 of an NTSC rate (23.976, 29.97, 47.952,
    59.94, 119.88) snap to it exactly (29.97 -> 30000/1001), as containers store those rates.
    """
    if isinstance(value, bool) or not isinstance(value, (Fraction, int, float, str)):
        raise ValueError(f"{what} must be a Fraction, int, float or 'num/den' string, got {value!r}")
    try:
        exact = Fraction(repr(value)) if isinstance(value, float) else Fraction(value)
    except (ValueError, ZeroDivisionError) as err:
        raise ValueError(f"{what} {value!r} is not a number; use e.g. 25, 12.5 or '30000/1001'") from err
    if exact <= 0:
        raise ValueError(f"{what} must be positive and finite, got {value!r}")
    if isinstance(value, float):
        exact = next((r for r in NTSC_RATES if abs(exact - r) < Fraction(1, 2000)), exact)
    return exact


def _as_seconds(seconds: Rate) -> Fraction:
    """Non-negative duration as an exact Fraction (floats read as the decimal they print as)."""
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise ValueError(f"duration must be finite, got {seconds!r}")
    exact = Fraction(repr(seconds)) if isinstance(seconds, float) else Fraction(seconds)
    if exact < 0:
        raise ValueError(f"duration must be >= 0 seconds, got {seconds!r}")
    return exact


def _check_count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"{what} must be an int >= 0, got {n!r}")
    return n


def frames_duration(num_frames: int, fps: Rate) -> Fraction:
    """Seconds covered by `num_frames` frames at `fps` (frame i spans [i, i + 1) / fps)."""
    return Fraction(_check_count(num_frames, "num_frames")) / as_rate(fps, "fps")


def frames_in_duration(seconds: Rate, fps: Rate) -> int:
    """Whole frames at `fps` that fit in `seconds` (floor)."""
    return math.floor(_as_seconds(seconds) * as_rate(fps, "fps"))


def samples_for_duration(seconds: Rate, sample_rate: Rate) -> int:
    """Audio samples needed to cover `seconds` at `sample_rate` (ceil)."""
    return math.ceil(_as_seconds(seconds) * as_rate(sample_rate, "sample_rate"))


def samples_duration(num_samples: int, sample_rate: Rate) -> Fraction:
    """Seconds covered by `num_samples` samples at `sample_rate`."""
    return Fraction(_check_count(num_samples, "num_samples")) / as_rate(sample_rate, "sample_rate")


def samples_for_frames(num_frames: int, fps: Rate, sample_rate: Rate) -> int:
    """Audio samples covering a video of `num_frames` frames (ceil). 33 frames @ 25 fps, 16 kHz -> 21120."""
    return samples_for_duration(frames_duration(num_frames, fps), sample_rate)


def frames_for_samples(num_samples: int, sample_rate: Rate, fps: Rate) -> int:
    """Whole video frames that `num_samples` audio samples cover (floor)."""
    return frames_in_duration(samples_duration(num_samples, sample_rate), fps)


def audio_latent_rate(sample_rate: Rate, samples_per_latent: int) -> Fraction:
    """Exact audio latents per second (MMAudio 16k: 16000 / 512 = 125/4 = 31.25)."""
    if _check_count(samples_per_latent, "samples_per_latent") == 0:
        raise ValueError("samples_per_latent must be >= 1")
    return as_rate(sample_rate, "sample_rate") / samples_per_latent


def audio_latents_for_frames(num_frames: int, fps: Rate, latent_rate: Rate) -> int:
    """Audio latents covering a video of `num_frames` frames (ceil). 121 frames @ 24 fps, 31.25/s -> 158."""
    return math.ceil(frames_duration(num_frames, fps) * as_rate(latent_rate, "latent_rate"))


def frames_for_audio_latents(num_latents: int, latent_rate: Rate, fps: Rate) -> int:
    """Whole video frames that `num_latents` audio latents cover (floor)."""
    seconds = Fraction(_check_count(num_latents, "num_latents")) / as_rate(latent_rate, "latent_rate")
    return frames_in_duration(seconds, fps)


def audio_latents_for_samples(num_samples: int, samples_per_latent: int) -> int:
    """Audio latents covering `num_samples` samples (ceil)."""
    if _check_count(samples_per_latent, "samples_per_latent") == 0:
        raise ValueError("samples_per_latent must be >= 1")
    return -(-_check_count(num_samples, "num_samples") // samples_per_latent)


def samples_for_audio_latents(num_latents: int, samples_per_latent: int) -> int:
    """Samples an audio codec decodes from `num_latents` latents."""
    return _check_count(num_latents, "num_latents") * _check_count(samples_per_latent, "samples_per_latent")


def max_causal_frames(seconds: Rate, fps: Rate, temporal_stride: int = VIDEO_TEMPORAL_STRIDE) -> int:
    """Largest stride*k + 1 frame count whose duration does not exceed `seconds` (4.4 s @ 25 fps -> 109)."""
    fit = frames_in_duration(seconds, fps)
    if fit < 1:
        raise ValueError(f"{float(_as_seconds(seconds)):.4f} s holds no whole frame at {as_rate(fps)} fps; "
                         f"at least {float(frames_duration(1, fps)):.4f} s is needed")
    return (fit - 1) // temporal_stride * temporal_stride + 1


def fit_audio_to_video(wave: torch.Tensor, sample_rate: Rate, num_frames: int,
                       fps: Rate) -> tuple[torch.Tensor, str]:
    """Pad with silence or trim `wave` [..., L] to exactly the video's duration (`samples_for_frames`).

    Returns (wave [..., L'], note). The note says what was done and is logged (INFO when within one
    frame's worth of samples, WARNING beyond), never applied silently.
    """
    target = samples_for_frames(num_frames, fps, sample_rate)
    have = int(wave.shape[-1])
    per_frame = samples_for_frames(1, fps, sample_rate)
    seconds = float(samples_duration(abs(target - have), sample_rate))
    if have == target:
        return wave, f"audio already matches the video: {target} samples"
    if have > target:
        wave, verb = wave[..., :target], "trimmed"  # [..., target]
    else:
        wave, verb = torch.nn.functional.pad(wave, (0, target - have)), "padded with silence"  # [..., target]
    sign = "-" if have > target else "+"
    note = f"audio {verb} from {have} to {target} samples ({sign}{seconds:.3f} s) for {num_frames} frames"
    logger.log(logging.INFO if abs(target - have) <= per_frame else logging.WARNING, note)
    return wave, note
