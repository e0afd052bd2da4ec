"""The demo video codec's "keyframe" temporal basis: exactness, causality, locality, continuity across
latent boundaries, and the sync robustness it was made for (compared with the "block" basis)."""
from __future__ import annotations

import pytest
import torch

from harmony_core.codecs.demo import DemoVideoCodec, DemoVideoConfig, demo_codec_from_config
from harmony_core.codecs.demo_video import coefficient_order
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
    torch.testing.assert_close(first, small.encode(x)[:, :, :1], atol=1e-5, rtol=0)
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


def boundary_ratio(codec: DemoVideoCodec) -> float:
    """Noise on the latents of a still clip: mean |frame difference| into the first frame of each latent
    (frames 4i + 1) over the mean into the other frames."""
    still = codec.static_latent(torch.zeros(1, 3, 32, 32), 41, 32, 32)
    noisy = still + 0.3 * torch.randn(still.shape, generator=torch.Generator().manual_seed(0))
    diff = codec.decode(noisy).diff(dim=2).abs().mean(dim=(0, 1, 3, 4))  # [F - 1], diff k: frame k -> k+1
    boundary = torch.zeros_like(diff, dtype=torch.bool)
    boundary[0::4] = True  # frames 4i -> 4i + 1 cross from latent i to latent i + 1
    return (diff[boundary].mean() / diff[~boundary].mean()).item()


def test_disagreeing_latents_ramp_instead_of_jumping() -> None:
    assert boundary_ratio(keyframe()) < 1.5  # measured ~1.0
    assert boundary_ratio(DemoVideoCodec(DemoVideoConfig(latent_channels=18))) > 4.0  # block: jumps


def test_noisy_latents_keep_sync_with_keyframes_not_with_blocks() -> None:
    """The reason for the basis: round trip of held-out demo clips with i.i.d. latent noise."""
    clips = heldout_clips(8)

    def lag0(codec: DemoVideoCodec) -> float:
        g, pairs = torch.Generator().manual_seed(0), []
        for c in clips:
            z = codec.encode(c.frames.permute(3, 0, 1, 2)[None] * 2 - 1)
            y = codec.decode(z + 0.3 * torch.randn(z.shape, generator=g))[0].permute(1, 2, 3, 0)
            pairs.append(AVPair((y + 1) / 2, c.fps, c.wave, c.sample_rate, kind=c.kind))
        return evaluate_clips(pairs).summary["all"]["lag0"].mean

    assert lag0(keyframe()) > 0.5  # measured 0.65 on 32 clips
    assert lag0(DemoVideoCodec(DemoVideoConfig(latent_channels=18))) < 0.3  # measured 0.09


def test_static_latent_has_no_detail() -> None:
    codec = keyframe()
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    z = codec.static_latent(image, 9, 32, 32)
    torch.testing.assert_close(z, z[:, :, :1].expand_as(z), atol=1e-5, rtol=0)
    detail = [k for k, (t, _, _, _) in enumerate(coefficient_order()[:18]) if t > 0]
    assert detail and z[:, detail].abs().max() < 1e-5


def test_config_round_trip_and_errors() -> None:
    codec = keyframe(20)
    assert codec.to_config() == {"name": "demo_video", "latent_channels": 20, "temporal": "keyframe"}
    assert demo_codec_from_config(codec.to_config()).config == codec.config
    assert DemoVideoCodec(DemoVideoConfig(20)).to_config() == {"name": "demo_video", "latent_channels": 20}
    assert preset("demo").codecs["video"]["temporal"] == "keyframe"
    with pytest.raises(ValueError, match="temporal='wavelet' is not accepted"):
        DemoVideoConfig(temporal="wavelet").validate()
