"""Demo video codec: a fixed orthonormal block transform with no learned weights.

Made for the bundled demo model only (small synthetic clips of flat shapes, 64x64 px, 25 fps); it is not a
stand-in for the Wan2.2 VAE. It keeps Wan2.2's causal timeline (`timeline.py`): F = 4k + 1 pixel frames map to
k + 1 latent frames, latent 0 is pixel frame 0 alone and latent i >= 1 is pixel frames 4i-3 .. 4i.

Transform. A latent cell covers 4 frames x 3 colours x 8 x 8 pixels (768 values). They are expanded on the
orthonormal basis DCT-II over time (4) (x) colour (Y, C1, C2) (x) DCT-II over rows (8) (x) DCT-II over
columns (8), and the `latent_channels` coefficients of lowest cost are kept, cost = t + u + v + [chroma]
(t: temporal frequency, u, v: spatial frequencies; ties go to lower t, then Y, C1, C2, then zig-zag).
Latent 0 encodes frame 0 held for 4 frames, so its temporal coefficients (t >= 1) are zero and its decode is
the 4 frames' mean. The default 16 channels are: for the mean of the 4 frames, luma with u + v <= 2 (6) and
both chroma axes with u + v <= 1 (3 + 3); for the temporal first difference (t = 1, ~ a slope over the 4
frames), luma DC and first gradients (3) and the C1 (red-blue) DC (1). 16 is where the extra PSNR per channel
flattens on the demo clips (moving shapes: 12 ch 21.8 dB, 16 ch 22.8 dB, 32 ch 24.3 dB, 64 ch 25.9 dB).

Decoding applies the transpose (the basis is orthonormal), so decode(encode(x)) is the orthogonal projection
onto the kept coefficients (exact with latent_channels = 768). Latents are the coefficients divided by fixed
constants: 8 for the DC term (16 x a pixel std of 0.5), (t + u + v) ** -1.5 otherwise, which brought the
first demo's small-object clips to roughly unit variance per channel; `channel_std` divides each channel
once more by its measured std (the v2 demo's large objects put up to 5x more energy in some channels and 3x
less in the chroma DC, whose noise then outlived the sampler as coloured 8x8 tiles).

Temporal basis (`temporal`). "block" is the DCT above: each latent frame decodes into its 4 frames on its
own, so a generated latent that disagrees with its neighbour shows as a jump every 4th frame (the same
phase in every clip). "keyframe" (the demo model's) replaces the temporal DCT with a lapped basis: the
t = 0 coefficient of latent i is the spatial transform of pixel frame 4i alone (a keyframe), frames between
two keyframes are their linear interpolation, and t = 1..3 are the orthonormal DST-I of what the
interpolation misses on the 3 frames in between (zero at both keyframes). Every basis function is
continuous across latent boundaries, so disagreeing latents decode into a ramp, not a jump: with i.i.d.
noise of std 0.3 added to the latents of 32 held-out demo clips, the lag-0 sync correlation of the round
trip (18 channels) stays 0.65 with "keyframe" and drops from 0.57 to 0.09 with "block". Encoding is causal
(latent i reads frames 4i-4 .. 4i) and exact with all 768 channels; latent 0 is frame 0.

Extra coefficients (`extra`). The cost order keeps spatial detail before the in-between detail of high
temporal frequency, so an event on one inner frame is spread over its neighbours: with the demo's 24
channels the luma DC keeps t = 1, 2 but not t = 3, and a one-frame flash decodes as [0.35, 0.5, 0.35] of
itself over the three inner frames. `extra` appends named coefficients after the cheapest
latent_channels - len(extra); with (3, 0, 0, 0) appended (25 channels) the 40 evaluation prompts' own
clips keep 0.82 of sync within +-1 frame through the video codec instead of 0.69 (raw: 0.83). A demo model
trained on it did not gain from that (docs/demo_model.md, "Also tried"), so the demo keeps 24 channels.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from einops import rearrange

from ...timeline import VIDEO_TEMPORAL_STRIDE, latent_frames_for, pixel_frames_for
from ..base import VideoCodec
from . import keyframe

SPATIAL_STRIDE = 8
TEMPORAL_STRIDE = VIDEO_TEMPORAL_STRIDE
_COLOURS = 3
GROUP_SIZE = TEMPORAL_STRIDE * _COLOURS * SPATIAL_STRIDE * SPATIAL_STRIDE  # 768 values per latent cell
DC_SCALE = 8.0
TEMPORAL_BASES = ("block", "keyframe")


@dataclass(frozen=True)
class DemoVideoConfig:
    """Settings of the demo video codec. `latent_channels`: transform coefficients kept (1..768);
    `temporal`: "block" (temporal DCT per latent frame) or "keyframe" (lapped; see the module docstring)."""

    latent_channels: int = 16
    temporal: str = "block"
    channel_std: tuple[float, ...] = ()   # extra per-channel divisor (the std of each channel on training
    #                                       data): unit-variance latents; () = none (the first demo model)
    extra: tuple[tuple[int, int, int, int], ...] = ()   # coefficients (t, colour, u, v) kept after the
    #                                       latent_channels - len(extra) cheapest ones (see `kept_coefficients`)

    def validate(self) -> None:
        """Raise ValueError when a setting is out of range."""
        if not isinstance(self.latent_channels, int) or not 1 <= self.latent_channels <= GROUP_SIZE:
            raise ValueError(
                f"DemoVideoConfig.latent_channels={self.latent_channels!r} is not accepted: "
                f"use an integer from 1 to {GROUP_SIZE} (default 16)."
            )
        if self.temporal not in TEMPORAL_BASES:
            raise ValueError(f"DemoVideoConfig.temporal={self.temporal!r} is not accepted: use one of "
                             f"{TEMPORAL_BASES}.")
        _check_extra(self.extra, self.latent_channels)
        if self.channel_std and (len(self.channel_std) != self.latent_channels or not all(
                math.isfinite(x) and x > 0 for x in self.channel_std)):
            raise ValueError(f"DemoVideoConfig.channel_std must be empty or {self.latent_channels} positive "
                             f"numbers (one per latent channel), got {self.channel_std!r}.")


def _check_extra(extra: tuple[tuple[int, int, int, int], ...], channels: int) -> None:
    """`extra` must name distinct coefficients (t, colour, u, v) outside the cheapest channels - len(extra)."""
    ok = len(extra) < channels and all(
        isinstance(k, tuple) and len(k) == 4 and all(type(i) is int for i in k)   # no bools or floats
        and 0 <= k[0] < TEMPORAL_STRIDE and 0 <= k[1] < _COLOURS and 0 <= k[2] < SPATIAL_STRIDE
        and 0 <= k[3] < SPATIAL_STRIDE for k in extra)
    if not ok or len(set(extra)) != len(extra) or set(extra) & set(coefficient_order()[:channels - len(extra)]):
        raise ValueError(
            f"DemoVideoConfig.extra={extra!r} is not accepted: give fewer than latent_channels={channels} "
            f"distinct (t, colour, u, v) tuples (t < {TEMPORAL_STRIDE}, colour < {_COLOURS}, u, v < "
            f"{SPATIAL_STRIDE}) that are not among the {channels - len(extra)} cheapest coefficients.")


def kept_coefficients(config: DemoVideoConfig) -> list[tuple[int, int, int, int]]:
    """The coefficients (t, colour, u, v) a codec keeps, in channel order: the cheapest
    latent_channels - len(extra), then `extra`."""
    return coefficient_order()[: config.latent_channels - len(config.extra)] + list(config.extra)


def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix [n, n] in float64; row k is the basis vector of frequency k."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m


def colour_matrix() -> torch.Tensor:
    """Orthonormal RGB -> (Y, C1, C2) matrix [3, 3] in float64: Y ~ R+G+B, C1 ~ R-B, C2 ~ R-2G+B."""
    m = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
    return m / m.norm(dim=1, keepdim=True)


def coefficient_order() -> list[tuple[int, int, int, int]]:
    """All 768 coefficients (t, colour, u, v), cheapest first (see the module docstring for the cost)."""
    s = SPATIAL_STRIDE
    grid = itertools.product(range(TEMPORAL_STRIDE), range(_COLOURS), range(s), range(s))
    return sorted(grid, key=lambda k: (k[0] + k[2] + k[3] + (k[1] > 0), k[0], k[1], k[2] + k[3], k[2]))


def _basis(order: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Kept basis vectors [K, 768] (float64), each flattened in the cell layout (frame, rgb, row, column)."""
    full = torch.einsum("tf,cr,uy,vx->tcuvfryx", dct_matrix(TEMPORAL_STRIDE), colour_matrix(),
                        dct_matrix(SPATIAL_STRIDE), dct_matrix(SPATIAL_STRIDE))
    s = SPATIAL_STRIDE
    full = full.reshape(TEMPORAL_STRIDE, _COLOURS, s, s, GROUP_SIZE)  # [t, c, u, v, 768]
    return torch.stack([full[t, c, u, v] for t, c, u, v in order])


