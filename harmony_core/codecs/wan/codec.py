"""`WanVideoCodec`: the Wan2.2 VAE behind the project's `VideoCodec` interface, plus safetensors loading.

Latent normalisation is the reference pipeline's (`Wan2_2_VAE` in github.com/Wan-Video/Wan2.2 @ 42bf4cf,
`wan/modules/vae2_2.py`): `latent = (mu - mean) * inv_std` with `inv_std = 1 / std` (the posterior mean, no
sampling), and `z = latent / inv_std + mean` before decoding. Decoded video is clamped to [-1, 1].
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from ...loading.safetensors_io import read_safetensors
from ...loading.strict import load_strict, select_prefix
from ...timeline import latent_frames_for
from ..base import VideoCodec
from .tiling import TileSpec, decode_tiled
from .vae import PATCH, WanVAE, WanVAEConfig, patchify

logger = logging.getLogger(__name__)

# Hard-coded latent statistics of the released Wan2.2 VAE (reference `Wan2_2_VAE.__init__`, 48 channels).
WAN22_LATENT_MEAN = (
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813, 0.0891,
    0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108, -0.2158, 0.2502,
    -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313, -0.1649, 0.0117, 0.0723,
    -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944, 0.3573, -0.0548, -0.1681, -0.0667,
)
WAN22_LATENT_STD = (
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
)

# Prefixes other packagings put in front of the reference keys: "" is `Wan2.2_VAE.pth` converted as is,
# "vae." / "first_stage_model." are ComfyUI-style bundles. When a prefix is found, only its keys are used.
KEY_PREFIXES = ("", "vae.", "first_stage_model.")
_PROBE_KEY = "encoder.conv1.weight"


def strip_prefix(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return the VAE's keys with their packaging prefix (one of `KEY_PREFIXES`) removed."""
    try:
        prefix, kept = select_prefix(sd, KEY_PREFIXES, _PROBE_KEY)
    except ValueError as err:
        raise ValueError(f"not a Wan2.2 VAE state dict: {err}") from err
    if prefix:
        logger.info("Wan VAE keys found under prefix %r (%d of %d keys used)", prefix, len(kept), len(sd))
    return kept


def _count(sd: Mapping[str, torch.Tensor], pattern: str) -> int:
    """Number of consecutive indices i for which `pattern.format(i)` is a key."""
    n = 0
    while pattern.format(n) in sd:
        n += 1
    return n


def detect_config(sd: Mapping[str, torch.Tensor]) -> WanVAEConfig:
    """Read a `WanVAEConfig` from the shapes of an (un-prefixed) reference state dict."""
    try:
        conv_in = sd["encoder.conv1.weight"]  # [dim, 12, 3, 3, 3]
        if conv_in.shape[1] != 3 * PATCH * PATCH:
            raise ValueError(f"encoder.conv1 takes {conv_in.shape[1]} channels, the Wan2.2 VAE takes 12 "
                             "(patchified RGB); a 3-channel input is the Wan2.1 VAE, which is not supported")
        dim = int(conv_in.shape[0])
        blocks = _count(sd, "encoder.downsamples.{}.downsamples.0.residual.2.weight")
        dim_mult = tuple(int(sd[f"encoder.downsamples.{i}.downsamples.0.residual.2.weight"].shape[0]) // dim
                         for i in range(blocks))
        res = _count(sd, "encoder.downsamples.0.downsamples.{}.residual.2.weight")
        temporal = tuple(f"encoder.downsamples.{i}.downsamples.{res}.time_conv.weight" in sd
                         for i in range(blocks - 1))
        dec_dim = int(sd["decoder.conv1.weight"].shape[0]) // dim_mult[-1]
        z_dim = int(sd["conv2.weight"].shape[0])
        return WanVAEConfig(dim=dim, dec_dim=dec_dim, z_dim=z_dim, dim_mult=dim_mult, num_res_blocks=res,
                            temperal_downsample=temporal)
    except (KeyError, IndexError) as err:
        raise ValueError(f"cannot detect the Wan2.2 VAE size: missing or odd key {err}") from err


def _latent_scale(z_dim: int, mean: torch.Tensor | None,
                  std: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std): given, else Wan2.2's constants (z_dim 48), else identity."""
    if mean is None and std is None:
        if z_dim == len(WAN22_LATENT_MEAN):
            return torch.tensor(WAN22_LATENT_MEAN), torch.tensor(WAN22_LATENT_STD)
        logger.info("no latent mean/std for z_dim %d: using identity normalisation", z_dim)
        return torch.zeros(z_dim), torch.ones(z_dim)
    if mean is None or std is None or mean.numel() != z_dim or std.numel() != z_dim:
        raise ValueError(f"give both mean and std with {z_dim} values each (or neither)")
    return mean.detach().float().flatten(), std.detach().float().flatten()


