"""What the e2e tests check in an output clip, and the workflow thumbnails, with PyAV only."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


@dataclass(frozen=True)
class ClipSummary:
    """Streams of an mp4 and the durations of its video and audio, from the container and from decoding."""

    video_streams: int
    audio_streams: int
    fps: Fraction
    frames: int
    video_seconds: float   # decoded frames / fps
    audio_seconds: float   # the audio stream's declared duration (encoder priming/padding excluded)
    decoded_audio_seconds: float
    width: int
    height: int


def summarize(path: Path) -> ClipSummary:
    """Count streams, decode every frame and audio sample of the first streams."""
    with av.open(str(path)) as container:
        videos = [s for s in container.streams if s.type == "video"]
        audios = [s for s in container.streams if s.type == "audio"]
        if not videos or not audios:
            return ClipSummary(len(videos), len(audios), Fraction(0), 0, 0.0, 0.0, 0.0, 0, 0)
        video, audio = videos[0], audios[0]
        fps = Fraction(video.average_rate)
        frames = sum(1 for _ in container.decode(video=0))
        declared = float(audio.duration * audio.time_base) if audio.duration else float("nan")
        width, height = video.codec_context.width, video.codec_context.height
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
        rate = container.streams.audio[0].rate
    return ClipSummary(len(videos), len(audios), fps, frames, float(frames / fps), declared, samples / rate,
                       width, height)


def write_thumbnail(clip: Path, target: Path, side: int = 256) -> Path:
    """A JPEG of the clip's middle frame scaled to side x side (PyAV's mjpeg encoder, no PIL)."""
    with av.open(str(clip)) as container:
        frames = list(container.decode(video=0))
    middle = frames[len(frames) // 2]
    frame = middle.reformat(width=side, height=side, format="yuvj420p", interpolation="BICUBIC")
    with av.open(str(target), mode="w", format="image2") as out:
        stream = out.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = side, side, "yuvj420p"
        stream.codec_context.qmin, stream.codec_context.qmax = 2, 4
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return target
