"""Read audio and video with PyAV (FFmpeg): anything FFmpeg opens, checked and normalised.

- `read_audio`: first audio stream -> float32 [C, L] in [-1, 1], C = 1 (mono mix) or 2, at the asked rate.
  Decoding goes through PyAV's AudioResampler only to convert the sample format and fold >2 channels to
  stereo (FFmpeg's standard downmix matrix) at the native rate; mono is then the mean of L and R and
  the rate change is `torchaudio.functional.resample` (Hann-windowed sinc, width 6, rolloff 0.99, output
  length ceil(L * new / old)): deterministic, exact in length, the same resampler torch audio models use.
- `read_video`: first video stream -> uint8 [F, H, W, 3] (or float32 in [0, 1]) and its exact frame
  rate as a Fraction (stream average_rate, else guessed/base rate), optionally scaled and centre-cropped
  to a multiple of `grid` (FFmpeg's swscale, area filter).
- `probe`: streams and durations without decoding.

Encoder padding: the container's declared stream length wins over the decoded one when the decoder
returns up to `MAX_TAIL_PADDING` extra samples (AAC in mp4 decodes whole 1024-sample frames; the edit
list stores the true length). Priming (AAC's leading 1024 samples) is already removed by FFmpeg.

Truncation: decoding less than the declared duration minus max(0.1 s, 5 %) raises MediaError. A cut-off
wav cannot be told from a short one (FFmpeg derives its length from the file size) and reads as is.
Rotation side data (phone videos) is not applied.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
import torch
import torchaudio

from .errors import MAX_SECONDS, MAX_SIDE, READABLE, MediaError, check_seconds, check_side

logger = logging.getLogger(__name__)

MAX_TAIL_PADDING = 2048  # samples at the native rate: two AAC frames of encoder padding may be trimmed
TRUNCATION_SLACK = (0.1, 0.05)  # decoded may fall short of declared by max(0.1 s, 5 %) before it is an error


@dataclass(frozen=True)
class StreamInfo:
    """One stream of a media file. Video fields are None for audio streams and vice versa."""

    index: int
    kind: str                    # "video", "audio", "subtitle", "data", ...
    codec: str
    seconds: float | None        # declared duration, None when the container does not say
    fps: Fraction | None = None
    frames: int | None = None    # declared frame count, None when unknown
    width: int | None = None
    height: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    format: str
    seconds: float | None        # container duration
    streams: tuple[StreamInfo, ...]

    def first(self, kind: str) -> StreamInfo | None:
        """The first stream of `kind` ("video" or "audio"), or None."""
        return next((s for s in self.streams if s.kind == kind), None)


@contextmanager
def _open(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open an input container; every failure becomes a MediaError naming the file."""
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "the file does not exist", READABLE)
    if not path.is_file():
        raise MediaError(path, "is not a regular file", READABLE)
    if path.stat().st_size == 0:
        raise MediaError(path, "the file is empty (0 bytes)", READABLE)
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise MediaError(path, f"FFmpeg cannot open it as media ({err})", READABLE) from err
    try:
        yield container
    except av.error.FFmpegError as err:
        raise MediaError(path, f"the file is corrupt or truncated: decoding failed ({err})",
                         READABLE) from err
    finally:
        container.close()


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return float(value * time_base) if value is not None and time_base is not None else None


