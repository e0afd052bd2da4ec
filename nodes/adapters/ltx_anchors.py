"""SyncCFG anchors for ComfyUI's LTX-2.x latents, encoded with the user's own VAEs, cached per VAE and shape.

- Mute audio: the audio VAE's encoding of an all-zero waveform as long as the clip. LTX's audio VAE turns
  silence into a constant log-mel floor, log(1e-5), and normalizes the latent per channel, so the zero
  *latent* (LTXVEmptyLatentAudio) is the per-channel mean, not silence. A longer zero waveform is encoded and
  cut: the encoder is causal in time, so the cut equals the encoding of the exact length.
- Static video: one picture held for every frame, encoded as a whole clip. The causal video VAE encodes pixel
  frame 0 alone and each later latent frame from 8 pixel frames, so a tiled latent frame 0 is not a static
  clip. The picture is the user's image, or frame 0 of the clip decoded (`frame0_images`).

Anchors are raw (VAE space, as LATENT "samples" hold them), [1, C, ...] on ComfyUI's intermediate device.
The cache holds a few anchors per VAE and is dropped with the VAE (weak keys).
"""

from __future__ import annotations

import hashlib
import logging
import math
import weakref
from collections import OrderedDict
from collections.abc import Callable

import torch

import comfy.model_management
import comfy.utils

log = logging.getLogger(__name__)

_PER_VAE = 4  # anchors kept per VAE (least recently used dropped)
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # VAE -> OrderedDict[key, Tensor]
_PAD_SAMPLES = 8192  # > the audio VAE's input crop (its 4096-sample downscale ratio) plus a latent or two


def _cached(vae: object, key: tuple, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    entries = _CACHE.get(vae)
    if entries is None:
        entries = _CACHE[vae] = OrderedDict()
    if key in entries:
        entries.move_to_end(key)
        return entries[key]
    value = build()
    entries[key] = value
    while len(entries) > _PER_VAE:
        entries.popitem(last=False)
    return value


def check_audio_vae(audio_vae: object) -> None:
    """Raise unless `audio_vae` is ComfyUI's LTX audio VAE (it knows its latent rate)."""
    model = getattr(audio_vae, "first_stage_model", None)
    if getattr(model, "latents_per_second", None) is None or not hasattr(audio_vae, "audio_sample_rate"):
        raise ValueError("audio_vae: connect the LTX-2 audio VAE (Load LTXV Audio VAE / LTXVAudioVAELoader); "
                         f"got {type(model).__name__}")


def check_video_vae(vae: object) -> None:
    """Raise unless `vae` is a video VAE with a (time, height, width) downscale (LTX-2: 8, 32, 32)."""
    formula = getattr(vae, "downscale_index_formula", None)
    if getattr(vae, "latent_dim", None) != 3 or formula is None or len(formula) != 3:
        raise ValueError("vae: connect the LTX-2 video VAE (the VAE output of Load Checkpoint); got "
                         f"{type(getattr(vae, 'first_stage_model', vae)).__name__}")


def mute_audio(audio_vae: object, shape: tuple[int, int, int]) -> torch.Tensor:
    """The encoding of silence, [1, Ca, Ta, F] for an audio stream of `shape` (Ca, Ta, F)."""
    check_audio_vae(audio_vae)
    return _cached(audio_vae, ("mute", tuple(shape)), lambda: _encode_silence(audio_vae, shape))


def _encode_silence(audio_vae: object, shape: tuple[int, int, int]) -> torch.Tensor:
    channels, length, bins = shape
    rate = audio_vae.audio_sample_rate  # the rate VAE.encode assumes for the waveform it is given
    per_second = audio_vae.first_stage_model.latents_per_second
    samples = math.ceil(length * rate / per_second) + _PAD_SAMPLES
    with torch.no_grad():
        latent = audio_vae.encode(torch.zeros(1, samples, 1))  # waveform [B, samples, channels] -> [1, Ca, T, F]
    if (latent.shape[1], latent.shape[3]) != (channels, bins) or latent.shape[2] < length:
        raise ValueError(f"audio_vae: it encodes {samples} samples of silence to {tuple(latent.shape[1:])}, which "
                         f"does not fit the audio stream ({channels}, {length}, {bins}); connect the audio VAE "
                         "of this model")
    log.info("HarmonySyncCFGGuider: mute-audio anchor encoded (%d latent frames)", length)
    return latent[:, :, :length].float().to(comfy.model_management.intermediate_device())


def static_video(vae: object, image: torch.Tensor, shape: tuple[int, int, int, int]) -> torch.Tensor:
    """`image` [N, H, W, C] (the first one) held still, encoded: [1, Cv, T, h, w] for `shape` (Cv, T, h, w)."""
    check_video_vae(vae)
    channels, frames, height, width = shape
    t_scale, h_scale, w_scale = vae.downscale_index_formula
    pixels = fit_image(image[:1, :, :, :3], height * h_scale, width * w_scale)  # [1, H, W, 3]
    key = ("static", tuple(shape), _fingerprint(pixels))
    return _cached(vae, key, lambda: _encode_still(vae, pixels, (frames - 1) * t_scale + 1, shape))


def _encode_still(vae: object, pixels: torch.Tensor, frames: int, shape: tuple) -> torch.Tensor:
    clip = pixels.expand(frames, -1, -1, -1)  # [F, H, W, 3]: the picture for every frame
    with torch.no_grad():
        latent = vae.encode(clip)  # [1, Cv, T, h, w]
    if tuple(latent.shape[1:]) != tuple(shape):
        raise ValueError(f"vae: a {frames}-frame still encodes to {tuple(latent.shape[1:])}, not the video "
                         f"stream's {tuple(shape)}; connect the video VAE of this model")
    log.info("HarmonySyncCFGGuider: static-video anchor encoded (%d frames)", frames)
    return latent.float().to(comfy.model_management.intermediate_device())


def fit_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N, H', W', C] resized (bilinear, centre crop) to [N, height, width, C], as LTXVImgToVideoInplace does."""
    if image.shape[1:3] == (height, width):
        return image
    resized = comfy.utils.common_upscale(image.movedim(-1, 1), width, height, "bilinear", "center")
    return resized.movedim(1, -1)


def frame0_images(vae: object, video: torch.Tensor) -> torch.Tensor:
    """Pixel frame 0 of each clip of a raw video latent [B, Cv, T, h, w]: IMAGE [B, H, W, 3]."""
    check_video_vae(vae)
    with torch.no_grad():
        pixels = vae.decode(video[:, :, :1])  # latent frame 0 decodes to pixel frame 0: [B, 1, H, W, 3]
    return pixels.reshape(video.shape[0], *pixels.shape[-3:]).float()


def _fingerprint(pixels: torch.Tensor) -> str:
    data = pixels.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()
