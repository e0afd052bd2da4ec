"""Tiled Wan2.2 VAE decode (harmony_core/codecs/wan/tiling.py) against the untiled decode.

"Away from seams": a pixel whose latent cell lies at least `local_receptive_radius` cells from every crop edge
that is not a frame edge, for every tile covering it. The local (tiled) stage's output there cannot see the
zero padding at tile borders, so it must equal the untiled decode up to float noise (atol 1e-4).
"""
from __future__ import annotations

import pytest
import torch

from harmony_core.codecs.wan.codec import WanVideoCodec
from harmony_core.codecs.wan.tiling import TileSpec, decode_tiled, local_receptive_radius, tile_spans
from harmony_core.codecs.wan.vae import WanVAEConfig

TOL = dict(atol=1e-4, rtol=1e-4)
SMALL = WanVAEConfig(dim=4, dec_dim=4, z_dim=8, dim_mult=(1, 2, 2), num_res_blocks=1,
                     temperal_downsample=(False, True))  # stride 2x8x8, receptive radius 8 cells
TINY = WanVAEConfig(dim=12, dec_dim=16)  # the parity fixture's widths: real structure, stride 4x16x16


def _near_seam(n: int, spec: TileSpec, config: WanVAEConfig) -> torch.Tensor:
    """[n·stride] bool per pixel of one axis: True where a covering tile has an inner crop edge within the
    receptive radius."""
    s, r = config.spatial_stride, local_receptive_radius(config)
    near = torch.zeros(n * s, dtype=torch.bool)
    for a, b in tile_spans(n, spec.tile, spec.overlap):
        lo, hi = max(0, a - spec.context), min(n, b + spec.context)
        cells = torch.arange(a, b).repeat_interleave(s)  # latent cell of each core pixel
        near[a * s:b * s] |= ((lo > 0) & (cells - lo < r)) | ((hi < n) & (hi - 1 - cells < r))
    return near


@pytest.fixture(scope="module")
def small() -> tuple[WanVideoCodec, torch.Tensor, torch.Tensor]:
    codec = WanVideoCodec.random(SMALL, seed=1)
    z = torch.randn(1, 8, 3, 40, 40, generator=torch.Generator().manual_seed(2))  # -> [1, 3, 5, 320, 320]
    with torch.no_grad():
        return codec, z, codec.vae.decode(z)


def test_receptive_radius_values() -> None:
    assert local_receptive_radius(WanVAEConfig()) == 13
    assert local_receptive_radius(TINY) == 13
    assert local_receptive_radius(SMALL) == 8


def test_overlap_blend_matches_away_from_seams_and_stays_close(small: tuple) -> None:
    codec, z, ref = small
    spec = TileSpec(tile=24, overlap=6, context=0)  # cores [0, 24) and [16, 40) on both axes: 4 tiles
    with torch.no_grad():
        out = decode_tiled(codec.vae, z, spec)
    near = _near_seam(40, spec, SMALL)
    away = ~(near[:, None] | near[None, :])  # [H, W]
    assert away.float().mean() > 0.6  # the comparison is not vacuous
    torch.testing.assert_close(out[..., away], ref[..., away], **TOL)
    # near the seams zero padding leaks in, but the blend keeps the whole frame close (video std ~0.23)
    diff = (out - ref).abs()
    assert diff.mean() < 5e-3 and diff.max() < 0.25


def test_context_covering_the_radius_is_exact_everywhere(small: tuple) -> None:
    codec, z, ref = small
    radius = local_receptive_radius(SMALL)
    for spec in (TileSpec(tile=20, overlap=0, context=radius),  # grid covers each pixel exactly once
                 TileSpec(tile=16, overlap=2, context=radius)):  # uneven spacing, blended overlaps
        with torch.no_grad():
            out = decode_tiled(codec.vae, z, spec)
        torch.testing.assert_close(out, ref, **TOL)
    with torch.no_grad():  # the radius is tight: one cell less of context lets the padding in
        short = decode_tiled(codec.vae, z, TileSpec(tile=20, overlap=0, context=radius - 1))
    assert (short - ref).abs().max() > 1e-5


def test_exact_once_grid_without_context_differs_only_at_seams(small: tuple) -> None:
    codec, z, ref = small
    spec = TileSpec(tile=20, overlap=0, context=0)
    assert tile_spans(40, 20, 0) == [(0, 20), (20, 40)]
    with torch.no_grad():
        out = decode_tiled(codec.vae, z, spec)
    near = _near_seam(40, spec, SMALL)
    away = ~(near[:, None] | near[None, :])
    torch.testing.assert_close(out[..., away], ref[..., away], **TOL)
    assert (out - ref)[..., ~away].abs().max() > 1e-3  # the seam region really is affected (test is real)


def test_real_structure_with_attention_is_exact_with_context() -> None:
    """Stride 4x16x16 and the decoder's global attention: the global stage runs untiled, so tiles match."""
    codec = WanVideoCodec.random(TINY, seed=3)
    z = torch.randn(1, 48, 2, 2, 32, generator=torch.Generator().manual_seed(4))  # -> [1, 3, 5, 32, 512]
    spec = TileSpec(tile=16, overlap=0, context=local_receptive_radius(TINY))
    codec.tiling = spec
    with torch.no_grad():
        ref = codec.vae.decode(codec.denormalize(z))
        out = decode_tiled(codec.vae, codec.denormalize(z), spec)
    torch.testing.assert_close(out, ref, **TOL)
    torch.testing.assert_close(codec.decode(z), ref.clamp(-1, 1), **TOL)


def test_tiles_bound_the_decoded_area(small: tuple) -> None:
    codec, z, _ = small
    spec = TileSpec(tile=12, overlap=4, context=2)
    widths: list[tuple[int, int]] = []
    hook = codec.vae.decoder.head[2].register_forward_hook(lambda m, i, o: widths.append(tuple(o.shape[-2:])))
    calls: list[tuple[int, int]] = []
    try:
        with torch.no_grad():
            decode_tiled(codec.vae, z, spec, progress=lambda done, total: calls.append((done, total)))
    finally:
        hook.remove()
    crop = (spec.tile + 2 * spec.context) * SMALL.spatial_stride // 2  # patchified pixels
    assert max(max(w) for w in widths) <= crop
    n = len(tile_spans(40, 12, 4)) ** 2
    assert calls == [(k + 1, n) for k in range(n)]


@pytest.mark.parametrize("n, tile, overlap", [(40, 24, 6), (37, 8, 3), (16, 16, 0), (5, 8, 2), (33, 10, 0)])
def test_tile_spans_cover_with_requested_overlap(n: int, tile: int, overlap: int) -> None:
    spans = tile_spans(n, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(b - a == min(tile, n) for a, b in spans)
    assert all(a1 <= b0 - overlap and a1 > a0 for (a0, b0), (a1, _) in zip(spans, spans[1:]))


def test_tile_spec_validation() -> None:
    for bad in (dict(tile=0), dict(tile=8, overlap=8), dict(overlap=-1), dict(context=-1)):
        with pytest.raises(ValueError, match="TileSpec needs"):
            TileSpec(**bad)
