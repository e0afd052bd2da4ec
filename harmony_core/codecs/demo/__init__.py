"""Light demo codecs for the bundled demo model: fixed transforms, no learned weights, fast on CPU.

- `DemoVideoCodec` (video.py): causal 4x8x8 block DCT, 16 channels by default, Wan2.2's frame timeline.
- `DemoAudioCodec` (audio.py): 16 kHz log-mel (32 bands x 2 frames = 64 channels) + Griffin-Lim,
  512 samples per latent like MMAudio 16k.

A checkpoint names its codecs with `codec.to_config()` in its metadata; `demo_codec_from_config` rebuilds
them.
"""
from __future__ import annotations

from typing import Any

from ..base import AudioCodec, VideoCodec
from .audio import DemoAudioCodec, DemoAudioConfig
from .video import DemoVideoCodec, DemoVideoConfig

__all__ = [
    "DemoAudioCodec", "DemoAudioConfig", "DemoVideoCodec", "DemoVideoConfig", "demo_codec_from_config",
]

_BY_NAME: dict[str, type[DemoVideoCodec] | type[DemoAudioCodec]] = {
    DemoVideoCodec.name: DemoVideoCodec,
    DemoAudioCodec.name: DemoAudioCodec,
}


def demo_codec_from_config(config: dict[str, Any]) -> VideoCodec | AudioCodec:
    """Builds the demo codec a `to_config()` dict names ("demo_video" or "demo_audio")."""
    name = config.get("name")
    if name not in _BY_NAME:
        raise ValueError(f"not a demo codec config: name={name!r}; accepted names: {sorted(_BY_NAME)}.")
    return _BY_NAME[name].from_config(config)
