"""Generation modes as data: which latent frames are generated and which are held clean.

Harmony trains one model on three tasks (arXiv 2511.21579 §3.2): joint generation (both modalities noised
at the same t), audio-driven video (clean audio, t_a = 0) and video-driven audio (clean video, t_v = 0). A
mode is therefore not a code path but a `ModeSpec`: per modality a hold mask over latent frames
(1 = generated, 0 = held clean) and the clean latent the held frames take. The per-frame noise level the
model sees is mask * sigma_k, so held frames sit at sigma 0. A reference image is latent frame 0 of the
video held clean (Wan2.2-TI2V: the causal VAE encodes pixel frame 0 alone into latent frame 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .solvers import AV, per_frame


def _check_modality(name: str, mask: torch.Tensor, clean: torch.Tensor | None, ndim: int) -> None:
    if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
        raise ValueError(f"{name}_mask must be a tensor [B or 1, T] over latent frames, got "
                         f"{getattr(mask, 'shape', type(mask).__name__)}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name}_mask accepts only 0 (held clean) and 1 (generated)")
    if clean is None:
        if not bool(mask.all()):
            raise ValueError(f"{name}_mask holds frames but {name}_clean is None: give the clean latent")
        return
    if clean.ndim != ndim or clean.shape[2] != mask.shape[1]:
        raise ValueError(f"{name}_clean must be [B or 1, C, T, ...] with {ndim} dims and T = {mask.shape[1]} "
                         f"(the mask's length), got {tuple(clean.shape)}")


def _check_latent(name: str, lat: torch.Tensor, mask: torch.Tensor, clean: torch.Tensor | None, ndim: int,
                  mode: str) -> None:
    if lat.ndim != ndim or lat.shape[2] != mask.shape[1] or mask.shape[0] not in (1, lat.shape[0]):
        raise ValueError(f"{name} latent {tuple(lat.shape)} does not fit the {mode!r} mode: need "
                         f"{ndim} dims, T = {mask.shape[1]} and a batch matching the mask's {mask.shape[0]} "
                         f"(or a mask of batch 1)")
    if clean is not None and (clean.shape[1:] != lat.shape[1:] or clean.shape[0] not in (1, lat.shape[0])):
        raise ValueError(f"clean {name} latent {tuple(clean.shape)} does not match the generated {name} "
                         f"latent {tuple(lat.shape)} (batch may be 1)")


@dataclass(frozen=True, eq=False)
class ModeSpec:
    """One generation's mode. Masks are [B|1, T] (1 = generated, 0 = held); clean latents are
    video [B|1, Cv, Tv, h, w], audio [B|1, Ca, Ta] (None when nothing of that modality is held)."""

    name: str
    video_mask: torch.Tensor
    audio_mask: torch.Tensor
    video_clean: torch.Tensor | None = None
    audio_clean: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _check_modality("video", self.video_mask, self.video_clean, 5)
        _check_modality("audio", self.audio_mask, self.audio_clean, 3)

    @property
    def generates_video(self) -> bool:
        """True when at least one video latent frame is generated."""
        return bool(self.video_mask.any())

    @property
    def generates_audio(self) -> bool:
        """True when at least one audio latent frame is generated."""
        return bool(self.audio_mask.any())

    def check_latents(self, x: AV) -> None:
        """Raise a clear error when latents [B, Cv, Tv, h, w] / [B, Ca, Ta] do not fit this mode."""
        _check_latent("video", x.video, self.video_mask, self.video_clean, 5, self.name)
        _check_latent("audio", x.audio, self.audio_mask, self.audio_clean, 3, self.name)

    def token_sigmas(self, sigma: float, x: AV) -> AV:
        """Per-frame noise levels mask * sigma for latents `x`: video [B, Tv], audio [B, Ta], float32."""
        def one(mask: torch.Tensor, lat: torch.Tensor) -> torch.Tensor:
            m = mask.to(device=lat.device, dtype=torch.float32)
            return (m * sigma).expand(lat.shape[0], -1)  # [B, T]
        return AV(one(self.video_mask, x.video), one(self.audio_mask, x.audio))

    def impose(self, x: AV) -> AV:
        """Put the clean latent back on every held frame (torch.where: bit-exact)."""
        def one(lat: torch.Tensor, mask: torch.Tensor, clean: torch.Tensor | None) -> torch.Tensor:
            if clean is None:
                return lat
            held = per_frame(mask.to(lat.device) == 0, lat)  # [B|1, 1, T, 1...]
            return torch.where(held, clean.to(device=lat.device, dtype=lat.dtype), lat)
        return AV(one(x.video, self.video_mask, self.video_clean),
                  one(x.audio, self.audio_mask, self.audio_clean))


def _video_hold(video_frames: int,
                reference: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Clean video latent and mask holding `reference` [B|1, Cv, k, h, w] on latent frames 0..k-1."""
    if reference is None:
        return None, torch.ones(1, video_frames)
    if reference.ndim != 5 or not 1 <= reference.shape[2] <= video_frames:
        raise ValueError(f"reference must be a clean video latent [B or 1, Cv, k, h, w] with 1 <= k <= "
                         f"{video_frames} frames (k = 1: a reference image), got {tuple(reference.shape)}")
    k = reference.shape[2]
    b, c, _, h, w = reference.shape
    clean = reference.new_zeros(b, c, video_frames, h, w)  # [B|1, Cv, Tv, h, w]
    clean[:, :, :k] = reference
    mask = torch.ones(1, video_frames, device=reference.device)
    mask[:, :k] = 0
    return clean, mask