def _scales(order: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Fixed normalisation constant per kept coefficient [K] (float64)."""
    return torch.tensor([DC_SCALE if t + u + v == 0 else (t + u + v) ** -1.5 for t, _, u, v in order],
                        dtype=torch.float64)


class DemoVideoCodec(VideoCodec):
    """Causal 4x8x8 demo video codec built from fixed DCTs (no learned weights, empty state_dict)."""

    name = "demo_video"
    temporal_stride = TEMPORAL_STRIDE
    static_settle = 1  # causal: latent i reads frames 4i-4 .. 4i, so a static clip's latents 1, 2, ... are equal

    @property
    def decode_buffers(self) -> float:
        """Pixel buffers P alive inside decode. keyframe.decode holds `full` (~P), the interpolation, the
        DST detail and their sum (3 x 3/4 P), `later` and `y` (P each), y @ spatial and its rearranged copy
        (P each): 5.75 P at most; the block basis holds its output and one 4-frame group: ~1 P."""
        return 5.75 if self.config.temporal == "keyframe" else 1.0
    spatial_stride = SPATIAL_STRIDE

    def __init__(self, config: DemoVideoConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else DemoVideoConfig()
        self.config.validate()
        self.latent_channels = self.config.latent_channels
        order = kept_coefficients(self.config)
        scale = _scales(order)
        if self.config.temporal == "keyframe":
            # one frame's coefficient is half the 4-frame orthonormal DC of a still: same latent variance
            scale = torch.where(torch.tensor([t == 0 for t, *_ in order]), scale / 2, scale)
            spatial = keyframe.spatial_basis(colour_matrix(), dct_matrix(SPATIAL_STRIDE))
            self.register_buffer("spatial", spatial.float(), persistent=False)  # [192, 192]
            self.register_buffer("dst", keyframe.dst1_matrix().float(), persistent=False)  # [3, 3]
            self.register_buffer("t_idx", torch.tensor([t for t, *_ in order]), persistent=False)  # [K]
            self.register_buffer("s_idx", torch.tensor([(c * SPATIAL_STRIDE + u) * SPATIAL_STRIDE + v
                                                        for _, c, u, v in order]), persistent=False)  # [K]
        else:
            self.register_buffer("basis", _basis(order).float(), persistent=False)  # [K, 768]
        if self.config.channel_std:
            scale = scale * torch.tensor(self.config.channel_std, dtype=torch.float64)
        self.register_buffer("scale", scale.float(), persistent=False)  # [K]

    @classmethod
    def default(cls) -> DemoVideoCodec:
        """The codec the bundled demo model is trained with (16 channels)."""
        return cls(DemoVideoConfig())

    def to_config(self) -> dict[str, Any]:
        """JSON-able description, stored in checkpoint metadata; `from_config` rebuilds the same codec."""
        config = asdict(self.config)
        if config["temporal"] == "block":
            del config["temporal"]  # the original layout: checkpoints written before the option read the same
        if config["channel_std"]:
            config["channel_std"] = list(config["channel_std"])
        else:
            del config["channel_std"]
        if config["extra"]:
            config["extra"] = [list(k) for k in config["extra"]]
        else:
            del config["extra"]   # checkpoints written before the option read the same
        return {"name": self.name, **config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DemoVideoCodec:
        """Rebuild a codec from `to_config()` output; ValueError on another codec's name or unknown keys."""
        fields_ = config_fields_from_dict(cls.name, DemoVideoConfig, config)
        if "channel_std" in fields_:
            fields_["channel_std"] = tuple(float(x) for x in fields_["channel_std"])
        if "extra" in fields_:
            fields_["extra"] = tuple(tuple(k) for k in fields_["extra"])
        return cls(DemoVideoConfig(**fields_))

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, F, H, W] in [-1, 1] (F = 4k + 1; H, W multiples of 8) -> [B, C, k + 1, H/8, W/8]."""
        self._check_frames(frames)
        x = frames.to(self.scale.device, self.scale.dtype)
        if self.config.temporal == "keyframe":
            coef = keyframe.encode(x, self.spatial, self.dst, self.t_idx, self.s_idx)  # [B, K, Tv, h, w]
            return coef / self.scale[:, None, None, None]
        b, _, f, h, w = x.shape
        tv = latent_frames_for(f, TEMPORAL_STRIDE)
        s = SPATIAL_STRIDE
        out = x.new_empty(b, self.latent_channels, tv, h // s, w // s)
        for i in range(tv):
            if i == 0:
                group = x[:, :, :1].expand(-1, -1, TEMPORAL_STRIDE, -1, -1)  # [B, 3, 4, H, W], frame 0 held
            else:
                group = x[:, :, TEMPORAL_STRIDE * (i - 1) + 1: TEMPORAL_STRIDE * i + 1]  # [B, 3, 4, H, W]
            cells = rearrange(group, "b c f (h y) (w x) -> b h w (f c y x)", y=s, x=s)  # [B, h, w, 768]
            coef = cells @ self.basis.T / self.scale  # [B, h, w, K]
            out[:, :, i] = coef.permute(0, 3, 1, 2)  # [B, K, h, w]
        return out

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent [B, C, Tv, h, w] -> pixels [B, 3, 4(Tv-1)+1, 8h, 8w] clamped to [-1, 1]."""
        self._check_latent(latent)
        z = latent.to(self.scale.device, self.scale.dtype)
        if self.config.temporal == "keyframe":
            coef = z * self.scale[:, None, None, None]
            return keyframe.decode(coef, self.spatial, self.dst, self.t_idx, self.s_idx).clamp_(-1.0, 1.0)
        b, _, tv, h, w = z.shape
        s = SPATIAL_STRIDE
        out = z.new_empty(b, _COLOURS, pixel_frames_for(tv, TEMPORAL_STRIDE), h * s, w * s)
        for i in range(tv):
            coef = z[:, :, i].permute(0, 2, 3, 1) * self.scale  # [B, h, w, K]
            group = rearrange(coef @ self.basis, "b h w (f c y x) -> b c f (h y) (w x)",
                              f=TEMPORAL_STRIDE, c=_COLOURS, y=s, x=s)  # [B, 3, 4, H, W]
            if i == 0:
                out[:, :, :1] = group.mean(dim=2, keepdim=True)
            else:
                out[:, :, TEMPORAL_STRIDE * (i - 1) + 1: TEMPORAL_STRIDE * i + 1] = group
        return out.clamp_(-1.0, 1.0)

    def _check_frames(self, frames: torch.Tensor) -> None:
        if frames.ndim != 5 or frames.shape[1] != _COLOURS:
            raise ValueError(
                f"DemoVideoCodec.encode expects pixels [B, 3, F, H, W]; got shape {tuple(frames.shape)}."
            )
        h, w = frames.shape[-2:]
        if h == 0 or w == 0 or h % SPATIAL_STRIDE or w % SPATIAL_STRIDE:
            raise ValueError(
                f"DemoVideoCodec needs height and width that are positive multiples of {SPATIAL_STRIDE}; "
                f"got {h}x{w} (e.g. {max(1, h // SPATIAL_STRIDE) * SPATIAL_STRIDE}x"
                f"{max(1, w // SPATIAL_STRIDE) * SPATIAL_STRIDE})."
            )
        latent_frames_for(frames.shape[2], TEMPORAL_STRIDE)

    def _check_latent(self, latent: torch.Tensor) -> None:
        if latent.ndim != 5 or latent.shape[1] != self.latent_channels or latent.shape[2] < 1:
            raise ValueError(
                f"DemoVideoCodec.decode expects a latent [B, {self.latent_channels}, Tv >= 1, h, w]; "
                f"got shape {tuple(latent.shape)}."
            )


def config_fields_from_dict(name: str, config_cls: type, config: dict[str, Any]) -> dict[str, Any]:
    """Checks a codec config dict (an optional matching "name" plus dataclass fields); returns the fields."""
    given = dict(config)
    given_name = given.pop("name", name)
    if given_name != name:
        raise ValueError(f"codec config names {given_name!r}, expected {name!r}.")
    accepted = {f.name for f in fields(config_cls)}
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(f"unknown {name} config keys {unknown}; accepted: {['name', *sorted(accepted)]}.")
    return given
