"""Wan2.2 video VAE network (z_dim 48, stride 4x16x16), key-compatible with `Wan2.2_VAE.pth`.

Reference: github.com/Wan-Video/Wan2.2 @ 42bf4cf, `wan/modules/vae2_2.py` (`WanVAE_`). Parameter names are the
reference's own, so a converted `Wan2.2_VAE` state dict loads with `load_state_dict(strict=True)`.

Causal chunking (reference `WanVAE_.encode` / `decode`):
- encode: pixel frame 0 alone, then chunks of `temporal_stride` frames, sharing one `FeatureCache`;
- decode: one latent frame at a time with a shared cache, the first one flagged `first_chunk`.
The reference's index-based `feat_cache` list is replaced by `FeatureCache`, keyed by module. A cached
causal conv sees the last `CACHE_FRAMES` input frames of earlier chunks (zeros before the clip start), which
is what the reference computes. The upsample3d "Rep" marker equals a cache holding one zero frame.

The decoder is split into a *global* stage (`conv1` + `middle`, at latent resolution, the only place with
attention) and a *local* stage (`upsamples` + `head`, convolutions only), so that `wan_tiling` can tile
the local stage spatially while running the global stage on whole frames.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ... import cancel

CACHE_FRAMES = 2  # frames a k=3 causal conv carries over from earlier chunks (reference CACHE_T)
PATCH = 2  # pixel patchify factor along H and W (3 -> 12 channels)


@dataclass(frozen=True)
class WanVAEConfig:
    """Constructor arguments of `WanVAE_`; the defaults are the released Wan2.2 VAE.

    `attn_scales` is kept for signature parity: Wan2.2's VAE stores it but never builds attention from it
    (only the middle blocks attend), so only `()` is accepted.
    """

    dim: int = 160
    dec_dim: int = 256
    z_dim: int = 48
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temperal_downsample: tuple[bool, ...] = (False, True, True)

    def __post_init__(self) -> None:
        if min(self.dim, self.dec_dim, self.z_dim) < 1 or self.num_res_blocks < 1:
            raise ValueError(f"dim, dec_dim, z_dim and num_res_blocks must be >= 1, got {self}")
        if len(self.dim_mult) < 2 or min(self.dim_mult) < 1:
            raise ValueError(f"dim_mult needs >= 2 positive entries, got {self.dim_mult}")
        if len(self.temperal_downsample) != len(self.dim_mult) - 1:
            raise ValueError(f"temperal_downsample needs len(dim_mult) - 1 = {len(self.dim_mult) - 1} "
                             f"entries (one per downsampling block), got {self.temperal_downsample}")
        if self.attn_scales:
            raise ValueError("attn_scales must be (): Wan2.2's VAE builds no attention at any scale")

    @property
    def spatial_stride(self) -> int:
        return PATCH * 2 ** (len(self.dim_mult) - 1)

    @property
    def temporal_stride(self) -> int:
        return 2 ** sum(self.temperal_downsample)

    @property
    def temperal_upsample(self) -> tuple[bool, ...]:
        return tuple(reversed(self.temperal_downsample))


class FeatureCache:
    """State carried from one temporal chunk to the next, one entry per module (reference `feat_cache`)."""

    def __init__(self) -> None:
        self._state: dict[nn.Module, torch.Tensor] = {}

    def get(self, module: nn.Module) -> torch.Tensor | None:
        return self._state.get(module)

    def set(self, module: nn.Module, value: torch.Tensor) -> None:
        self._state[module] = value


class CausalConv3d(nn.Conv3d):
    """3-D conv padded causally in time (2·pad_t frames in front), symmetric in space.

    With a cache, the front padding is replaced by the last input frames of earlier chunks (zeros for
    any shortfall) and the cache is updated with this chunk's last `CACHE_FRAMES` input frames.
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple[int, int, int] = 0) -> None:
        super().__init__(in_dim, out_dim, kernel, stride=stride, padding=0)
        pt, ph, pw = (padding,) * 3 if isinstance(padding, int) else padding
        self.time_pad = 2 * pt
        self.space_pad = (pw, pw, ph, ph)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        front = self.time_pad
        if cache is not None and front > 0:
            prev = cache.get(self)
            new = x[:, :, -CACHE_FRAMES:]
            if new.shape[2] < CACHE_FRAMES and prev is not None:
                new = torch.cat([prev[:, :, -1:], new], dim=2)
            if prev is not None:
                x = torch.cat([prev, x], dim=2)  # [B, C, T + cached, H, W]
                front -= prev.shape[2]
            cache.set(self, new.clone())
        return super().forward(F.pad(x, (*self.space_pad, front, 0)))


