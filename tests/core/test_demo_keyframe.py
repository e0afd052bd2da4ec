"""The demo video codec's "keyframe" temporal basis: exactness, causality, locality, continuity across
latent boundaries, and the sync robustness it was made for (compared with the "block" basis)."""
from __future__ import annotations

import math

import pytest
import torch

from harmony_core.codecs.demo import DemoVideoCodec, DemoVideoConfig, demo_codec_from_config
from harmony_core.codecs.demo.video import coefficient_order
from harmony_core.config import preset
from harmony_core.metrics import AVPair, evaluate_clips
from harmony_core.train.ablate import heldout_clips


def keyframe(channels: int = 18) -> DemoVideoCodec:
    return DemoVideoCodec(DemoVideoConfig(latent_channels=channels, temporal="keyframe"))


def test_full_basis_is_lossless_and_one_frame_is_latent_zero() -> None:
    codec = keyframe(768)
    x = torch.rand(2, 3, 13, 16, 24) * 1.8 - 0.9
    z = codec.encode(x)
    assert z.shape == (2, 768, 4, 2, 3)
    torch.testing.assert_close(codec.decode(z), x, atol=2e-5, rtol=0)
    small = keyframe()
    first = small.encode(x[:, :, :1])  # a reference image alone is the clip's latent 0
    # the same 192-term spatial dot products in two batch shapes: each within gamma_(n+3) sqrt(n) max|x| /
    # scale of the exact value (see test_static_latent_has_no_detail), so twice that apart: 1.6e-3 here
    n, u = 192, 2.0**-24
    gamma = (n + 3) * u / (1 - (n + 3) * u)
    bound = 2 * gamma * math.sqrt(n) * x.abs().max().item() / small.scale.min().item()
    torch.testing.assert_close(first, small.encode(x)[:, :, :1], atol=bound, rtol=0)
    assert small.decode(first).shape == (2, 3, 1, 16, 24)


def test_encode_is_causal_and_decode_is_local() -> None:
    codec = keyframe()
    x = torch.rand(1, 3, 13, 16, 16) * 2 - 1
    z = codec.encode(x)
    # latent i reads frames 4i-4 .. 4i (keyframe i-1 only through the interpolation)
    for frame, readers in ((0, [0, 1]), (1, [1]), (4, [1, 2]), (5, [2]), (12, [3])):
        x2 = x.clone()
        x2[:, :, frame] = -x2[:, :, frame]
        changed = (codec.encode(x2) - z).abs().amax(dim=(0, 1, 3, 4)) > 1e-6  # [Tv]
        assert changed.nonzero().flatten().tolist() == readers
    z2 = z.clone()
    z2[:, :, 2] += 1.0  # latent 2 reaches from keyframe 1 to keyframe 3, exclusive
    changed = (codec.decode(z2) - codec.decode(z)).abs().amax(dim=(0, 1, 3, 4)) > 1e-6  # [F]
    assert changed.nonzero().flatten().tolist() == list(range(5, 12))


def boundary_ratio(codec: DemoVideoCodec, tv: int = 11) -> float:
    """I.i.d. unit noise on the latents of one 8x8 cell: RMS frame difference into the first frame of each
    latent (frames 4i + 1) over the RMS into the other frames. Exact expectation, not a sample: decode is
    linear (the clamp is out of reach at amplitude 0.01), so E[d^2] is the sum over unit latents of d^2."""
    k = codec.latent_channels
    unit = 0.01 * torch.eye(k * tv).reshape(k * tv, k, tv, 1, 1)
    d2 = (codec.decode(unit) / 0.01).diff(dim=2).pow(2).sum(0).mean(dim=(0, 2, 3))  # [F - 1]: frame k -> k+1
    boundary = torch.zeros_like(d2, dtype=torch.bool)
    boundary[0::4] = True  # frames 4i -> 4i + 1 cross from latent i to latent i + 1
    return (d2[boundary].mean() / d2[~boundary].mean()).sqrt().item()


