"""Write mp4 (H.264 yuv420p BT.709 + AAC) and wav files with PyAV, atomically and never over a file.

Every argument is checked before the disk is touched. The file is encoded into a hidden temporary file
in the target folder (`.name.<random>.tmp.mp4`) and then linked into place under a free name
(`name.mp4`, else `name_00001.mp4`, ...), so a crash leaves no half-written output and an existing file is
never replaced unless `overwrite=True` (then an atomic `os.replace`).

Lengths: the AAC track is padded with silence or trimmed to exactly the video's duration
(`timeline.fit_audio_to_video`, logged). AAC itself adds 1024 samples of encoder priming (removed on decode
through the mp4 edit list) and pads the last 1024-sample frame with silence; the edit list stores the
true length (to the movie's millisecond timescale), which `read.read_audio` honours.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import secrets
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
import torch
from av.video.reformatter import Colorspace

from .. import cancel
from ..timeline import as_rate, fit_audio_to_video, frames_duration, samples_for_frames
from .errors import MAX_SECONDS, MAX_SIDE, MediaError, check_seconds, check_side

logger = logging.getLogger(__name__)

H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_mf", "h264_nvenc", "h264_qsv",
                 "h264_amf")  # in order of preference; the first that opens is used
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
AAC_FRAME = 1024  # samples per AAC-LC frame
BT709 = 1         # AVCOL_PRI/TRC/SPC_BT709
MPEG_RANGE = 1    # AVCOL_RANGE_MPEG (limited range, what players expect from yuv420p)

Array = np.ndarray | torch.Tensor


@functools.lru_cache(maxsize=None)
def h264_encoder() -> str:
    """Name of the first H.264 encoder of this PyAV build that opens (libx264 preferred)."""
    tried = []
    for name in H264_ENCODERS:
        if name not in av.codecs_available:
            continue
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 64, 64, "yuv420p", Fraction(1, 25)
        try:
            ctx.open()
            return name
        except (av.error.FFmpegError, OSError, ValueError) as err:
            tried.append(f"{name} ({err})")
    raise MediaError(None, "this PyAV/FFmpeg build has no usable H.264 encoder (tried: "
                           f"{', '.join(tried) or 'none present'})",
                     "a PyAV build with libx264 or libopenh264, e.g. the PyPI wheels (`pip install av`)")


# ----------------------------------------------------------------------------------------------
# Checking and cleaning the inputs (nothing touches the disk here)
# ----------------------------------------------------------------------------------------------

def _to_numpy(x: Array) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.is_floating_point() else x).numpy()
    return np.asarray(x)


def _sanitize(x: np.ndarray, lo: float, hi: float, what: str, path: Path) -> np.ndarray:
    """Replace NaN by 0 and +-Inf by the bounds, clamp to [lo, hi]; warn with counts when anything changed."""
    x = x.astype(np.float32, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    x = np.nan_to_num(x, nan=0.0, posinf=hi, neginf=lo)
    outside = int(np.count_nonzero((x < lo) | (x > hi)))
    if bad or outside:
        logger.warning("%s: %s had %d NaN/Inf value(s) (set to 0 / the bounds) and %d value(s) outside "
                       "[%g, %g] (clamped)", path, what, bad, outside, lo, hi)
    return np.clip(x, lo, hi)


def prepare_frames(frames: Array, path: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """[F, H, W, 3] uint8, or float in [0, 1] -> uint8 [F, H', W', 3], odd sides padded to even (edge)."""
    x = _to_numpy(frames)
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] < 1:
        raise MediaError(path, f"frames have shape {tuple(x.shape)}", "[F >= 1, H, W, 3] RGB frames")
    check_side(path, x.shape[1], x.shape[2], max_side)
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.floating):
            raise MediaError(path, f"frames have dtype {x.dtype}", "uint8 (0..255) or float (0..1)")
        x = np.round(_sanitize(x, 0.0, 1.0, "frames", path) * 255.0).astype(np.uint8)
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
    if pad_h or pad_w:
        logger.info("%s: %dx%d (WxH) padded to %dx%d by edge replication (yuv420p needs even sides)",
                    path, x.shape[2], x.shape[1], x.shape[2] + pad_w, x.shape[1] + pad_h)
        x = np.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")  # [F, H', W', 3]
    return np.ascontiguousarray(x)


def _check_rate(sample_rate: int | None, path: Path, rates: tuple[int, ...] | None) -> None:
    if sample_rate is None:
        raise MediaError(path, "audio was given without a sample_rate", "an int sample rate in Hz")
    if rates is not None and sample_rate not in rates:
        raise MediaError(path, f"sample rate {sample_rate!r} cannot be stored", f"one of {rates} Hz")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or not 1000 <= sample_rate <= 384000:
        raise MediaError(path, f"sample rate {sample_rate!r} is invalid", "an int from 1000 to 384000 Hz")


def prepare_audio(audio: Array, sample_rate: int | None, path: Path,
                  rates: tuple[int, ...] | None = None) -> np.ndarray:
    """[C, L] or [L] float wave (C = 1 or 2) -> float32 [C, L] in [-1, 1]; checks the sample rate."""
    _check_rate(sample_rate, path, rates)
    x = _to_numpy(audio)
    x = x[None] if x.ndim == 1 else x  # [C, L]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise MediaError(path, f"audio has shape {tuple(_to_numpy(audio).shape)}",
                         "[L] or [C, L] with C = 1 or 2")
    if x.shape[1] == 0:
        raise MediaError(path, "the audio has zero samples", "audio with at least one sample")
    if not np.issubdtype(x.dtype, np.floating):
        raise MediaError(path, f"audio has dtype {x.dtype}", "float samples in [-1, 1]")
    return np.ascontiguousarray(_sanitize(x, -1.0, 1.0, "audio", path))


def _check_metadata(metadata: dict | None, path: Path) -> dict[str, str]:
    """Metadata -> {str: str}; non-string values are stored as JSON (e.g. prompt/workflow dicts)."""
    out = {}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not key:
            raise MediaError(path, f"metadata key {key!r} is not a non-empty string", "dict[str, str | JSON]")
        try:
            out[key] = value if isinstance(value, str) else json.dumps(value)
        except (TypeError, ValueError) as err:
            raise MediaError(path, f"metadata[{key!r}] is not JSON-serialisable ({err})",
                             "strings or JSON-serialisable values") from err
    return out


# ----------------------------------------------------------------------------------------------
# Target names and the atomic commit
# ----------------------------------------------------------------------------------------------

def resolve_target(path_or_dir: str | Path, suffix: str, name_prefix: str) -> tuple[Path, bool]:
    """(target path, counted). A folder (existing, or a path without suffix) gets `<prefix>_00001<suffix>`."""
    p = Path(path_or_dir)
    bad = [ch for ch in str(p) if ord(ch) < 32 or ord(ch) == 127]
    if bad:  # FFmpeg would cut the name at a NUL and write a stray file under the shortened name
        raise MediaError(p, f"the path holds {len(bad)} control character(s) ({bad[0]!r})",
                         "a path of printable characters")
    if p.is_dir() or not p.suffix:
        return p / f"{name_prefix}_00001{suffix}", True
    if p.suffix.lower() != suffix:
        raise MediaError(p, f"the file extension {p.suffix!r} does not match the format",
                         f"a path ending in {suffix}, or a folder")
    if p.parent.exists() and not p.parent.is_dir():
        raise MediaError(p, f"{p.parent} is not a folder", "a path inside a folder")
    return p, False


def _candidates(target: Path, counted: bool) -> Iterator[Path]:
    """target, then stem_00001, stem_00002, ... (a counted target is already stem_00001)."""
    stem = target.stem[:-6] if counted else target.stem
    if not counted:
        yield target
    for i in range(1, 100000):
        yield target.with_name(f"{stem}_{i:05d}{target.suffix}")


def _commit(tmp: Path, target: Path, counted: bool, overwrite: bool) -> Path:
    """Move the finished temporary file into place; never replaces a file unless `overwrite`."""
    if overwrite:
        os.replace(tmp, target)
        return target
    for candidate in _candidates(target, counted):
        try:
            os.link(tmp, candidate)  # atomic, fails if the name exists
            return candidate
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system: check, then rename
            if not candidate.exists():
                os.replace(tmp, candidate)
                return candidate
    raise MediaError(target, "no free file name is left (99999 numbered files exist)", "a new folder or name")


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders (innermost first) while they are empty."""
    for folder in folders:
        if any(folder.iterdir()):
            return
        folder.rmdir()


