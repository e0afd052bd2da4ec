"""Spatially tiled, temporally causal decoding for the Wan2.2 VAE (memory bounded by the tile size).

How it works (see `decode_tiled`):
1. Global stage, whole frames: `conv2`, then `decoder.conv1` + `decoder.middle` per latent frame with one
   cache. This stage holds the decoder's only attention (global over H·W), runs at latent resolution and is
   cheap, so tiling it would only add error. Its output for all latent frames is kept (C_mid·h·w per frame,
   about a third of the decoded video's own size at the real width).
2. Local stage, per tile: `decoder.upsamples` + `decoder.head` (convolutions, nearest upsampling,
   pointwise norms) run over each tile's crop through *all* latent frames in order, with the tile's own
   `FeatureCache`. Only one tile's activations and caches are alive at a time, so peak memory scales with
   the tile area, not the frame area (plus the output video and the stage-1 features).

Tiles (all sizes in latent cells, 1 cell = `spatial_stride` pixels): cores of `tile` cells cover each axis,
evenly spaced so that neighbours share at least `overlap` cells; each core is decoded with up to `context`
extra cells beyond every interior edge, which are then discarded.

Blending: each core gets a weight that is 1 inside and ramps linearly, w(i) = (i + 0.5) / (overlap·stride),
over the first `overlap·stride` pixels from an interior edge (edges on the frame border are not ramped);
the 2-D weight is the product of the row and column weights. The output is Σ w·tile / Σ w, so the weights
always form a partition of unity; where two ramps meet they cross-fade linearly.

Exactness: the local stage's output at a pixel depends only on latent cells within `local_receptive_radius`
cells of the pixel's own cell. A tile's pixel is therefore exact (equal to the untiled decode) when every
crop edge that is not a frame edge lies at least that many cells away. With `context >= radius` every pixel
is exact; with `context = 0` only pixels away from the seams are.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ... import cancel
from .vae import PATCH, FeatureCache, WanVAE, WanVAEConfig, unpatchify

Span = tuple[int, int]  # [a, b) in latent cells


@dataclass(frozen=True)
class TileSpec:
    """Spatial tiling of the decoder's local stage; every size is in latent cells."""

    tile: int = 32  # core size along H and W (32 cells = 512 pixels for the Wan2.2 VAE)
    overlap: int = 4  # minimum cells shared by neighbouring cores, linearly cross-faded (64 px)
    context: int = 4  # cells decoded beyond each interior core edge and discarded (shrinks seam error)

    def __post_init__(self) -> None:
        if self.tile < 1 or not 0 <= self.overlap < self.tile or self.context < 0:
            raise ValueError(f"TileSpec needs tile >= 1, 0 <= overlap < tile and context >= 0, got {self}")


def tile_spans(n: int, tile: int, overlap: int) -> list[Span]:
    """Core intervals [a, b) of size min(tile, n) covering [0, n), evenly spaced, overlapping >= `overlap`."""
    if n <= tile:
        return [(0, n)]
    count = math.ceil((n - overlap) / (tile - overlap))
    starts = [round(i * (n - tile) / (count - 1)) for i in range(count)]
    return [(s, s + tile) for s in starts]


def local_support(config: WanVAEConfig, pixel: int) -> tuple[int, int]:
    """Inclusive latent-cell interval that output pixel row/column `pixel` depends on in the local stage.

    Walks back through unpatchify, the head conv, and per up block its upsampling conv, the nearest x2
    upsampling and its residual blocks (two 3x3 convs each); the DupUp3D shortcut is covered by the same
    nearest mapping.
    """
    lo, hi = pixel // PATCH, pixel // PATCH  # unpatchify
    lo, hi = lo - 1, hi + 1  # head conv
    res_convs = 2 * (config.num_res_blocks + 1)
    for i in reversed(range(len(config.dim_mult))):
        if i != len(config.dim_mult) - 1:
            lo, hi = (lo - 1) // 2, (hi + 1) // 2  # Resample: 3x3 conv, then back through nearest x2
        lo, hi = lo - res_convs, hi + res_convs
    return lo, hi