def test_disagreeing_latents_ramp_instead_of_jumping() -> None:
    # keyframe: every basis function is continuous across latent boundaries, so a boundary step is like any
    # other (exactly 1.03 for 18 channels); block: each latent decodes on its own, so the boundary step
    # carries the whole disagreement of two latents (exactly 11.9). The bounds sit far from both.
    assert boundary_ratio(keyframe()) < 1.5
    assert boundary_ratio(DemoVideoCodec(DemoVideoConfig(latent_channels=18))) > 4.0  # block: jumps


def test_noisy_latents_keep_sync_with_keyframes_not_with_blocks() -> None:
    """The reason for the basis: round trip of held-out demo clips with i.i.d. latent noise."""
    clips = heldout_clips(8)

    def above_chance(report) -> float:  # lag-0 sync minus the same report's shuffled-pair (chance) level
        return report.summary["all"]["lag0"].mean - report.shuffled_summary["all"]["lag0"].mean

    def noisy(codec: DemoVideoCodec) -> float:
        g, pairs = torch.Generator().manual_seed(0), []
        for c in clips:
            z = codec.encode(c.frames.permute(3, 0, 1, 2)[None] * 2 - 1)
            y = codec.decode(z + 0.3 * torch.randn(z.shape, generator=g))[0].permute(1, 2, 3, 0)
            pairs.append(AVPair((y + 1) / 2, c.fps, c.wave, c.sample_rate, kind=c.kind))
        return above_chance(evaluate_clips(pairs))

    # Baseline: the clips themselves, scored by the same metric (0.73 above chance here). With noise, the
    # keyframe round trip keeps more than half of it (0.56; 0.57 without noise) and the block round
    # trip less than half (0.08); the two sit 1.5x above and 4.7x below the line.
    original = above_chance(evaluate_clips([AVPair(c.frames, c.fps, c.wave, c.sample_rate, kind=c.kind)
                                            for c in clips]))
    assert noisy(keyframe()) > 0.5 * original
    assert noisy(DemoVideoCodec(DemoVideoConfig(latent_channels=18))) < 0.5 * original


def test_static_latent_has_no_detail() -> None:
    codec = keyframe()
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    z = codec.static_latent(image, 9, 32, 32)
    # Exactly, every frame has the same spatial coefficients Y and the detail (t > 0) is 0. In float32: Y is a
    # dot product of n = 192 pixels with a unit-norm row, |error| <= gamma_(n+1) sqrt(n) max|x| =: E (Higham
    # eq. 3.5 + Cauchy-Schwarz; gamma_k = k u / (1 - k u), u = 2^-24); the residual inner - interpolation
    # adds two such errors and ~4 roundings of |Y| <= sqrt(n) max|x|, the unit-norm DST-I over 3 frames
    # multiplies by at most sqrt(3), and the scale divides: sqrt(3) gamma_(2n+8) sqrt(n) max|x| / min(scale)
    # = 1.73 * 392 * 5.96e-8 * 13.9 * 1.0 / 0.177 = 3.2e-3, against O(0.1) for a still that moved.
    n, u = 192, 2.0**-24
    gamma = (2 * n + 8) * u / (1 - (2 * n + 8) * u)
    bound = math.sqrt(3) * gamma * math.sqrt(n) * image.abs().max().item() / codec.scale.min().item()
    torch.testing.assert_close(z, z[:, :, :1].expand_as(z), atol=bound, rtol=0)  # latent 0's detail: exact 0
    detail = [k for k, (t, _, _, _) in enumerate(coefficient_order()[:18]) if t > 0]
    assert detail and z[:, detail].abs().max() < bound


