"""MMAudio's 1-D mel VAE (16k and 44k modes) with reference state-dict key names.

Reference: hkchengrex/MMAudio `mmaudio/ext/autoencoder/vae.py` (`VAE`, `Encoder1D`, `Decoder1D`,
`VAE_16k`, `VAE_44k`) and `mmaudio/model/utils/distributions.py`. A checkpoint such as `v1-16.pth`
is a plain state dict with raw MPConv weights; the EDM2 forced weight normalisation is fused once
after loading (`fuse_weight_norm`). Latent: [B, embed_dim, T_mel / 2] (16k: 31.25 latents/s).

Structure fixed by the reference class: ch_mult (1, 2, 4), 2 res blocks per encoder level (3 per
decoder level), attention only in the middle (the reference's attn_layers=[3] selects no level),
one down/up-sampling stage (encoder level 0, decoder level 1), kernel 3, activations clamped to
+-256, one attention head.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ...loading.strict import load_strict
from .vae_layers import AttnBlock1D, Downsample1D, MPConv1D, ResnetBlock1D, Upsample1D, mp_silu

logger = logging.getLogger(__name__)

WeightNorm = Literal["auto", "raw", "fused"]
_FUSED_NORM_TOL = 1e-2  # fused MPConv weights have per-output-channel L2 norm within 1e-3 of 1


@dataclass(frozen=True)
class VAEConfig:
    """Sizes of MMAudio's `VAE(data_dim, embed_dim, hidden_dim)`; the rest is fixed by the reference."""

    data_dim: int     # mel bins (80 for 16k, 128 for 44k)
    embed_dim: int    # latent channels (20 / 40)
    hidden_dim: int   # base width (384 / 512)
    ch_mult: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 2
    down_levels: tuple[int, ...] = (0,)
    kernel_size: int = 3
    clip_act: float = 256.0
    attn_heads: int = 1

    @property
    def temporal_downsample(self) -> int:
        """Mel frames per latent frame."""
        return 2 ** len(self.down_levels)


VAE_16K = VAEConfig(data_dim=80, embed_dim=20, hidden_dim=384)
VAE_44K = VAEConfig(data_dim=128, embed_dim=40, hidden_dim=512)
VAE_PRESETS: dict[str, VAEConfig] = {"16k": VAE_16K, "44k": VAE_44K}


def vae_config_from_state_dict(sd: Mapping[str, torch.Tensor]) -> VAEConfig:
    """Detect data_dim / embed_dim / hidden_dim from the decoder's conv shapes (reference key names)."""
    needed = ("decoder.conv_in.weight", "decoder.conv_out.weight")
    absent = [k for k in needed if k not in sd]
    if absent:
        raise ValueError(f"not an MMAudio VAE state dict: missing {absent} (expected reference key names "
                         "such as 'decoder.conv_in.weight', as in MMAudio's v1-16.pth / v1-44.pth)")
    data_dim, hidden_dim = (int(n) for n in sd["decoder.conv_out.weight"].shape[:2])
    embed_dim = int(sd["decoder.conv_in.weight"].shape[1])
    cfg = VAEConfig(data_dim=data_dim, embed_dim=embed_dim, hidden_dim=hidden_dim)
    preset = next((name for name, p in VAE_PRESETS.items() if p == cfg), None)
    logger.info("MMAudio VAE config from shapes: %s (%s)", cfg,
                f"preset {preset}" if preset else "custom size")
    return cfg


@dataclass(frozen=True)
class VAEPosterior:
    """Diagonal Gaussian over the latent, [B, embed_dim, T] each (reference DiagonalGaussianDistribution)."""

    mean: torch.Tensor
    logvar: torch.Tensor  # clamped to [-30, 20]
    std: torch.Tensor

    @classmethod
    def from_moments(cls, moments: torch.Tensor) -> VAEPosterior:
        """moments [B, 2E, T] -> mean (first E channels), clamped logvar, std = exp(logvar / 2)."""
        mean, logvar = torch.chunk(moments, 2, dim=1)  # [B, E, T] each
        logvar = torch.clamp(logvar, -30.0, 20.0)
        return cls(mean=mean, logvar=logvar, std=torch.exp(0.5 * logvar))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """mean + std * N(0, 1)."""
        eps = torch.empty_like(self.mean).normal_(generator=generator)
        return self.mean + self.std * eps


class _Stage(nn.Module):
    """One resolution level: `block` (res blocks) and an optional `downsample` / `upsample`."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.downsample: nn.Module | None = None
        self.upsample: nn.Module | None = None


class _Mid(nn.Module):
    def __init__(self, channels: int, cfg: VAEConfig) -> None:
        super().__init__()
        self.block_1 = ResnetBlock1D(channels, channels, cfg.kernel_size)
        self.attn_1 = AttnBlock1D(channels, cfg.attn_heads)
        self.block_2 = ResnetBlock1D(channels, channels, cfg.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block_2(self.attn_1(self.block_1(x)))


class Encoder1D(nn.Module):
    """Normalised mel [B, data_dim, T] -> moments [B, 2 * embed_dim, T / 2]."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.clip = cfg.clip_act
        self.conv_in = MPConv1D(cfg.data_dim, cfg.hidden_dim, cfg.kernel_size)
        self.down = nn.ModuleList()
        ch = cfg.hidden_dim
        for level, mult in enumerate(cfg.ch_mult):
            out = cfg.hidden_dim * mult
            stage = _Stage([ResnetBlock1D(ch if i == 0 else out, out, cfg.kernel_size)
                            for i in range(cfg.num_res_blocks)])
            if level in cfg.down_levels:
                stage.downsample = Downsample1D(out)
            self.down.append(stage)
            ch = out
        self.mid = _Mid(ch, cfg)
        self.conv_out = MPConv1D(ch, 2 * cfg.embed_dim, cfg.kernel_size)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for stage in self.down:
            for block in stage.block:
                h = block(h).clamp(-self.clip, self.clip)
            if stage.downsample is not None:
                h = stage.downsample(h)
        h = self.mid(h).clamp(-self.clip, self.clip)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


