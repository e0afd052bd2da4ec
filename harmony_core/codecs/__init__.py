"""Codecs behind one interface (`base.py`): Wan2.2 VAE, MMAudio mel + VAE + BigVGAN, and the demo codecs.

Heavy modules are imported on use; `registry.build_video_codec` / `build_audio_codec` build what a
checkpoint's config names.
"""
from .base import AudioCodec, VideoCodec
from .registry import build_audio_codec, build_video_codec

__all__ = ["AudioCodec", "VideoCodec", "build_audio_codec", "build_video_codec"]