def write_atomically(target: Path, counted: bool, overwrite: bool, encode: Callable[[Path], None]) -> Path:
    """Run `encode(tmp_path)` on a hidden file beside `target`, then commit it.

    No temporary file survives, and folders created for the target are removed again when encoding fails.
    """
    new_folders = [d for d in (target.parent, *target.parent.parents) if not d.exists()]  # innermost first
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
    done = False
    try:
        try:
            encode(tmp)
        except av.error.FFmpegError as err:
            raise MediaError(target, f"encoding failed ({err})", "see the FFmpeg message") from err
        written = _commit(tmp, target, counted, overwrite)
        done = True
        return written
    finally:
        tmp.unlink(missing_ok=True)
        if not done:
            _remove_empty(new_folders)


# ----------------------------------------------------------------------------------------------
# Encoders
# ----------------------------------------------------------------------------------------------

def _audio_frame(wave: np.ndarray, start: int, stop: int, sample_rate: int, layout: str) -> av.AudioFrame:
    chunk = np.ascontiguousarray(wave[:, start:stop])  # [C, stop - start]
    frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = sample_rate, start, Fraction(1, sample_rate)
    return frame


def _encode_mp4(tmp: Path, frames: np.ndarray, fps: Fraction, audio: np.ndarray | None, sample_rate: int,
                metadata: dict[str, str], encoder: str) -> None:
    """Encode uint8 [F, H, W, 3] frames (+ float32 [C, L] audio) into `tmp`, interleaved in time.

    With audio, the movie timescale is the sample rate so the edit lists store lengths to the sample.
    """
    options = {"movflags": "use_metadata_tags+faststart"}
    if audio is not None:
        options["movie_timescale"] = str(sample_rate)
    with av.open(str(tmp), mode="w", format="mp4", options=options) as out:
        out.metadata.update(metadata)
        video = out.add_stream(encoder, rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        ctx = video.codec_context
        ctx.time_base = 1 / fps
        ctx.colorspace = ctx.color_primaries = ctx.color_trc = BT709
        ctx.color_range = MPEG_RANGE
        if encoder == "libx264":
            ctx.options = {"crf": "18", "preset": "medium"}
        if audio is not None:
            layout = "mono" if audio.shape[0] == 1 else "stereo"
            sound = out.add_stream("aac", rate=sample_rate, layout=layout)
        sent = 0
        for i, rgb in enumerate(frames):
            cancel.check()
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace=Colorspace.ITU709)
            frame.pts, frame.time_base = i, ctx.time_base
            out.mux(video.encode(frame))
            if audio is None:
                continue
            end = audio.shape[1] if i == len(frames) - 1 else samples_for_frames(i + 1, fps, sample_rate)
            while sent < end:  # whole AAC frames up to this video frame's end; the last one may be short
                stop = min(sent + AAC_FRAME, audio.shape[1])
                out.mux(sound.encode(_audio_frame(audio, sent, stop, sample_rate, layout)))
                sent = stop
        out.mux(video.encode(None))
        if audio is not None:
            out.mux(sound.encode(None))


