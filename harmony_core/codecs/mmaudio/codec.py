"""MMAudio's audio path as an AudioCodec: wave <-> mel <-> 1-D VAE latent, BigVGAN vocoder back to wave.

Reference: hkchengrex/MMAudio `FeaturesUtils.encode_audio` / `decode` / `vocode`, `AutoEncoderModule`,
`sequence_config.py`. Modes:

| mode | sample rate | mel (bins, hop) | VAE | vocoder | samples/latent | latents/s |
| 16k  | 16 000      | 80, 256         | VAE_16k (20 ch) | BigVGAN v1 x256 | 512  | 31.25 |
| 44k  | 44 100      | 128, 512        | VAE_44k (40 ch) | BigVGAN v2 x512 | 1024 | ~43.07 |

Length relation (the same as MMAudio's `latent_seq_len = ceil(duration * sr / hop / 2)`): a wave of L
samples gives Ta = ceil(L / samples_per_latent) latents; `encode` zero-pads the wave at the end to
Ta * samples_per_latent first (mel frames = floor(L / hop) after the reference's (n_fft - hop) / 2
reflect padding on each side, and the VAE halves that, flooring). `decode` returns exactly
Ta * samples_per_latent samples (the vocoder already does for these configs; anything else is
padded with zeros or trimmed at the end).

The latent is the VAE posterior mean, optionally normalised per channel with (latent_mean, latent_std)
(MMAudio keeps those in its flow network's checkpoint; identity by default).
"""
from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ...loading.safetensors_io import metadata_json, read_safetensors
from ...loading.strict import strip_prefix
from ..base import AudioCodec
from .bigvgan import (
    BIGVGAN_PRESETS,
    CHECKPOINT_PREFIXES,
    BigVGAN,
    BigVGANConfig,
    bigvgan_config_from_state_dict,
    fuse_weight_norm_keys,
)
from .mel import MelConverter, mel_preset
from .vae import VAE_PRESETS, MMAudioVAE, WeightNorm, vae_config_from_state_dict

logger = logging.getLogger(__name__)

SMALL_VAE_HIDDEN = 32          # width of MMAudioCodec.random(small=True) (the parity fixtures' width)
SMALL_VOCODER_CHANNELS = 64    # upsample_initial_channel of the small random vocoder (64 -> ... -> 1)


def _channel_stat(value: torch.Tensor | None, channels: int, fill: float, name: str) -> torch.Tensor:
    """Per-channel statistic as [1, C, 1]; accepts any tensor with C elements ([C], [1, 1, C], ...)."""
    if value is None:
        return torch.full((1, channels, 1), fill)
    value = torch.as_tensor(value, dtype=torch.float32)
    if value.numel() != channels:
        raise ValueError(f"{name} must have {channels} elements (one per latent channel), got shape "
                         f"{tuple(value.shape)}")
    return value.reshape(1, channels, 1).clone()