def local_receptive_radius(config: WanVAEConfig) -> int:
    """Largest distance, in latent cells, from a pixel's own cell to a cell its local-stage output uses."""
    s = config.spatial_stride
    return max(max(p // s - local_support(config, p)[0], local_support(config, p)[1] - p // s)
               for p in range(s))


def _ramp(core: Span, n: int, spec: TileSpec, stride: int) -> torch.Tensor:
    """1-D blend weight over a core's pixels: linear ramps of overlap·stride pixels at interior edges."""
    a, b = core
    length, width = (b - a) * stride, spec.overlap * stride
    w = torch.ones(length)
    if width > 0:
        rise = ((torch.arange(length) + 0.5) / width).clamp(max=1.0)
        if a > 0:
            w = torch.minimum(w, rise)
        if b < n:
            w = torch.minimum(w, rise.flip(0))
    return w


def global_features(vae: WanVAE, z: torch.Tensor) -> torch.Tensor:
    """Raw latent [B, z_dim, T, h, w] -> decoder middle output [B, C_mid, T, h, w], whole frames."""
    x, cache = vae.conv2(z), FeatureCache()
    outs = []
    for i in range(x.shape[2]):
        cancel.check()
        outs.append(vae.decoder.forward_global(x[:, :, i:i + 1], cache))  # [B, C_mid, 1, h, w]
    return torch.cat(outs, dim=2)


def _crop(core: Span, n: int, context: int) -> Span:
    return max(0, core[0] - context), min(n, core[1] + context)


def _decode_tile(vae: WanVAE, feats: torch.Tensor, rows: tuple[Span, Span], cols: tuple[Span, Span],
                 out: torch.Tensor,
                 weight: torch.Tensor) -> None:
    """Decode one tile through all latent frames (own cache) and add weight·pixels of its core into `out`.

    rows/cols: ((core_a, core_b), (crop_a, crop_b)) in latent cells; weight: [cy, cx] over the core pixels.
    """
    s = vae.config.spatial_stride
    (ya, yb), (cya, cyb) = rows
    (xa, xb), (cxa, cxb) = cols
    ys, xs = slice((ya - cya) * s, (yb - cya) * s), slice((xa - cxa) * s, (xb - cxa) * s)
    cache, f0 = FeatureCache(), 0
    for i in range(feats.shape[2]):
        cancel.check()
        x = feats[:, :, i:i + 1, cya:cyb, cxa:cxb]  # [B, C_mid, 1, crop_h, crop_w]
        pixels = unpatchify(vae.decoder.forward_local(x, cache, first_chunk=i == 0))  # [B, 3, f, H', W']
        f1 = f0 + pixels.shape[2]
        out[:, :, f0:f1, ya * s:yb * s, xa * s:xb * s] += weight * pixels[..., ys, xs].float()
        f0 = f1


def decode_tiled(vae: WanVAE, z: torch.Tensor, spec: TileSpec,
                 progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Raw latent [B, z_dim, T, h, w] -> unclamped video [B, 3, 1 + s(T - 1), H, W], tiled as `spec` says.

    `progress(done, total)` is called after each tile. Accumulates in float32, returns z's dtype.
    """
    cfg = vae.config
    b, _, t, h, w = z.shape
    s, frames = cfg.spatial_stride, 1 + cfg.temporal_stride * (t - 1)
    feats = global_features(vae, z)  # [B, C_mid, T, h, w]
    out = torch.zeros(b, 3, frames, h * s, w * s, device=z.device)  # [B, 3, F, H, W]
    total = torch.zeros(h * s, w * s, device=z.device)  # Σ weights, [H, W]
    row_spans, col_spans = tile_spans(h, spec.tile, spec.overlap), tile_spans(w, spec.tile, spec.overlap)
    for k, (ry, rx) in enumerate((ry, rx) for ry in row_spans for rx in col_spans):
        weight = torch.outer(_ramp(ry, h, spec, s), _ramp(rx, w, spec, s)).to(z.device)  # [cy, cx]
        rows, cols = (ry, _crop(ry, h, spec.context)), (rx, _crop(rx, w, spec.context))
        _decode_tile(vae, feats, rows, cols, out, weight)
        total[ry[0] * s:ry[1] * s, rx[0] * s:rx[1] * s] += weight
        if progress is not None:
            progress(k + 1, len(row_spans) * len(col_spans))
    return out.div_(total).to(z.dtype)
