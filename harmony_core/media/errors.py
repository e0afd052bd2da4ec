"""The one error type of media I/O, and the documented limits it enforces.

Every bad input (missing, empty, corrupt, truncated or unsupported file; zero-length audio; too few
frames; absurd sizes; over-long clips; malformed arrays) raises `MediaError`, a `ValueError` whose
message names the file and says what is accepted. Writers raise it before anything reaches the disk.
"""
from __future__ import annotations

from pathlib import Path

from ..timeline import MAX_SECONDS  # the longest accepted clip, read and write

MAX_SIDE = 4096        # pixels: the longest accepted frame side (a 4K DCI frame), read and write
READABLE = "audio: wav, flac, mp3, m4a/aac, ogg/opus; video: mp4, mkv, webm, mov (any file FFmpeg decodes)"


class MediaError(ValueError):
    """Bad media input or output request. The message names the file and what is accepted."""

    def __init__(self, path: str | Path | None, problem: str, accepted: str = ""):
        where = f"{path}: " if path is not None else ""
        tail = f" Accepted: {accepted}." if accepted else ""
        super().__init__(f"{where}{problem}.{tail}")
        self.path = None if path is None else Path(path)
        self.problem = problem


def check_side(path: str | Path | None, height: int, width: int, max_side: int = MAX_SIDE) -> None:
    """Raise MediaError unless 1 <= height, width <= max_side."""
    if min(height, width) < 1 or max(height, width) > max_side:
        raise MediaError(path, f"frame size {width}x{height} (WxH) is out of range",
                         f"sides from 1 to {max_side} px (raise max_side to allow more)")


def check_seconds(path: str | Path | None, seconds: float, max_seconds: float = MAX_SECONDS,
                  partial: bool = False) -> None:
    """Raise MediaError when a clip lasts longer than max_seconds (`partial`: decoding stopped early)."""
    if seconds > max_seconds:
        lasts = "at least " if partial else ""
        raise MediaError(path, f"the clip lasts {lasts}{seconds:.2f} s, longer than the limit",
                         f"clips up to {max_seconds:g} s (raise max_seconds to allow more)")
