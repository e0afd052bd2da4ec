"""BigVGAN vocoder against the bigvgan16k fixture (three weight-norm layouts), plus v2 config checks."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from harmony_core.codecs.mmaudio.bigvgan import (BIGVGAN_V1_16K, BIGVGAN_V2_44K_512X, BigVGAN, BigVGANConfig,
                                         bigvgan_config_from_state_dict, fuse_weight_norm_keys)
from harmony_core.codecs.mmaudio.bigvgan_layers import kaiser_sinc_filter1d
from harmony_core.loading import WeightsMismatchError

LAYOUTS = ["weights_legacy_wn", "weights_parametrized", "weights_fused"]


def _load(parity_dir, name: str) -> dict[str, torch.Tensor]:
    path = parity_dir / "bigvgan16k" / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return load_file(str(path))


def _fixture_config(parity_dir) -> BigVGANConfig:
    return BigVGANConfig.from_dict(json.loads((parity_dir / "bigvgan16k" / "config.json").read_text()))


@pytest.mark.parity
@pytest.mark.parametrize("layout", LAYOUTS)
def test_bigvgan_matches_reference(parity_dir, layout):
    cfg = _fixture_config(parity_dir)
    assert cfg == replace(BIGVGAN_V1_16K, upsample_initial_channel=128)
    vocoder = BigVGAN(cfg).load_reference_weights(_load(parity_dir, f"{layout}.safetensors"))
    c = _load(parity_dir, "case.safetensors")
    pre_tanh = []
    vocoder.conv_post.register_forward_hook(lambda _m, _i, out: pre_tanh.append(out))
    with torch.no_grad():
        wave = vocoder(c["mel_in"])
    assert wave.shape == (1, 1, 20 * cfg.hop)
    torch.testing.assert_close(wave, c["wave_out"], atol=1e-4, rtol=0)
    torch.testing.assert_close(pre_tanh[0], c["pre_tanh"], atol=1e-4, rtol=0)


@pytest.mark.parity
def test_layouts_fuse_to_the_fused_file(parity_dir):
    fused = _load(parity_dir, "weights_fused.safetensors")
    for layout in LAYOUTS[:2]:
        converted = fuse_weight_norm_keys(_load(parity_dir, f"{layout}.safetensors"))
        assert set(converted) == set(fused)
        for k, v in fused.items():
            torch.testing.assert_close(converted[k], v, atol=1e-6, rtol=0)


@pytest.mark.parity
def test_filters_and_detection(parity_dir):
    sd = _load(parity_dir, "weights_legacy_wn.safetensors")
    ref = sd["resblocks.0.activations.0.upsample.filter"]
    torch.testing.assert_close(kaiser_sinc_filter1d(0.25, 0.3, 12), ref, atol=0, rtol=0)
    torch.testing.assert_close(sd["activation_post.downsample.lowpass.filter"], ref, atol=0, rtol=0)
    prefixed = {f"generator.{k}": v for k, v in sd.items()}
    detected = bigvgan_config_from_state_dict(fuse_weight_norm_keys(sd), BIGVGAN_V1_16K)
    assert detected == _fixture_config(parity_dir)
    BigVGAN(detected).load_reference_weights(prefixed)  # 'generator.' prefix is stripped


def test_incomplete_weight_norm_pair_is_an_error():
    with pytest.raises(ValueError, match="conv_pre.*only \\['g'\\]"):
        fuse_weight_norm_keys({"conv_pre.weight_g": torch.ones(4, 1, 1)})


def test_weight_norm_formula_transposed_conv():
    g = torch.rand(3, 1, 1) + 0.5  # ConvTranspose1d: dim 0 is the input channel
    v = torch.randn(3, 2, 4)
    fused = fuse_weight_norm_keys({"ups.0.0.parametrizations.weight.original0": g,
                                   "ups.0.0.parametrizations.weight.original1": v})
    expected = torch._weight_norm(v, g, 0)
    torch.testing.assert_close(fused["ups.0.0.weight"], expected)


def test_strict_load_reports_keys():
    cfg = replace(BIGVGAN_V1_16K, upsample_initial_channel=64)
    sd = BigVGAN(cfg).state_dict()
    sd.pop("conv_post.bias")
    sd["conv_pre.weight"] = torch.zeros(64, 80, 5)
    with pytest.raises(WeightsMismatchError,
                       match=r"missing \(1\): conv_post.bias.*misshaped \(1\): conv_pre"):
        BigVGAN(cfg).load_reference_weights(sd)


def test_v2_44k_config_structure():
    """BigVGAN v2 (nvidia/bigvgan_v2_44khz_128band_512x) is the same generator with other config values."""
    assert BIGVGAN_V2_44K_512X.hop == 512 and BIGVGAN_V1_16K.hop == 256
    cfg = replace(BIGVGAN_V2_44K_512X, upsample_initial_channel=64)
    vocoder = BigVGAN(cfg)
    assert vocoder.conv_post.bias is None
    assert tuple(vocoder.ups[0][0].weight.shape) == (64, 32, 16)
    with torch.no_grad():
        vocoder.conv_post.weight.mul_(1e3)  # drive the output past +-1: clamped, not tanh
        wave = vocoder(torch.randn(1, 128, 3))
    assert wave.shape == (1, 1, 3 * 512)
    assert wave.abs().max() == 1.0
    detected = bigvgan_config_from_state_dict(vocoder.state_dict(), BIGVGAN_V2_44K_512X)
    assert detected == cfg


def test_config_from_dict_and_errors():
    d = {"resblock": 1, "num_mels": 128, "upsample_rates": [8, 4, 2, 2, 2, 2],
         "upsample_kernel_sizes": [16, 8, 4, 4, 4, 4], "upsample_initial_channel": 1536,
         "resblock_dilation_sizes": [[1, 3, 5]] * 3, "use_tanh_at_final": False, "use_bias_at_final": False,
         "segment_size": 65536, "cqtd_filters": 128}
    assert BigVGANConfig.from_dict(d) == BIGVGAN_V2_44K_512X
    with pytest.raises(ValueError, match="lacks"):
        BigVGANConfig.from_dict({"num_mels": 80})
    with pytest.raises(ValueError, match="AMPBlock"):
        BigVGAN(replace(BIGVGAN_V1_16K, resblock="3"))
    with pytest.raises(ValueError, match="snake"):
        BigVGAN(replace(BIGVGAN_V1_16K, activation="relu", upsample_initial_channel=64))
    with pytest.raises(ValueError, match=r"\[B, 80, F\]"):
        BigVGAN(replace(BIGVGAN_V1_16K, upsample_initial_channel=64))(torch.zeros(1, 128, 2))


def test_amp_block2_and_snake_build_and_run():
    cfg = replace(BIGVGAN_V1_16K, upsample_initial_channel=64, resblock="2", activation="snake",
                  resblock_dilation_sizes=((1, 3), (1, 3), (1, 3)))
    vocoder = BigVGAN(cfg)
    assert "resblocks.0.convs.1.weight" in vocoder.state_dict()
    assert bigvgan_config_from_state_dict(vocoder.state_dict(), cfg) == cfg
    with torch.no_grad():
        assert vocoder(torch.randn(2, 80, 2)).shape == (2, 1, 512)