class WanVideoCodec(VideoCodec):
    """Wan2.2 VAE codec: pixels [B, 3, 1 + 4k, H, W] in [-1, 1] <-> latent [B, 48, 1 + k, H/16, W/16].

    `tiling` (a `TileSpec`, or None) switches `decode` to the spatially tiled decoder of `wan_tiling`.
    The VAE is frozen: encode and decode run without autograd.
    """

    name = "wan2.2"

    def __init__(self, vae: WanVAE, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 tiling: TileSpec | None = None) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        cfg = vae.config
        self.latent_channels = cfg.z_dim
        self.temporal_stride = cfg.temporal_stride
        self.spatial_stride = cfg.spatial_stride
        self.tiling = tiling
        mean, std = _latent_scale(cfg.z_dim, mean, std)
        self.register_buffer("mean", mean.view(1, -1, 1, 1, 1), persistent=False)  # [1, C, 1, 1, 1]
        self.register_buffer("inv_std", (1.0 / std).view(1, -1, 1, 1, 1), persistent=False)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], mean: torch.Tensor | None = None,
                        std: torch.Tensor | None = None, source: str = "Wan2.2 VAE state dict") -> WanVideoCodec:
        """Build from a reference (optionally prefixed) state dict; the size is read from the shapes."""
        sd = strip_prefix(sd)
        config = detect_config(sd)
        with torch.device("meta"):
            vae = WanVAE(config)
        load_strict(vae, sd, source, assign=True)
        dtype = next(iter(sd.values())).dtype
        logger.info("loaded Wan2.2 VAE %s (%s)", config, dtype)
        return cls(vae, mean, std).to(dtype)

    @classmethod
    def load(cls, path: str | Path) -> WanVideoCodec:
        """Load a `.safetensors` file holding a Wan2.2 VAE state dict (never unpickles)."""
        return cls.from_state_dict(read_safetensors(path, "Wan2.2 VAE")[0], source=str(path))

    @classmethod
    def random(cls, config: WanVAEConfig = WanVAEConfig(), seed: int = 0) -> WanVideoCodec:
        """Randomly initialised codec (torch's default init under `seed`), for benchmarks and tests."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vae = WanVAE(config)
        return cls(vae)

    # ------------------------------------------------------------------ VideoCodec

    def normalize(self, mu: torch.Tensor) -> torch.Tensor:
        """Raw posterior mean -> pipeline latent: (mu - mean) * inv_std."""
        return (mu - self.mean) * self.inv_std

    def denormalize(self, latent: torch.Tensor) -> torch.Tensor:
        """Pipeline latent -> raw decoder input: latent / inv_std + mean (the reference divides)."""
        return latent / self.inv_std + self.mean

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, 3, 1 + 4k, H, W] in [-1, 1] -> normalised latent [B, 48, 1 + k, H/16, W/16], from mu."""
        self._check_frames(frames)
        device, dtype = self._device_dtype()
        mu, _ = self.vae.encode(frames.to(device, dtype))
        return self.normalize(mu)

    # Output (P) plus the decoder's activations for one latent frame at full resolution (up to dec_dim x 4
    # frames x H x W, about 1.6 P for 81 frames with the 5B VAE's widths); tiled decoding holds its float32
    # accumulator and the output. An estimate from the shapes, not measured on a GPU yet.
    decode_buffers = 4.0

    def static_frames_in_memory(self, num_frames: int) -> int:
        return min(num_frames, self.temporal_stride)  # streamed: one chunk at a time

    @torch.no_grad()
    def static_latent(self, image: torch.Tensor | None, num_frames: int, height: int, width: int,
                      batch: int = 1) -> torch.Tensor:
        """Latent of `image` [B, 3, H, W] (None: mid-grey) held for `num_frames` frames, streamed: the
        encoder gets the held frame chunk by chunk (its causal cache carries the rest), so memory is one
        chunk's, never the whole clip's. Equal to encoding the held clip."""
        device, dtype = self._device_dtype()
        if image is None:
            image = torch.zeros(batch, 3, height, width, device=device, dtype=dtype)
        tv = latent_frames_for(num_frames, self.temporal_stride)
        self._check_frames(image.to(device, dtype)[:, :, None])
        held = patchify(image.to(device, dtype)[:, :, None])  # [B, 12, 1, H/2, W/2]
        chunk = held.expand(-1, -1, self.temporal_stride, -1, -1).contiguous()  # [B, 12, stride, H/2, W/2]
        mu, _ = self.vae.encode_chunks(held if i == 0 else chunk for i in range(tv))
        return self.normalize(mu)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised latent [B, 48, T, h, w] -> video [B, 3, 1 + 4(T - 1), 16h, 16w] clamped to [-1, 1]."""
        self._check_latent(latent)
        device, dtype = self._device_dtype()
        z = self.denormalize(latent.to(device, dtype))
        video = self.vae.decode(z) if self.tiling is None else decode_tiled(self.vae, z, self.tiling)
        return video.clamp_(-1.0, 1.0)

    # ------------------------------------------------------------------ validation

    def _check_frames(self, frames: torch.Tensor) -> None:
        if frames.dim() != 5 or frames.shape[1] != 3:
            raise ValueError(f"frames must be [B, 3, F, H, W], got shape {tuple(frames.shape)}")
        latent_frames_for(frames.shape[2], self.temporal_stride)
        h, w, s = frames.shape[3], frames.shape[4], self.spatial_stride
        if h % s or w % s or h == 0 or w == 0:
            raise ValueError(f"frame height and width must be positive multiples of {s}, got {h}x{w} "
                             f"(e.g. {max(s, h // s * s)}x{max(s, w // s * s)})")
        if not torch.isfinite(frames).all():
            raise ValueError("frames contain NaN or Inf values")

    def _check_latent(self, latent: torch.Tensor) -> None:
        if latent.dim() != 5 or latent.shape[1] != self.latent_channels or min(latent.shape[2:]) < 1:
            raise ValueError(f"latent must be [B, {self.latent_channels}, T >= 1, h, w], "
                             f"got shape {tuple(latent.shape)}")
        if not torch.isfinite(latent).all():
            raise ValueError("latent contains NaN or Inf values")