class RMS_norm(nn.Module):  # noqa: N801 (reference class name, kept for recognisability)
    """Reference `RMS_norm`: L2-normalise over channels (eps 1e-12), times sqrt(C) and a per-channel gain."""

    def __init__(self, dim: int, images: bool = False) -> None:
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim, 1, 1) if images else torch.ones(dim, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


def _per_frame(fn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2-D module to every frame of [B, C, T, H, W]."""
    t = x.shape[2]
    y = fn(rearrange(x, "b c t h w -> (b t) c h w"))  # [B*T, C', H', W']
    return rearrange(y, "(b t) c h w -> b c t h w", t=t)


class Upsample2x(nn.Module):
    """Nearest-exact x2 spatial upsampling (reference `Upsample`, index 0 of `resample`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest-exact")


class Resample(nn.Module):
    """Spatial x2 up/down-sampling, optionally with a causal temporal x2 (reference `Resample`)."""

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode.startswith("upsample"):
            self.resample = nn.Sequential(Upsample2x(), nn.Conv2d(dim, dim, 3, padding=1))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        if self.mode == "upsample3d":
            x = self._time_up(x, cache)
        x = _per_frame(self.resample, x)
        if self.mode == "downsample3d":
            x = self._time_down(x, cache)
        return x

    def _time_up(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        """First chunk: no temporal upsampling, the cache starts as one zero frame (reference "Rep")."""
        if cache.get(self.time_conv) is None:
            cache.set(self.time_conv, torch.zeros_like(x[:, :, -1:]))
            return x
        b, c, t, h, w = x.shape
        y = self.time_conv(x, cache).reshape(b, 2, c, t, h, w)  # [B, 2, C, T, H, W]
        return rearrange(y, "b two c t h w -> b c (t two) h w")  # interleave -> [B, C, 2T, H, W]

    def _time_down(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        """First chunk: kept as is and cached; later chunks: stride-2 conv over [last cached frame, x]."""
        prev = cache.get(self.time_conv)
        cache.set(self.time_conv, x[:, :, -1:].clone())
        if prev is None:
            return x
        return self.time_conv(torch.cat([prev, x], dim=2))  # [B, C, (T + 1 - 3) // 2 + 1, H, W]


class ResidualBlock(nn.Module):
    """norm-SiLU-conv-norm-SiLU-(dropout)-conv plus a 1x1x1 shortcut when the width changes."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMS_norm(in_dim), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMS_norm(out_dim), nn.SiLU(), nn.Identity(),  # index 5: Dropout(0.0) in the reference
            CausalConv3d(out_dim, out_dim, 3, padding=1),
        )
        self.shortcut = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        h = self.shortcut(x)
        for layer in self.residual:
            x = layer(x, cache) if isinstance(layer, CausalConv3d) else layer(x)
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over H·W, per frame; `to_qkv` channels split as [q | k | v]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMS_norm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.to_qkv(self.norm(rearrange(x, "b c t h w -> (b t) c h w")))  # [B*T, 3C, H, W]
        q, k, v = rearrange(y, "n (three c) h w -> three n 1 (h w) c", three=3)  # each [B*T, 1, H*W, C]
        y = F.scaled_dot_product_attention(q, k, v)
        y = self.proj(rearrange(y, "n 1 (h w) c -> n c h w", h=h))  # [B*T, C, H, W]
        return rearrange(y, "(b t) c h w -> b c t h w", t=t) + x


def patchify(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, C·4, T, H/2, W/2]; channel = c·4 + r·2 + q (W sub-index before H)."""
    return rearrange(x, "b c f (h q) (w r) -> b (c r q) f h w", q=PATCH, r=PATCH)


def unpatchify(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `patchify`: [B, C·4, T, h, w] -> [B, C, T, 2h, 2w]."""
    return rearrange(x, "b (c r q) f h w -> b c f (h q) (w r)", q=PATCH, r=PATCH)


def _fold_ratio(folded: int, channels: int) -> int:
    """Channel group size of the AvgDown3D / DupUp3D shortcuts; the widths must divide evenly."""
    if folded % channels:
        raise ValueError(f"dim_mult gives a shortcut folding {folded} channels into {channels}; Wan2.2 needs "
                         "each width to divide (4 or 8)x the neighbouring one, e.g. dim_mult (1, 2, 4, 4)")
    return folded // channels


class AvgDown3D(nn.Module):
    """Parameter-free shortcut: space/time-to-channel fold, then the mean over channel groups."""

    def __init__(self, in_dim: int, out_dim: int, factor_t: int, factor_s: int) -> None:
        super().__init__()
        self.out_dim, self.factor_t, self.factor_s = out_dim, factor_t, factor_s
        self.group = _fold_ratio(in_dim * factor_t * factor_s * factor_s, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, 0, (-x.shape[2]) % self.factor_t, 0))  # front-pad T to a multiple
        x = rearrange(x, "b c (t ft) (h fh) (w fw) -> b (c ft fh fw) t h w",
                      ft=self.factor_t, fh=self.factor_s, fw=self.factor_s)
        x = rearrange(x, "b (o g) t h w -> b o g t h w", o=self.out_dim)  # [B, out, group, T', H', W']
        return x.mean(dim=2)


class DupUp3D(nn.Module):
    """Parameter-free shortcut: repeat channels, then unfold them into time/space (inverse of AvgDown3D)."""

    def __init__(self, in_dim: int, out_dim: int, factor_t: int, factor_s: int) -> None:
        super().__init__()
        self.out_dim, self.factor_t, self.factor_s = out_dim, factor_t, factor_s
        self.repeats = _fold_ratio(out_dim * factor_t * factor_s * factor_s, in_dim)

    def forward(self, x: torch.Tensor, first_chunk: bool) -> torch.Tensor:
        x = x.repeat_interleave(self.repeats, dim=1)
        x = rearrange(x, "b (c ft fh fw) t h w -> b c (t ft) (h fh) (w fw)",
                      c=self.out_dim, ft=self.factor_t, fh=self.factor_s)  # [B, out, T·ft, H·fs, W·fs]
        return x[:, :, self.factor_t - 1:] if first_chunk else x


class Down_ResidualBlock(nn.Module):  # noqa: N801 (reference name)
    """Residual blocks then an optional downsample, plus the AvgDown3D shortcut over the whole block."""

    def __init__(self, in_dim: int, out_dim: int, mult: int, temporal: bool, down: bool) -> None:
        super().__init__()
        self.avg_shortcut = AvgDown3D(in_dim, out_dim, 2 if temporal else 1, 2 if down else 1)
        blocks: list[nn.Module] = [ResidualBlock(in_dim if i == 0 else out_dim, out_dim) for i in range(mult)]
        if down:
            blocks.append(Resample(out_dim, "downsample3d" if temporal else "downsample2d"))
        self.downsamples = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        h = x
        for module in self.downsamples:
            h = module(h, cache)
        return h + self.avg_shortcut(x)


class Up_ResidualBlock(nn.Module):  # noqa: N801 (reference name)
    """Residual blocks then an optional upsample, plus the DupUp3D shortcut when upsampling."""

    def __init__(self, in_dim: int, out_dim: int, mult: int, temporal: bool, up: bool) -> None:
        super().__init__()
        self.avg_shortcut = DupUp3D(in_dim, out_dim, 2 if temporal else 1, 2) if up else None
        blocks: list[nn.Module] = [ResidualBlock(in_dim if i == 0 else out_dim, out_dim) for i in range(mult)]
        if up:
            blocks.append(Resample(out_dim, "upsample3d" if temporal else "upsample2d"))
        self.upsamples = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, cache: FeatureCache, first_chunk: bool) -> torch.Tensor:
        h = x
        for module in self.upsamples:
            h = module(h, cache)
        return h if self.avg_shortcut is None else h + self.avg_shortcut(x, first_chunk)


def _middle(dim: int) -> nn.Sequential:
    return nn.Sequential(ResidualBlock(dim, dim), AttentionBlock(dim), ResidualBlock(dim, dim))


def _head(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(RMS_norm(dim), nn.SiLU(), CausalConv3d(dim, out_dim, 3, padding=1))


def _run(seq: nn.Sequential, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
    """Run a middle/head sequence; layers that need a cache get it."""
    for layer in seq:
        x = layer(x, cache) if isinstance(layer, (CausalConv3d, ResidualBlock, AttentionBlock)) else layer(x)
    return x


class Encoder3d(nn.Module):
    """Patchified video chunk [B, 12, T, H, W] -> [B, 2·z_dim, T', H/8, W/8] (reference `Encoder3d`)."""

    def __init__(self, cfg: WanVAEConfig) -> None:
        super().__init__()
        dims = [cfg.dim * u for u in (1, *cfg.dim_mult)]
        last = len(cfg.dim_mult) - 1
        self.conv1 = CausalConv3d(3 * PATCH * PATCH, dims[0], 3, padding=1)
        self.downsamples = nn.Sequential(*[
            Down_ResidualBlock(dims[i], dims[i + 1], cfg.num_res_blocks,
                               i < last and cfg.temperal_downsample[i], i != last)
            for i in range(len(cfg.dim_mult))])
        self.middle = _middle(dims[-1])
        self.head = _head(dims[-1], cfg.z_dim * 2)

    def forward(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        x = self.conv1(x, cache)
        for block in self.downsamples:
            x = block(x, cache)
        return _run(self.head, _run(self.middle, x, cache), cache)


class Decoder3d(nn.Module):
    """One latent frame [B, z_dim, 1, h, w] -> patchified pixels [B, 12, 1 or t_stride, 8h, 8w]."""

    def __init__(self, cfg: WanVAEConfig) -> None:
        super().__init__()
        dims = [cfg.dec_dim * u for u in (cfg.dim_mult[-1], *reversed(cfg.dim_mult))]
        last = len(cfg.dim_mult) - 1
        self.conv1 = CausalConv3d(cfg.z_dim, dims[0], 3, padding=1)
        self.middle = _middle(dims[0])
        self.upsamples = nn.Sequential(*[
            Up_ResidualBlock(dims[i], dims[i + 1], cfg.num_res_blocks + 1,
                             i < last and cfg.temperal_upsample[i], i != last)
            for i in range(len(cfg.dim_mult))])
        self.head = _head(dims[-1], 3 * PATCH * PATCH)

    def forward_global(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        """conv1 + middle (with attention over the whole frame), at latent resolution."""
        return _run(self.middle, self.conv1(x, cache), cache)

    def forward_local(self, x: torch.Tensor, cache: FeatureCache, first_chunk: bool) -> torch.Tensor:
        """upsamples + head: convolutions only, so it can run on spatial tiles."""
        for block in self.upsamples:
            x = block(x, cache, first_chunk)
        return _run(self.head, x, cache)

    def forward(self, x: torch.Tensor, cache: FeatureCache, first_chunk: bool) -> torch.Tensor:
        return self.forward_local(self.forward_global(x, cache), cache, first_chunk)


class WanVAE(nn.Module):
    """Wan2.2 VAE (reference `WanVAE_`) working in raw (un-normalised) latent space."""

    def __init__(self, config: WanVAEConfig = WanVAEConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder3d(config)
        self.conv1 = CausalConv3d(config.z_dim * 2, config.z_dim * 2, 1)
        self.conv2 = CausalConv3d(config.z_dim, config.z_dim, 1)
        self.decoder = Decoder3d(config)

    def encode(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Video [B, 3, 1 + s·k, H, W] -> (mu, log_var), each [B, z_dim, 1 + k, H/S, W/S].

        Frame 0 is encoded alone, then chunks of s = temporal_stride frames, with one shared cache.
        """
        stride = self.config.temporal_stride
        if (video.shape[2] - 1) % stride:
            raise ValueError(f"the encoder needs 1 + {stride}·k frames, got {video.shape[2]}")
        x = patchify(video)  # [B, 12, F, H/2, W/2]
        chunks = [x[:, :, :1]] + ([] if x.shape[2] == 1 else list(x[:, :, 1:].split(stride, dim=2)))
        return self.encode_chunks(chunks)

    def encode_chunks(self, chunks: Iterable[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Patchified chunks (the first of 1 frame, then `temporal_stride` frames each), in order, with one
        shared cache -> (mu, log_var) [B, z_dim, chunks, h, w]. Chunks may be produced lazily (a static clip
        never exists whole); the cancel check runs between chunks."""
        cache, outs = FeatureCache(), []
        for chunk in chunks:
            cancel.check()
            outs.append(self.encoder(chunk, cache))  # [B, 2z, 1, h, w]
        mu, log_var = self.conv1(torch.cat(outs, dim=2)).chunk(2, dim=1)
        return mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latent [B, z_dim, T', h, w] -> unclamped video [B, 3, 1 + s·(T' - 1), H, W].

        Latent frames are decoded one at a time, in order, with one shared cache (reference `decode`); each
        one is unpatchified straight into the preallocated output.
        """
        x, cache = self.conv2(z), FeatureCache()
        b, _, t, h, w = z.shape
        s = self.config.spatial_stride
        out = z.new_empty(b, 3, 1 + self.config.temporal_stride * (t - 1), h * s, w * s)  # [B, 3, F, H, W]
        f0 = 0
        for i in range(t):
            cancel.check()
            frames = unpatchify(self.decoder(x[:, :, i:i + 1], cache, first_chunk=i == 0))  # [B, 3, f, H, W]
            out[:, :, f0:f0 + frames.shape[2]] = frames
            f0 += frames.shape[2]
        return out