class MMAudioCodec(AudioCodec):
    """Mono wave [B, L] <-> normalised latent [B, C_a, Ta] through MMAudio's mel VAE and BigVGAN."""

    name = "mmaudio"

    def __init__(self, mode: str, vae: MMAudioVAE, vocoder: BigVGAN, latent_mean: torch.Tensor | None = None,
                 latent_std: torch.Tensor | None = None) -> None:
        super().__init__()
        mel_cfg = mel_preset(mode)
        if not (vae.cfg.data_dim == vocoder.cfg.num_mels == mel_cfg.num_mels):
            raise ValueError(f"mode {mode!r} uses {mel_cfg.num_mels} mel bins, but the VAE has data_dim "
                             f"{vae.cfg.data_dim} and the vocoder num_mels {vocoder.cfg.num_mels}")
        if vocoder.cfg.hop != mel_cfg.hop_size:
            raise ValueError(f"vocoder upsamples x{vocoder.cfg.hop}, mode {mode!r} needs x{mel_cfg.hop_size} "
                             f"(the mel hop)")
        if not vae.fused:
            raise ValueError("the VAE's weight normalisation is not fused; call vae.fuse_weight_norm() first")
        self.mode = mode
        self.mel = MelConverter(mel_cfg)
        self.vae = vae
        self.vocoder = vocoder
        self.sample_rate = mel_cfg.sample_rate
        self.latent_channels = vae.cfg.embed_dim
        self.samples_per_latent = mel_cfg.hop_size * vae.cfg.temporal_downsample
        c = self.latent_channels
        self.register_buffer("latent_mean", _channel_stat(latent_mean, c, 0.0, "latent_mean"),
                             persistent=False)
        self.register_buffer("latent_std", _channel_stat(latent_std, c, 1.0, "latent_std"), persistent=False)
        if (self.latent_std <= 0).any():
            raise ValueError("latent_std must be positive")
        self.requires_grad_(False)
        self.eval()

    def num_latents(self, num_samples: int) -> int:
        """Audio latents for a wave of `num_samples` samples: ceil(L / samples_per_latent)."""
        return math.ceil(num_samples / self.samples_per_latent)

    @torch.no_grad()
    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Mono wave [B, L] in [-1, 1] -> normalised posterior mean [B, C_a, ceil(L / samples_per_latent)]."""
        if wave.ndim != 2 or wave.shape[-1] < 1:
            raise ValueError(f"MMAudioCodec.encode expects a mono wave [B, L] with L >= 1, "
                             f"got {tuple(wave.shape)}")
        ta = self.num_latents(wave.shape[-1])
        pad = ta * self.samples_per_latent - wave.shape[-1]
        if pad:
            logger.info("audio of %d samples zero-padded by %d to %d latents x %d samples",
                        wave.shape[-1], pad, ta, self.samples_per_latent)
            wave = nn.functional.pad(wave, (0, pad))  # [B, Ta * samples_per_latent]
        device, dtype = self.latent_mean.device, self.vae.data_mean.dtype
        mel = self.mel(wave.to(device))  # [B, M, 2 * Ta], float32
        mean = self.vae.encode(mel.to(dtype)).mean  # [B, C_a, Ta]
        return (mean - self.latent_mean.to(dtype)) / self.latent_std.to(dtype)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent [B, C_a, Ta] -> mono wave [B, Ta * samples_per_latent] in [-1, 1]."""
        if latent.ndim != 3 or latent.shape[1] != self.latent_channels:
            raise ValueError(f"MMAudioCodec.decode expects a latent [B, {self.latent_channels}, Ta], "
                             f"got {tuple(latent.shape)}")
        device, dtype = self.latent_mean.device, self.vae.data_mean.dtype
        z = latent.to(device, dtype) * self.latent_std.to(dtype) + self.latent_mean.to(dtype)  # [B, C_a, Ta]
        mel = self.vae.decode(z)  # [B, M, 2 * Ta]
        wave = self.vocoder(mel.to(self.vocoder.conv_pre.weight.dtype))[:, 0]  # [B, 2 * Ta * hop]
        target = latent.shape[-1] * self.samples_per_latent
        if wave.shape[-1] != target:
            wave = nn.functional.pad(wave, (0, max(0, target - wave.shape[-1])))[:, :target]
        return wave

    @classmethod
    def load(cls, vae_path: str | Path, vocoder_path: str | Path, mode: str = "16k",
             latent_mean: torch.Tensor | None = None, latent_std: torch.Tensor | None = None,
             vae_weight_norm: WeightNorm = "auto") -> MMAudioCodec:
        """Build from safetensors files with reference key names.

        vae_path: MMAudio VAE state dict (v1-16.pth / v1-44.pth converted to safetensors; raw or fused,
        see MMAudioVAE.load_reference_weights). vocoder_path: BigVGAN generator state dict in any
        weight-norm layout, optionally under 'generator.'; its config comes from the metadata key
        'config' (JSON) when present, else from the mode's preset, adjusted from the weights' shapes.
        """
        mel_preset(mode)  # validates the mode
        vae_sd, _ = read_safetensors(vae_path, "MMAudio VAE")
        vae_cfg = vae_config_from_state_dict(vae_sd)
        with torch.device("meta"):
            vae = MMAudioVAE(vae_cfg)
        vae.load_reference_weights(vae_sd, vae_weight_norm, source=str(vae_path), assign=True)
        voc_sd, meta = read_safetensors(vocoder_path, "vocoder")
        voc_sd = fuse_weight_norm_keys(strip_prefix(voc_sd, CHECKPOINT_PREFIXES))
        given = metadata_json(meta, "config")
        base = BigVGANConfig.from_dict(given) if given is not None else BIGVGAN_PRESETS[mode]
        with torch.device("meta"):
            vocoder = BigVGAN(bigvgan_config_from_state_dict(voc_sd, base))
        vocoder.load_reference_weights(voc_sd, source=str(vocoder_path), assign=True)
        return cls(mode, vae, vocoder, latent_mean, latent_std)

    @classmethod
    def random(cls, mode: str = "16k", seed: int = 0, small: bool = True,
               latent_mean: torch.Tensor | None = None,
               latent_std: torch.Tensor | None = None) -> MMAudioCodec:
        """Random weights for tests and benchmarks (data_mean / data_std identity).

        small=True: VAE hidden 32 and vocoder upsample_initial_channel 64; small=False: the real sizes
        (VAE_16k / VAE_44k, BigVGAN 1536). The global torch RNG is left untouched.
        """
        mel_preset(mode)
        vae_cfg, voc_cfg = VAE_PRESETS[mode], BIGVGAN_PRESETS[mode]
        if small:
            vae_cfg = replace(vae_cfg, hidden_dim=SMALL_VAE_HIDDEN)
            voc_cfg = replace(voc_cfg, upsample_initial_channel=SMALL_VOCODER_CHANNELS)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = MMAudioVAE(vae_cfg).fuse_weight_norm()
            vocoder = BigVGAN(voc_cfg)
        return cls(mode, vae, vocoder, latent_mean, latent_std)