class Decoder1D(nn.Module):
    """Latent [B, embed_dim, T] -> normalised mel [B, data_dim, 2T]; `up[i]` is level i, run deepest first."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.clip = cfg.clip_act
        up_levels = {level + 1 for level in cfg.down_levels}
        ch = cfg.hidden_dim * cfg.ch_mult[-1]
        self.conv_in = MPConv1D(cfg.embed_dim, ch, cfg.kernel_size)
        self.mid = _Mid(ch, cfg)
        stages: list[nn.Module] = []
        for level in reversed(range(len(cfg.ch_mult))):
            out = cfg.hidden_dim * cfg.ch_mult[level]
            stage = _Stage([ResnetBlock1D(ch if i == 0 else out, out, cfg.kernel_size)
                            for i in range(cfg.num_res_blocks + 1)])
            if level in up_levels:
                stage.upsample = Upsample1D(out)
            stages.insert(0, stage)
            ch = out
        self.up = nn.ModuleList(stages)
        self.conv_out = MPConv1D(ch, cfg.data_dim, cfg.kernel_size)
        self.learnable_gain = nn.Parameter(torch.zeros([]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z)).clamp(-self.clip, self.clip)
        for stage in reversed(self.up):
            for block in stage.block:
                h = block(h).clamp(-self.clip, self.clip)
            if stage.upsample is not None:
                h = stage.upsample(h)
        return self.conv_out(mp_silu(h), gain=self.learnable_gain + 1)


class MMAudioVAE(nn.Module):
    """MMAudio's mel VAE. `data_mean` / `data_std` [1, data_dim, 1] come from the checkpoint
    (reference DATA_MEAN_80D / DATA_STD_80D ...); a freshly built model holds 0 / 1 there."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("data_mean", torch.zeros(1, cfg.data_dim, 1))
        self.register_buffer("data_std", torch.ones(1, cfg.data_dim, 1))
        self.encoder = Encoder1D(cfg)
        self.decoder = Decoder1D(cfg)

    def _mpconvs(self) -> list[MPConv1D]:
        return [m for m in self.modules() if isinstance(m, MPConv1D)]

    @property
    def fused(self) -> bool:
        """True once every MPConv weight holds the fused (weight-normalised) value."""
        return all(m.fused for m in self._mpconvs())

    def fuse_weight_norm(self) -> MMAudioVAE:
        """Fold EDM2 forced weight normalisation into every MPConv weight (reference remove_weight_norm)."""
        for m in self._mpconvs():
            if not m.fused:
                m.fuse_weight_norm()
        return self

    def mark_fused(self) -> MMAudioVAE:
        """Declare the current weights already fused (e.g. after loading a fused state dict)."""
        for m in self._mpconvs():
            m.fused = True
        return self

    def encode(self, mel: torch.Tensor) -> VAEPosterior:
        """Log-mel [B, data_dim, T] (T even) -> posterior over the latent [B, embed_dim, T // 2]."""
        if mel.ndim != 3 or mel.shape[1] != self.cfg.data_dim:
            raise ValueError(f"VAE.encode expects a mel [B, {self.cfg.data_dim}, T], got {tuple(mel.shape)}")
        x = (mel - self.data_mean) / self.data_std
        return VAEPosterior.from_moments(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent [B, embed_dim, T] -> un-normalised log-mel [B, data_dim, 2T]."""
        if z.ndim != 3 or z.shape[1] != self.cfg.embed_dim:
            raise ValueError(f"VAE.decode expects a latent [B, {self.cfg.embed_dim}, T], "
                             f"got {tuple(z.shape)}")
        return self.decoder(z) * self.data_std + self.data_mean

    def load_reference_weights(self, sd: Mapping[str, torch.Tensor], weight_norm: WeightNorm = "auto",
                               source: str = "VAE state dict", assign: bool = False) -> MMAudioVAE:
        """Strictly load a reference-named state dict, then fuse unless the weights are already fused.

        weight_norm: 'raw' (checkpoint format, e.g. v1-16.pth: fuse after loading), 'fused' (already
        fused, use as is) or 'auto' (fused iff every MPConv weight's per-output-channel L2 norm is within
        1e-2 of 1, which the fusion produces and raw EDM2 weights, of norm ~sqrt(fan_in), do not).
        assign=True takes the tensors over instead of copying (for a model built on the meta device).
        """
        if weight_norm not in ("auto", "raw", "fused"):
            raise ValueError(f"weight_norm must be 'auto', 'raw' or 'fused', got {weight_norm!r}")
        load_strict(self, sd, source, assign=assign)
        if weight_norm == "auto":
            weight_norm = "fused" if self._weights_look_fused() else "raw"
            logger.info("%s: MPConv weights detected as %s", source, weight_norm)
        return self.mark_fused() if weight_norm == "fused" else self.fuse_weight_norm()

    def _weights_look_fused(self) -> bool:
        for m in self._mpconvs():
            norms = torch.linalg.vector_norm(m.weight.detach().float(), dim=(1, 2))  # [C_out]
            if (norms - 1).abs().max().item() > _FUSED_NORM_TOL:
                return False
        return True