def test_config_round_trip_and_errors() -> None:
    codec = keyframe(20)
    assert codec.to_config() == {"name": "demo_video", "latent_channels": 20, "temporal": "keyframe"}
    assert demo_codec_from_config(codec.to_config()).config == codec.config
    assert DemoVideoCodec(DemoVideoConfig(20)).to_config() == {"name": "demo_video", "latent_channels": 20}
    assert preset("demo").codecs["video"]["temporal"] == "keyframe"
    with pytest.raises(ValueError, match="temporal='wavelet' is not accepted"):
        DemoVideoConfig(temporal="wavelet").validate()


def one_frame_flash(frames: int = 13, frame: int = 6, amplitude: float = 0.5) -> torch.Tensor:
    """Mid grey [1, 3, F, 16, 16] whose frame `frame` alone is brighter by `amplitude` (a flash)."""
    x = torch.zeros(1, 3, frames, 16, 16)
    x[:, :, frame] = amplitude
    return x


def test_extra_coefficient_puts_a_one_frame_event_on_its_frame() -> None:
    """Frame 6 is the middle inner frame of latent 2 (frames 5..7 between keyframes 4 and 8). Its residual
    [0, a, 0] projects on the DST-I rows sqrt(1/2) [sin(pi t j / 4)]_j as a / sqrt(2) (t = 1), 0 (t = 2),
    -a / sqrt(2) (t = 3). The 24 cheapest coefficients keep only t = 1, 2 of the luma DC, so the flash comes
    back as a [1/(2 sqrt 2), 1/2, 1/(2 sqrt 2)] over frames 5..7; with t = 3 as an extra channel it comes
    back exactly. Float32 error: encode and decode each take n = 192-term spatial dot products with unit-norm
    rows, |error| <= gamma_(n+8) sqrt(n) max|x| apiece (as in test_static_latent_has_no_detail, with room for
    the residual and the 3-term DST-I), so 2 gamma_(n+8) sqrt(n) max|x| = 1.6e-4 bounds the round trip;
    the smeared and exact answers differ by 0.18 or more."""
    n, u = 192, 2.0**-24
    x = one_frame_flash()
    bound = 2 * (n + 8) * u / (1 - (n + 8) * u) * math.sqrt(n) * x.abs().max().item()
    cheap = keyframe(24)
    timed = DemoVideoCodec(DemoVideoConfig(25, "keyframe", extra=((3, 0, 0, 0),)))
    a, s = 0.5, 1 / (2 * math.sqrt(2))
    smeared = torch.zeros(13)
    smeared[5:8] = torch.tensor([s * a, a / 2, s * a])
    for codec, want in ((cheap, smeared), (timed, x[0, 0, :, 0, 0])):
        y = codec.decode(codec.encode(x))
        torch.testing.assert_close(y, want[None, None, :, None, None].expand_as(y), atol=bound, rtol=0)
    assert timed.config.extra == ((3, 0, 0, 0),) and timed.latent_channels == cheap.latent_channels + 1


def test_extra_coefficients_config_round_trip_and_errors() -> None:
    codec = DemoVideoCodec(DemoVideoConfig(20, "keyframe", extra=((3, 0, 0, 0), (2, 1, 0, 0))))
    assert codec.to_config()["extra"] == [[3, 0, 0, 0], [2, 1, 0, 0]]
    again = demo_codec_from_config(codec.to_config())
    assert again.config == codec.config and torch.equal(again.t_idx, codec.t_idx)
    assert again.t_idx.tolist()[-2:] == [3, 2] and "extra" not in keyframe(20).to_config()   # old layout
    cheapest = coefficient_order()[0]
    for bad in (((3, 0, 0, 0), (3, 0, 0, 0)), (cheapest,), ((4, 0, 0, 0),), ((3, 0, 8, 0),), ((3, 0, 0),),
                ((3.0, 0, 0, 0),), ((3, 0, 0, True),)):
        with pytest.raises(ValueError, match="extra"):
            DemoVideoConfig(20, "keyframe", extra=bad).validate()
    with pytest.raises(ValueError, match="extra"):
        DemoVideoConfig(1, "keyframe", extra=((3, 0, 0, 0),)).validate()

