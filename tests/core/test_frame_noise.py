"""Mixed (frame-common) video noise: unit variance, the asked correlation between frames, and where it is used."""
from __future__ import annotations

import pytest
import torch

from harmony_core.sampling.noise import mix_frame_noise, with_frame_common

SHAPE = (4, 4, 3, 64, 64)     # 65,536 elements per frame: a correlation estimate has std ~ 1 / 256


@pytest.mark.parametrize("share", [0.0, 0.5, 0.8])
def test_unit_variance_and_frame_correlation(share):
    g = torch.Generator().manual_seed(0)
    ind, common = torch.randn(SHAPE, generator=g), torch.randn((*SHAPE[:2], 1, *SHAPE[3:]), generator=g)
    x = mix_frame_noise(ind, common, share)
    assert x.shape == SHAPE
    # 5 standard errors: var of a unit-variance Gaussian estimated from n = 196,608 values has std sqrt(2/n)
    assert abs(float(x.var()) - 1.0) < 5 * (2 / x.numel()) ** 0.5
    a, b = x[:, :, 0].flatten(), x[:, :, 2].flatten()
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert abs(corr - share) < 5 / a.numel() ** 0.5


def test_share_zero_is_the_independent_noise_and_bad_shares_are_refused():
    ind = torch.randn(SHAPE)
    g = torch.Generator().manual_seed(1)
    assert with_frame_common(ind, 0.0, g) is ind
    assert torch.equal(torch.randn(2, generator=g), torch.randn(2, generator=torch.Generator().manual_seed(1)))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="share"):
            mix_frame_noise(ind, ind[:, :, :1], bad)


def test_pipeline_draws_mixed_noise_only_for_models_trained_with_it():
    """initial_noise: a share of 0 gives the i.i.d. draw (earlier seeds unchanged); a shared model's frames
    correlate; the audio noise is the same either way."""
    from harmony_core.codecs.registry import build_audio_codec, build_video_codec
    from harmony_core.config import preset
    from harmony_core.model.harmony import HarmonyModel
    from harmony_core.pipeline import HarmonyPipeline, Request, Sampling

    def pipeline(share):
        cfg = preset("demo").replace(frame_noise_share=share)
        return HarmonyPipeline(HarmonyModel(cfg).eval(), build_video_codec(cfg.codecs["video"]),
                               build_audio_codec(cfg.codecs["audio"]))

    plain, mixed = pipeline(0.0), pipeline(0.5)
    req = plain.resolve(Request(prompt="a red ball", sampling=Sampling(seed=3)))
    v0, a0 = plain.initial_noise(req, plain.layout(req))
    v1, a1 = mixed.initial_noise(req, mixed.layout(req))
    g = torch.Generator().manual_seed(3)
    torch.testing.assert_close(v0, torch.randn(v0.shape, generator=g), rtol=0, atol=0)
    torch.testing.assert_close(a0, a1, rtol=0, atol=0)
    # differences of disjoint frame pairs (0, 1), (2, 3), ... are independent, with variance 2 (1 - share)
    end = v0.shape[2] // 2 * 2
    d0 = (v0[:, :, 1:end:2] - v0[:, :, 0:end:2]).var()
    d1 = (v1[:, :, 1:end:2] - v1[:, :, 0:end:2]).var()
    se = (2 / v0[:, :, 1:end:2].numel()) ** 0.5          # relative standard error of a Gaussian variance
    assert abs(float(d0) / 2.0 - 1) < 5 * se and abs(float(d1) / 1.0 - 1) < 5 * se, (d0, d1)
