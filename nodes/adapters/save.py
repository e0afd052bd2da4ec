"""Save an mp4 into ComfyUI's output folder, named as core SaveVideo names files, written atomically.

Name: `folder_paths.get_save_image_path(prefix, output_dir, width, height)` gives the subfolder, the base name
and ComfyUI's counter (one past the highest existing `<name>_<N>_...`); the file is `<name>_<NNNNN>_.mp4`, as
SaveVideo writes. `harmony_core.media.write_mp4` encodes into a hidden temporary file and links it into place,
so an existing file is never replaced (if the name was taken meanwhile it picks `<stem>_00001.mp4`, ...) and a
failure leaves nothing behind. Metadata as SaveVideo: the workflow (extra_pnginfo) and the prompt as JSON
container tags, unless ComfyUI runs with --disable-metadata.
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction

import torch
import torchaudio

import folder_paths
from comfy.cli_args import args

from ...harmony_core.media import AAC_RATES, write_mp4
from .media import audio_for_video, check_finite

log = logging.getLogger(__name__)

FALLBACK_RATE = 48000


def metadata(prompt: object, extra_pnginfo: object) -> dict | None:
    """Container tags: extra_pnginfo's keys (the workflow) and the prompt; None with --disable-metadata."""
    if args.disable_metadata:
        return None
    tags = dict(extra_pnginfo) if isinstance(extra_pnginfo, dict) else {}
    if prompt is not None:
        tags["prompt"] = prompt
    return tags or None


def _storable(wave: torch.Tensor, rate: int) -> tuple[torch.Tensor, int]:
    """[C, L] at a rate AAC can store (others are resampled to 48 kHz, logged)."""
    if rate in AAC_RATES:
        return wave, rate
    log.info("audio at %d Hz resampled to %d Hz for AAC", rate, FALLBACK_RATE)
    return torchaudio.functional.resample(wave, rate, FALLBACK_RATE), FALLBACK_RATE


DEFAULT_PREFIX = "harmony/Harmony"


def clean_prefix(prefix: str, default: str = DEFAULT_PREFIX) -> str:
    """A file-name prefix that names a visible file: control characters (NUL, newline, ...) are refused, an
    empty prefix gets `default`, and a prefix that ends in a folder ("clips/") gets the default's file name."""
    if not isinstance(prefix, str):
        raise ValueError(f"filename_prefix: expected text, got {type(prefix).__name__}")
    bad = [i for i, ch in enumerate(prefix) if ord(ch) < 32 or ord(ch) == 127]
    if bad:
        raise ValueError(
            f"filename_prefix: {len(bad)} control character(s) (e.g. {prefix[bad[0]]!r} at position {bad[0]}); "
            "use letters, digits, spaces, '-', '_', '/' for subfolders and %date:...% values"
        )
    cleaned = prefix.strip()
    if not cleaned:
        log.info("filename_prefix is empty; using %r", default)
        return default
    folder, _, name = cleaned.replace("\\", "/").rpartition("/")
    if not name.strip(" ."):
        fixed = f"{folder}/{default.rpartition('/')[2]}" if folder else default
        log.info("filename_prefix %r names no file; using %r", prefix, fixed)
        return fixed
    return cleaned


def save_mp4(
    images: torch.Tensor, audio: dict | None, fps: Fraction, filename_prefix: str, tags: dict | None
) -> tuple[str, str]:
    """Write IMAGE [F, H, W, 3] (+ AUDIO) as an mp4 in the output folder; returns (file name, subfolder)."""
    check_finite(images[..., :3], "images", "pixel values")
    height, width = int(images.shape[1]), int(images.shape[2])
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        clean_prefix(filename_prefix), folder_paths.get_output_directory(), width, height
    )
    wave, rate = None, None
    if audio is not None:
        wave, rate = _storable(audio_for_video(audio, images.shape[0], fps), int(audio["sample_rate"]))
    target = os.path.join(folder, f"{name}_{counter:05}_.mp4")
    written = write_mp4(
        target,
        images[..., :3].float().cpu(),
        fps,
        audio=wave,
        sample_rate=rate,
        metadata=tags,
        overwrite=False,
    )
    return written.name, subfolder
