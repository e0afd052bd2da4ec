"""Conversions between ComfyUI's media values and harmony_core tensors.

ComfyUI side (comfyui.md §2): IMAGE [F, H, W, C] float in [0, 1] on `intermediate_device()`; AUDIO
{"waveform": [B, C, T] float, "sample_rate": int}; VIDEO a `VideoInput` (`get_components()` -> images,
frame_rate: Fraction, audio). harmony_core side: frames [3, F, H, W] in [-1, 1], mono wave [L] in [-1, 1].
"""

from __future__ import annotations

import logging
from fractions import Fraction

import torch
import torch.nn.functional as F
import torchaudio

import comfy.model_management as mm
from comfy_api.latest import InputImpl, Types

from ...harmony_core import timeline
from ...harmony_core.checks import require_finite

log = logging.getLogger(__name__)

CROP_MODES = ("center", "resize")


def check_finite(x: torch.Tensor, input_name: str, unit: str) -> torch.Tensor:
    """Refuse media with NaN/Inf values (a corrupt file or a broken upstream node), naming the count."""
    return require_finite(x, input_name, unit, "the media is corrupt or an upstream node failed. Re-export the "
                          "file (or fix the node that made it) and load it again")


def audio_parts(audio: object, input_name: str) -> tuple[torch.Tensor, int]:
    """An AUDIO value's (waveform, sample_rate), checked for what an AUDIO must be."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError(
            f"{input_name}: expected AUDIO ({{'waveform': [batch, channels, samples], 'sample_rate': int}}, "
            f"e.g. from Load Audio), got {type(audio).__name__}"
        )
    waveform, rate = audio["waveform"], audio["sample_rate"]
    if isinstance(rate, (int, float)) and not isinstance(rate, bool) and float(rate).is_integer():
        rate = int(rate)
    if not isinstance(waveform, torch.Tensor) or not isinstance(rate, int) or rate <= 0:
        raise ValueError(
            f"{input_name}: AUDIO needs a tensor waveform and a positive integer sample_rate, got "
            f"{type(waveform).__name__} and {rate!r}"
        )
    return waveform, rate


def _first_item(waveform: torch.Tensor, input_name: str) -> torch.Tensor:
    """[B, C, T] -> [C, T] of item 0 (noted when B > 1), finite."""
    if waveform.ndim != 3 or waveform.shape[-1] == 0:
        raise ValueError(
            f"{input_name}: expected AUDIO waveform [batch, channels, samples] with samples, "
            f"got {tuple(waveform.shape)}"
        )
    if waveform.shape[0] > 1:
        log.warning("%s: AUDIO holds %d clips; only the first is used", input_name, waveform.shape[0])
    return check_finite(waveform[0].float(), input_name, "audio samples")


def audio_to_mono(audio: dict, sample_rate: int, input_name: str = "audio") -> torch.Tensor:
    """AUDIO -> mono wave [L] at `sample_rate` (channel mean, resampled), clamped to [-1, 1]."""
    waveform, rate = audio_parts(audio, input_name)
    wave = _first_item(waveform, input_name).mean(dim=0)  # [T]
    if rate != sample_rate:
        wave = torchaudio.functional.resample(wave, rate, sample_rate)  # [T * sr / rate]
    return wave.clamp(-1.0, 1.0).cpu()


def wave_to_audio(wave: torch.Tensor, sample_rate: int) -> dict:
    """Mono wave [L] -> AUDIO {"waveform": [1, 1, L], "sample_rate"} on the CPU."""
    return {"waveform": wave.float().reshape(1, 1, -1).cpu(), "sample_rate": int(sample_rate)}


def audio_for_video(audio: dict, num_frames: int, fps: Fraction, input_name: str = "audio") -> torch.Tensor:
    """AUDIO -> [C, L] (C = 1 or 2; more channels are mixed down to mono) padded with silence or trimmed to
    exactly the duration of `num_frames` frames at `fps` (logged by timeline.fit_audio_to_video)."""
    waveform, rate = audio_parts(audio, input_name)
    wave = _first_item(waveform, input_name)  # [C, T]
    if wave.shape[0] > 2:
        log.warning("%s: %d channels mixed down to mono", input_name, wave.shape[0])
        wave = wave.mean(dim=0, keepdim=True)  # [1, T]
    fitted, _ = timeline.fit_audio_to_video(wave.cpu(), rate, num_frames, fps)
    return fitted.clamp(-1.0, 1.0)  # [C, L]


def image_frames(images: torch.Tensor, input_name: str = "images") -> torch.Tensor:
    """IMAGE [F, H, W, C>=3] in [0, 1] -> frames [3, F, H, W] in [-1, 1] (alpha dropped)."""
    if images.ndim != 4 or images.shape[-1] < 3:
        raise ValueError(
            f"{input_name}: expected IMAGE [frames, height, width, 3], got {tuple(images.shape)}"
        )
    rgb = check_finite(images[..., :3].float(), input_name, "pixel values")
    return rgb.permute(3, 0, 1, 2).mul(2.0).sub(1.0).cpu()  # [3, F, H, W]


def frames_to_image(frames: torch.Tensor) -> torch.Tensor:
    """Frames [F, H, W, 3] in [0, 1] -> IMAGE on ComfyUI's intermediate device."""
    return frames.float().clamp(0.0, 1.0).contiguous().to(mm.intermediate_device())


def video_images(video: object) -> tuple[torch.Tensor, Fraction]:
    """VIDEO -> (IMAGE [F, H, W, 3], exact frame rate)."""
    components = video.get_components()
    return components.images, timeline.as_rate(components.frame_rate, "video frame rate")


def fit_image(image: torch.Tensor, width: int, height: int, crop: str) -> torch.Tensor:
    """First IMAGE [B, H, W, C] -> [3, height, width] in [-1, 1]: 'center' scales to cover and centre-crops
    (aspect ratio kept), 'resize' stretches."""
    if crop not in CROP_MODES:
        raise ValueError(f"crop {crop!r} is not one of {CROP_MODES}")
    x = image_frames(image, "image")[:, 0][None]  # [1, 3, H, W]
    h, w = x.shape[-2:]
    if crop == "resize":
        size = (height, width)
    else:
        scale = max(height / h, width / w)
        size = (max(height, round(h * scale)), max(width, round(w * scale)))
    x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)  # [1, 3, H', W']
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return x[0, :, top : top + height, left : left + width].clamp(-1.0, 1.0)  # [3, height, width]


def make_video(images: torch.Tensor, audio: dict | None, fps: Fraction) -> object:
    """A native VIDEO (VideoFromComponents) whose audio lasts exactly as long as the frames.

    Core's writer (SaveVideo) neither pads short audio nor accepts odd sides for h264, so audio is fitted to
    the video's duration and an odd height/width is edge-padded by one pixel (logged).
    """
    frames = check_finite(images[..., :3], "images", "pixel values")
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        log.info(
            "HarmonyMux: %dx%d frames edge-padded to even sides for H.264", frames.shape[2], frames.shape[1]
        )
        frames = F.pad(frames.permute(0, 3, 1, 2), (0, pad_w, 0, pad_h), mode="replicate").permute(0, 2, 3, 1)
    track = None
    if audio is not None:
        wave = audio_for_video(audio, frames.shape[0], fps)  # [C, L]
        track = {"waveform": wave[None], "sample_rate": int(audio["sample_rate"])}
    components = Types.VideoComponents(images=frames.contiguous(), frame_rate=fps, audio=track)
    return InputImpl.VideoFromComponents(components)