def write_mp4(path_or_dir: str | Path, frames: Array, fps: Fraction | int | float | str,
              audio: Array | None = None, sample_rate: int | None = None, *, overwrite: bool = False,
              metadata: dict | None = None, name_prefix: str = "harmony") -> Path:
    """Write frames [F, H, W, 3] (uint8, or float in [0, 1]) and optional audio [C, L] / [L] as an mp4.

    H.264 yuv420p BT.709 (odd sides edge-padded to even) + AAC (mono/stereo at one of `AAC_RATES`),
    audio padded/trimmed to the video's exact duration (logged), NaN/Inf replaced and values clamped
    (warned). `metadata` values (strings, or JSON for anything else) go into the container tags.
    `path_or_dir`: a `.mp4` path, or a folder (then `<name_prefix>_00001.mp4`, ...). Returns the path
    written, which differs from the one asked for when that name was taken (`name_00001.mp4`, ...).
    """
    target, counted = resolve_target(path_or_dir, ".mp4", name_prefix)
    try:
        rate = as_rate(fps, "fps")
    except ValueError as err:
        raise MediaError(target, str(err), "fps > 0, e.g. 25, 12.5 or Fraction(30000, 1001)") from err
    video = prepare_frames(frames, target, MAX_SIDE)
    check_seconds(target, float(frames_duration(len(video), rate)), MAX_SECONDS)
    wave = None
    if audio is not None:
        wave = prepare_audio(audio, sample_rate, target, AAC_RATES)
        wave = fit_audio_to_video(torch.from_numpy(wave), sample_rate, len(video), rate)[0].numpy()
    tags = _check_metadata(metadata, target)
    encoder = h264_encoder()

    def encode(tmp: Path) -> None:
        _encode_mp4(tmp, video, rate, wave, sample_rate or 0, tags, encoder)

    written = write_atomically(target, counted, overwrite, encode)
    logger.info("wrote %s: %d frames %dx%d @ %s fps%s", written, len(video), video.shape[2], video.shape[1],
                rate, "" if wave is None else f", {wave.shape[0]} ch AAC @ {sample_rate} Hz")
    return written


def write_wav(path_or_dir: str | Path, audio: Array, sample_rate: int, *, overwrite: bool = False,
              metadata: dict | None = None, name_prefix: str = "harmony",
              max_seconds: float = MAX_SECONDS) -> Path:
    """Write audio [C, L] / [L] (C = 1 or 2, float in [-1, 1]) as 16-bit PCM wav, atomically.

    NaN/Inf and out-of-range samples are replaced/clamped with a warning. `metadata` goes into the
    RIFF INFO tags that FFmpeg knows (e.g. title, comment, artist); other keys are dropped by the muxer.
    """
    target, counted = resolve_target(path_or_dir, ".wav", name_prefix)
    wave = prepare_audio(audio, sample_rate, target)
    check_seconds(target, wave.shape[1] / sample_rate, max_seconds)
    tags = _check_metadata(metadata, target)
    layout = "mono" if wave.shape[0] == 1 else "stereo"

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), mode="w", format="wav") as out:
            out.metadata.update(tags)
            stream = out.add_stream("pcm_s16le", rate=sample_rate, layout=layout)
            out.mux(stream.encode(_audio_frame(wave, 0, wave.shape[1], sample_rate, layout)))
            out.mux(stream.encode(None))

    return write_atomically(target, counted, overwrite, encode)