def joint(video_frames: int, audio_frames: int, reference: torch.Tensor | None = None) -> ModeSpec:
    """Joint audio + video generation; optional `reference` video latent held on the first latent frame(s)."""
    clean, mask = _video_hold(video_frames, reference)
    return ModeSpec("joint", mask, torch.ones(1, audio_frames), video_clean=clean)


def audio_driven(audio: torch.Tensor, video_frames: int, reference: torch.Tensor | None = None,
                 audio_frames: int | None = None) -> ModeSpec:
    """Video generated from a clean audio latent [B|1, Ca, Ta] held at sigma 0 (t_a = 0).

    audio_frames > Ta makes the audio latent longer than the driving audio: its first Ta frames are held and
    the tail is generated (UniAVGen's A2V task does this when the driving mel is shorter than the video).
    """
    if audio.ndim != 3:
        raise ValueError(f"audio must be a clean audio latent [B or 1, Ca, Ta], got {tuple(audio.shape)}")
    held = audio.shape[2]
    total = held if audio_frames is None else audio_frames
    if not isinstance(total, int) or total < held:
        raise ValueError(f"audio_frames must be an integer >= the driving audio's {held} latent frames, "
                         f"got {audio_frames!r}")
    clean, mask = _video_hold(video_frames, reference)
    audio_mask = torch.zeros(1, total, device=audio.device)
    audio_mask[:, held:] = 1
    if total > held:
        audio = torch.cat([audio, audio.new_zeros(*audio.shape[:2], total - held)], dim=2)  # [B|1, Ca, total]
    return ModeSpec("audio_driven", mask, audio_mask, video_clean=clean, audio_clean=audio)


def video_driven(video: torch.Tensor, audio_frames: int) -> ModeSpec:
    """Audio generated for a clean video latent [B|1, Cv, Tv, h, w] held at sigma 0 (t_v = 0)."""
    if video.ndim != 5:
        raise ValueError(f"video must be a clean video latent [B or 1, Cv, Tv, h, w], "
                         f"got {tuple(video.shape)}")
    video_mask = torch.zeros(1, video.shape[2], device=video.device)
    return ModeSpec("video_driven", video_mask, torch.ones(1, audio_frames), video_clean=video)