def _stream_fps(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return None


def _stream_info(stream: av.stream.Stream) -> StreamInfo:
    ctx = stream.codec_context
    base = dict(index=stream.index, kind=stream.type, codec=ctx.name if ctx else "unknown",
                seconds=_seconds(stream.duration, stream.time_base))
    if stream.type == "video":
        return StreamInfo(**base, fps=_stream_fps(stream), frames=stream.frames or None,
                          width=ctx.width, height=ctx.height)
    if stream.type == "audio":
        return StreamInfo(**base, sample_rate=ctx.sample_rate, channels=ctx.channels)
    return StreamInfo(**base)


def probe(path: str | Path) -> MediaInfo:
    """Format, duration and streams of a media file, without decoding."""
    with _open(path) as container:
        seconds = container.duration / av.time_base if container.duration is not None else None
        return MediaInfo(Path(path), container.format.name, seconds,
                         tuple(_stream_info(s) for s in container.streams))


def _declared_seconds(container: av.container.InputContainer, stream: av.stream.Stream) -> float | None:
    """The stream's declared duration; the container's only when this is its one stream (mka, webm)."""
    seconds = _seconds(stream.duration, stream.time_base)
    if seconds is None and container.duration is not None and len(container.streams) == 1:
        seconds = container.duration / av.time_base
    return seconds


def _check_complete(path: Path, decoded: float, declared: float | None) -> None:
    """Raise MediaError when far less was decodable than the container declares (a cut-off file)."""
    if declared is None:
        return
    if decoded < declared - max(TRUNCATION_SLACK[0], TRUNCATION_SLACK[1] * declared):
        raise MediaError(path, f"the file is truncated or damaged: it declares {declared:.2f} s but only "
                               f"{decoded:.2f} s could be decoded", READABLE)


# ----------------------------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------------------------

def _decode_audio(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    """First audio stream -> float32 [C, L] (C = 1 or 2) at its native rate, encoder padding removed."""
    with _open(path) as container:
        if not container.streams.audio:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise MediaError(path, f"has no audio stream (streams: {kinds})", READABLE)
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        if not rate:
            raise MediaError(path, "the audio stream has no sample rate", READABLE)
        layout = "mono" if stream.codec_context.channels == 1 else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        chunks, total = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())  # [C, n]
                total += chunks[-1].shape[1]
            check_seconds(path, total / rate, max_seconds, partial=True)
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
        declared = _declared_seconds(container, stream)
    wave = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)  # [C, L]
    if wave.shape[1] == 0:
        raise MediaError(path, "the audio stream contains no samples (zero-length audio)", READABLE)
    if declared is not None and 0 < wave.shape[1] - round(declared * rate) <= MAX_TAIL_PADDING:
        wave = wave[:, : round(declared * rate)]  # [C, L_declared]: drop the encoder's tail padding
    _check_complete(path, wave.shape[1] / rate, declared)
    check_seconds(path, wave.shape[1] / rate, max_seconds)
    return wave.astype(np.float32, copy=False), rate


def read_audio(path: str | Path, sample_rate: int | None = None, mono: bool = True, *,
               max_seconds: float = MAX_SECONDS) -> tuple[torch.Tensor, int]:
    """Read the first audio stream of any FFmpeg-readable file (wav, flac, mp3, m4a, mp4/mkv/webm track).

    Returns (wave float32 [C, L] in [-1, 1], sample_rate) with C = 1 when `mono` (mean of the channels)
    else 2 (mono sources are duplicated), resampled to `sample_rate` (None keeps the native rate).
    Raises MediaError for missing, empty, corrupt, truncated or over-long (> max_seconds) files and for
    files without audio samples.
    """
    path = Path(path)
    if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, int)
                                    or not 1000 <= sample_rate <= 384000):
        raise MediaError(path, f"requested sample_rate {sample_rate!r} is invalid",
                         "an int from 1000 to 384000, or None for the native rate")
    wave_np, native = _decode_audio(path, max_seconds)
    wave = torch.from_numpy(wave_np)  # [C, L]
    if mono and wave.shape[0] > 1:
        wave = wave.mean(dim=0, keepdim=True)  # [1, L]
    elif not mono and wave.shape[0] == 1:
        wave = wave.expand(2, -1).contiguous()  # [2, L]
    rate = native if sample_rate is None else sample_rate
    if rate != native:
        wave = torchaudio.functional.resample(wave, native, rate)  # [C, ceil(L * rate / native)]
    peak = float(wave.abs().max())
    if peak > 1.0:
        logger.info("%s: peak %.3f clipped to [-1, 1] after decoding/resampling", path, peak)
        wave = wave.clamp(-1.0, 1.0)
    return wave, rate


# ----------------------------------------------------------------------------------------------
# Video
# ----------------------------------------------------------------------------------------------

def _plan_geometry(path: Path, h: int, w: int, size: tuple[int, int] | None, grid: int | None,
                   mode: str) -> tuple[int, int, int, int]:
    """(scaled_h, scaled_w, out_h, out_w): scale the frame, then centre-crop it to (out_h, out_w)."""
    if mode not in ("crop", "resize"):
        raise MediaError(path, f"mode {mode!r} is not supported",
                         "'crop' (keep the aspect ratio) or 'resize' (stretch)")
    g = grid or 1
    if size is None:
        out_h, out_w = h // g * g, w // g * g
        if out_h == 0 or out_w == 0:
            raise MediaError(path, f"frame {w}x{h} (WxH) is smaller than the {g}-px grid",
                             f"frames at least {g}x{g} px, or pass grid=None")
        return (h, w, out_h, out_w) if mode == "crop" else (out_h, out_w, out_h, out_w)
    out_h, out_w = (int(v) for v in size)
    if out_h < g or out_w < g or out_h % g or out_w % g:
        raise MediaError(path, f"size {size} (H, W) is not a positive multiple of the grid {g}",
                         f"(height, width) multiples of {g}")
    if mode == "resize":
        return out_h, out_w, out_h, out_w
    scale = max(out_h / h, out_w / w)  # cover the target, keep the aspect ratio
    return max(out_h, round(h * scale)), max(out_w, round(w * scale)), out_h, out_w


