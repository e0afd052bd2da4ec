"""The one codec interface used by the sampler, the CLI, the trainer and the nodes.

Value ranges and layouts (every codec honours them):
- video pixels: float [B, 3, F, H, W] in [-1, 1]; F = temporal_stride * k + 1 for causal codecs
- video latent: float [B, C_v, Tv, H / spatial_stride, W / spatial_stride], already normalised
- audio wave:   float [B, L] mono in [-1, 1] at `sample_rate`
- audio latent: float [B, C_a, Ta], already normalised, `latent_rate` latents per second

SyncCFG anchors (arXiv 2511.21579 §3.4; the paper does not say how they are built, this is our choice):
- silence: the codec's own encoding of an all-zero waveform of the clip's length ("mute audio").
- static video: the codec's own encoding of one image (the reference image, or mid-grey when there
  is none) repeated for every frame ("motionless scene"). Both are computed once per generation.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..timeline import latent_frames_for


def module_device_dtype(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of a module's first parameter or buffer (CPU float32 when empty)."""
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32


class VideoCodec(nn.Module, ABC):
    name: str = "video"
    latent_channels: int
    temporal_stride: int  # pixel frames per latent frame (after the first, for causal codecs)
    spatial_stride: int   # pixels per latent cell along H and W
    static_settle: int | None = None  # latent frames after which a static clip's latents repeat (None: unknown)
    decode_buffers: float = 2.0  # most full-size float32 pixel buffers alive inside `decode`, output included

    @abstractmethod
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, 3, F, H, W] in [-1, 1] -> normalised latent [B, C_v, Tv, h, w]."""

    @abstractmethod
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent [B, C_v, Tv, h, w] -> pixels [B, 3, F, H, W] clamped to [-1, 1]."""

    def static_latent(self, image: torch.Tensor | None, num_frames: int, height: int, width: int,
                      batch: int = 1) -> torch.Tensor:
        """Latent of a motionless clip: `image` [B, 3, H, W] in [-1, 1] (None: mid-grey) held for
        `num_frames` frames. Returns [B, C_v, Tv, h, w].

        With `static_settle` set (a causal codec whose latents of a static clip repeat after that many
        latent frames), only 1 + stride * settle frames are encoded and the last latent frame is repeated, so
        the full-size clip never exists; otherwise the held clip is encoded whole."""
        device, dtype = self._device_dtype()
        if image is None:
            image = torch.zeros(batch, 3, height, width, device=device, dtype=dtype)
        tv = latent_frames_for(num_frames, self.temporal_stride)
        settle = self.static_settle
        short = num_frames if settle is None or tv <= settle + 1 else 1 + self.temporal_stride * settle
        frames = image.to(device, dtype)[:, :, None].expand(-1, -1, short, -1, -1)  # [B, 3, F', H, W]
        latent = self.encode(frames.contiguous())  # [B, C_v, Tv', h, w]
        return torch.cat([latent, latent[:, :, -1:].expand(-1, -1, tv - latent.shape[2], -1, -1)], dim=2)

    def static_frames_in_memory(self, num_frames: int) -> int:
        """Pixel frames `static_latent` holds at once for a clip of `num_frames` (for memory budgets)."""
        settle = self.static_settle
        return num_frames if settle is None else min(num_frames, 1 + self.temporal_stride * settle)

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        return module_device_dtype(self)


class AudioCodec(nn.Module, ABC):
    name: str = "audio"
    sample_rate: int
    latent_channels: int
    samples_per_latent: int  # waveform samples per audio latent (MMAudio 16k: 256 hop * 2 = 512)

    @property
    def latent_rate(self) -> float:
        """Audio latents per second (MMAudio 16k: 31.25)."""
        return self.sample_rate / self.samples_per_latent

    @abstractmethod
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Mono wave [B, L] in [-1, 1] -> normalised latent [B, C_a, Ta]."""

    @abstractmethod
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent [B, C_a, Ta] -> mono wave [B, L] in [-1, 1], L = Ta * samples_per_latent."""

    def silence_latent(self, num_latents: int, batch: int = 1) -> torch.Tensor:
        """Latent of `num_latents` latents of digital silence: [B, C_a, Ta]."""
        device, dtype = module_device_dtype(self)
        wave = torch.zeros(batch, num_latents * self.samples_per_latent, device=device, dtype=dtype)
        latent = self.encode(wave)
        return latent[..., :num_latents]
