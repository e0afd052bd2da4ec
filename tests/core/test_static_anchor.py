"""The SyncCFG static-video anchor is built without the full-size held clip, and equals encoding that clip.

Demo codecs are causal with a one-latent-frame reach (latent i reads frames 4i-4 .. 4i), so a short clip's last
latent is repeated; the Wan2.2 VAE streams the held frame chunk by chunk through its causal cache. Both are
compared with the straightforward encode of the whole held clip. Tolerance: float32 sums of at most 768 terms
(the demo basis) of values <= 1 in size: 768 * 2**-24 * 8 (the DC scale) ~ 4e-4 absolute is a safe bound on
re-association differences; the Wan encoder runs the same ops in the same order, so it must match exactly.
"""
from __future__ import annotations

import pytest
import torch

from harmony_core import cancel
from harmony_core.codecs.demo.video import DemoVideoCodec, DemoVideoConfig
from harmony_core.codecs.wan.codec import WanVideoCodec
from harmony_core.codecs.wan.vae import WanVAEConfig

SMALL_WAN = WanVAEConfig(dim=4, dec_dim=4, z_dim=8, dim_mult=(1, 2, 2), num_res_blocks=1,
                         temperal_downsample=(False, True))


def held_clip_latent(codec, image: torch.Tensor, frames: int) -> torch.Tensor:
    return codec.encode(image[:, :, None].expand(-1, -1, frames, -1, -1).contiguous())


@pytest.mark.parametrize("temporal", ["block", "keyframe"])
@pytest.mark.parametrize("frames", [1, 5, 9, 81])
def test_demo_static_latent_equals_the_held_clip(temporal, frames):
    codec = DemoVideoCodec(DemoVideoConfig(latent_channels=18, temporal=temporal))
    image = torch.rand(2, 3, 32, 48) * 2 - 1
    fast = codec.static_latent(image, frames, 32, 48)
    assert fast.shape == held_clip_latent(codec, image, frames).shape
    torch.testing.assert_close(fast, held_clip_latent(codec, image, frames), atol=4e-4, rtol=0)


def test_demo_static_latent_encodes_only_a_short_clip(monkeypatch):
    codec = DemoVideoCodec(DemoVideoConfig(latent_channels=18, temporal="keyframe"))
    seen = []
    encode = codec.encode
    monkeypatch.setattr(codec, "encode", lambda frames: seen.append(frames.shape[2]) or encode(frames))
    codec.static_latent(None, 81, 64, 64)
    assert seen == [5]  # 1 + 4 frames, not 81


def test_wan_static_latent_streams_and_equals_the_held_clip():
    codec = WanVideoCodec.random(SMALL_WAN)
    stride = codec.spatial_stride
    image = torch.rand(1, 3, 2 * stride, 3 * stride) * 2 - 1
    calls = []
    with cancel.cancel_check(lambda: calls.append(1)):
        fast = codec.static_latent(image, 13, 2 * stride, 3 * stride)
    assert len(calls) == 1 + 12 // codec.temporal_stride  # once per chunk: frame 0, then `stride` frames each
    assert torch.equal(fast, held_clip_latent(codec, image, 13))


def test_a_cancel_between_chunks_stops_encode_and_decode():
    codec = WanVideoCodec.random(SMALL_WAN)
    stride = codec.spatial_stride
    frames = torch.rand(1, 3, 1 + 2 * codec.temporal_stride, stride, stride) * 2 - 1  # 3 chunks

    class Stop(Exception):
        pass

    def stop_after(n):
        calls = []

        def check():
            calls.append(1)
            if len(calls) > n:
                raise Stop
        return check, calls

    check, calls = stop_after(1)
    with cancel.cancel_check(check), pytest.raises(Stop):
        codec.encode(frames)
    assert len(calls) == 2  # stopped at the second of 3 chunks
    latent = codec.encode(frames)
    check, calls = stop_after(2)
    with cancel.cancel_check(check), pytest.raises(Stop):
        codec.decode(latent)
    assert len(calls) == 3  # stopped before the third latent frame


def test_the_model_checks_for_a_cancel_before_every_layer():
    from harmony_core.build import load_pipeline
    from harmony_core.pipeline import Request, Sampling
    from harmony_core.sampling import Guidance, SyncCFG

    pipe = load_pipeline(None)
    calls = []
    with cancel.cancel_check(lambda: calls.append(1)):
        pipe.sample(Request(num_frames=5, width=64, height=64, sampling=Sampling(steps=2),
                            guidance=Guidance(sync=SyncCFG(1.0, 1.0))))
    assert len(calls) == 2 * pipe.model.cfg.video.num_layers  # steps x layers, one forward per step


@pytest.mark.parametrize("backend", ["sdpa", "reference"])
def test_large_attention_runs_in_cancellable_pieces_with_the_same_rows(monkeypatch, backend):
    from harmony_core.attention import api

    attend = api.resolve(backend)
    q, k, v = (torch.randn(2, n, 4, 16) for n in (300, 200, 200))
    mask = torch.rand(2, 200) > 0.3
    whole = attend(q, k, v, mask)
    monkeypatch.setattr(api, "CANCEL_SCORES", 64 * 200)  # pieces of 64 query rows
    calls = []
    with cancel.cancel_check(lambda: calls.append(1)):
        pieces = attend(q, k, v, mask)
    assert len(calls) == 5  # ceil(300 / 64)
    # each row is computed from the same keys; kernels may block the rows differently: float32, 200 terms
    torch.testing.assert_close(pieces, whole, atol=200 * 2 ** -23, rtol=0)
