"""Build the codecs a checkpoint names in its config (`HarmonyConfig.codecs`).

Demo codecs carry their whole config (no weights). Real codecs are named by a string and need files:
"wan2.2-vae" (Wan2.2_VAE as safetensors), "mmaudio-16k" / "mmaudio-44k" (MMAudio VAE + vocoder),
"uniavgen-24k" (UniAVGen's 24 kHz mel, no VAE, + the Qwen2.5-Omni BigVGAN vocoder).
"""
from __future__ import annotations

import os
from typing import Any

from .base import AudioCodec, VideoCodec

REAL_VIDEO = ("wan2.2-vae",)
REAL_AUDIO = ("mmaudio-16k", "mmaudio-44k", "uniavgen-24k")


def build_video_codec(spec: Any, path: str | os.PathLike | None = None) -> VideoCodec:
    if isinstance(spec, dict):
        from .demo import demo_codec_from_config
        codec = demo_codec_from_config(spec)
        if not isinstance(codec, VideoCodec):
            raise ValueError(f"codec config {spec} is not a video codec")
        return codec
    if spec == "wan2.2-vae":
        if path is None:
            raise ValueError("this model decodes video with the Wan2.2 VAE: give its file (Wan2.2_VAE as "
                             ".safetensors, e.g. models/vae/wan2.2_vae.safetensors)")
        from .wan.codec import WanVideoCodec
        return WanVideoCodec.load(path)
    raise ValueError(f"unknown video codec {spec!r}; accepted: a demo codec config or one of {REAL_VIDEO}")


def build_audio_codec(spec: Any, vae_path: str | os.PathLike | None = None,
                      vocoder_path: str | os.PathLike | None = None) -> AudioCodec:
    if isinstance(spec, dict):
        from .demo import demo_codec_from_config
        codec = demo_codec_from_config(spec)
        if not isinstance(codec, AudioCodec):
            raise ValueError(f"codec config {spec} is not an audio codec")
        return codec
    if spec == "uniavgen-24k":
        return _uniavgen_codec(vae_path, vocoder_path)
    if spec in REAL_AUDIO:
        if vae_path is None or vocoder_path is None:
            raise ValueError(f"this model uses the {spec} audio codec: give the MMAudio VAE and the BigVGAN "
                             "vocoder files (.safetensors)")
        from .mmaudio.codec import MMAudioCodec
        return MMAudioCodec.load(vae_path, vocoder_path, mode=spec.split("-")[1])
    raise ValueError(f"unknown audio codec {spec!r}; accepted: a demo codec config or one of {REAL_AUDIO}")


def _uniavgen_codec(vae_path: str | os.PathLike | None, vocoder_path: str | os.PathLike | None) -> AudioCodec:
    """UniAVGen's codec: its latent is the normalised mel itself, so only the vocoder file is read."""
    if vae_path is not None:
        raise ValueError("the uniavgen-24k audio codec has no audio VAE (its latent is the normalised mel): "
                         "give only the vocoder (the code2wav_bigvgan_model folder or its model.safetensors)")
    if vocoder_path is None:
        raise ValueError("this model uses the uniavgen-24k audio codec: give its vocoder, the Qwen2.5-Omni "
                         "code2wav_bigvgan_model folder converted to safetensors (or its model.safetensors)")
    from .uniavgen.codec import UniAVGenAudioCodec
    return UniAVGenAudioCodec.load(vocoder_path)