def read_video(path: str | Path, max_frames: int | None = None, size: tuple[int, int] | None = None,
               grid: int | None = 32, mode: str = "crop", *, as_float: bool = False, min_frames: int = 1,
               max_side: int = MAX_SIDE, max_seconds: float = MAX_SECONDS) -> tuple[torch.Tensor, Fraction]:
    """Decode the first video stream: (frames [F, H, W, 3], fps as an exact Fraction).

    size=None keeps the frame and centre-crops (mode 'crop') or scales (mode 'resize') it down to a
    multiple of `grid` (None or 1: untouched). size=(H, W) (multiples of grid) scales to cover and
    centre-crops ('crop', aspect kept) or stretches ('resize'). Frames are uint8, or float32 in [0, 1]
    when `as_float`; any scaling or cropping is logged (INFO). At most `max_frames` frames are read;
    fewer than `min_frames`, a side above `max_side` or more than `max_seconds` of decoded video raise
    MediaError.
    """
    path = Path(path)
    if max_frames is not None and max_frames < 1:
        raise MediaError(path, f"max_frames={max_frames} reads nothing", "None or an int >= 1")
    with _open(path) as container:
        if not container.streams.video:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise MediaError(path, f"has no video stream (streams: {kinds})", READABLE)
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        if fps is None:
            raise MediaError(path, "the video stream has no frame rate", READABLE)
        height, width = stream.codec_context.height, stream.codec_context.width
        check_side(path, height, width, max_side)
        geometry = _plan_geometry(path, height, width, size, grid, mode)
        _note_geometry(path, height, width, geometry)
        frames = _decode_frames(path, container, stream, geometry, max_frames, max_seconds)
        if max_frames is None or len(frames) < max_frames:
            _check_complete(path, len(frames) / fps, _declared_seconds(container, stream))
    needed = max(min_frames, 1)
    if len(frames) < needed:
        raise MediaError(path, f"has {len(frames)} decodable frame(s), but {needed} are needed",
                         f"videos with at least {needed} frames")
    video = torch.from_numpy(np.stack(frames))  # [F, H, W, 3] uint8
    return (video.float() / 255.0 if as_float else video), fps


def _note_geometry(path: Path, h: int, w: int, geometry: tuple[int, int, int, int]) -> None:
    """Log (INFO) how the frames are scaled and/or cropped, when they are."""
    scaled_h, scaled_w, out_h, out_w = geometry
    steps = []
    if (scaled_h, scaled_w) != (h, w):
        steps.append(f"scaled to {scaled_w}x{scaled_h}")
    if (out_h, out_w) != (scaled_h, scaled_w):
        steps.append(f"centre-cropped to {out_w}x{out_h}")
    if steps:
        logger.info("%s: frames resized from %dx%d to %dx%d (WxH): %s", path, w, h, out_w, out_h,
                    " then ".join(steps))


def _decode_frames(path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                   geometry: tuple[int, int, int, int], max_frames: int | None,
                   max_seconds: float) -> list[np.ndarray]:
    """Decode up to max_frames frames as uint8 [H, W, 3] arrays; more than max_seconds of them is an error."""
    scaled_h, scaled_w, out_h, out_w = geometry
    fps = float(_stream_fps(stream))
    top, left = (scaled_h - out_h) // 2, (scaled_w - out_w) // 2
    frames: list[np.ndarray] = []
    for frame in container.decode(stream):
        if len(frames) == max_frames:
            break
        check_seconds(path, (len(frames) + 1) / fps, max_seconds, partial=True)
        rgb = frame.reformat(width=scaled_w, height=scaled_h, format="rgb24", interpolation="AREA")
        frames.append(rgb.to_ndarray()[top:top + out_h, left:left + out_w])  # [H, W, 3]
    return frames
