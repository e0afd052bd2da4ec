"""Wan2.2 VAE: parity with the reference fixture (shared/parity/wan22_vae), loading and input validation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from harmony_core.codecs.wan.codec import (WAN22_LATENT_MEAN, WAN22_LATENT_STD, WanVideoCodec, detect_config,
                                           strip_prefix)
from harmony_core.codecs.wan.vae import WanVAE, WanVAEConfig

TOL = dict(atol=1e-4, rtol=1e-4)
SMALL = WanVAEConfig(dim=4, dec_dim=4, z_dim=8, dim_mult=(1, 2, 2), num_res_blocks=1,
                     temperal_downsample=(False, True))


@pytest.fixture
def codec(parity_dir: Path) -> WanVideoCodec:
    return WanVideoCodec.load(parity_dir / "wan22_vae" / "weights.safetensors")


# ---------------------------------------------------------------------------- parity


@pytest.mark.parity
def test_detected_config_matches_reference_kwargs(parity_dir: Path, codec: WanVideoCodec) -> None:
    with safe_open(str(parity_dir / "wan22_vae" / "weights.safetensors"), "pt") as f:
        kwargs = json.loads(f.metadata()["WanVAE_kwargs"])
    cfg = codec.vae.config
    assert (cfg.dim, cfg.dec_dim, cfg.z_dim, cfg.num_res_blocks) == (12, 16, 48, 2) == (
        kwargs["dim"], kwargs["dec_dim"], kwargs["z_dim"], kwargs["num_res_blocks"])
    assert list(cfg.dim_mult) == kwargs["dim_mult"]
    assert list(cfg.temperal_downsample) == kwargs["temperal_downsample"]
    assert (codec.latent_channels, codec.temporal_stride, codec.spatial_stride) == (48, 4, 16)


@pytest.mark.parity
def test_embedded_latent_scale_is_the_reference(parity_dir: Path, codec: WanVideoCodec) -> None:
    scale = load_file(str(parity_dir / "wan22_vae" / "latent_scale.safetensors"))
    assert torch.equal(torch.tensor(WAN22_LATENT_MEAN), scale["mean"])
    # the fixture's std went through 1 / (1 / std): equal to 1 ulp; inv_std, the value used, is exact
    torch.testing.assert_close(torch.tensor(WAN22_LATENT_STD), scale["std"], atol=1e-7, rtol=0)
    assert torch.equal(codec.inv_std.flatten(), scale["inv_std"])


@pytest.mark.parity
@pytest.mark.parametrize("case", ["5f", "9f"])
def test_encode_parity(parity_dir: Path, codec: WanVideoCodec, case: str) -> None:
    c = load_file(str(parity_dir / "wan22_vae" / f"case_encode_{case}.safetensors"))
    with torch.no_grad():
        mu, log_var = codec.vae.encode(c["video"][None])
    latent = codec.encode(c["video"][None])
    torch.testing.assert_close(mu[0], c["mu"], **TOL)
    torch.testing.assert_close(log_var[0], c["log_var"], **TOL)
    torch.testing.assert_close(latent[0], c["latent"], **TOL)


@pytest.mark.parity
@pytest.mark.parametrize("case", ["2lat", "3lat"])
def test_decode_parity(parity_dir: Path, codec: WanVideoCodec, case: str) -> None:
    c = load_file(str(parity_dir / "wan22_vae" / f"case_decode_{case}.safetensors"))
    z = codec.denormalize(c["latent"][None])
    torch.testing.assert_close(z[0], c["inter.z_denorm"], **TOL)
    with torch.no_grad():
        video = codec.vae.decode(z)
    torch.testing.assert_close(video[0], c["video"], **TOL)
    torch.testing.assert_close(codec.decode(c["latent"][None])[0], c["video_clamped"], **TOL)


@pytest.mark.parity
@pytest.mark.parametrize("prefix", ["vae.", "first_stage_model."])
def test_prefixed_state_dict_loads(parity_dir: Path, codec: WanVideoCodec, prefix: str) -> None:
    sd = load_file(str(parity_dir / "wan22_vae" / "weights.safetensors"))
    bundle = {prefix + k: v for k, v in sd.items()} | {"model.diffusion_model.x.weight": torch.zeros(1)}
    loaded = WanVideoCodec.from_state_dict(bundle)
    for key, value in loaded.vae.state_dict().items():
        assert torch.equal(value, codec.vae.state_dict()[key]), key


# ---------------------------------------------------------------------------- loading (synthetic)


def test_detect_config_from_shapes() -> None:
    odd = WanVAEConfig(dim=8, dec_dim=12, z_dim=16, dim_mult=(1, 1, 2, 2), num_res_blocks=3,
                       temperal_downsample=(True, False, True))
    for cfg in (WanVAEConfig(), SMALL, odd):
        with torch.device("meta"):
            sd = WanVAE(cfg).state_dict()
        assert detect_config(sd) == cfg


def test_rejects_widths_the_shortcuts_cannot_fold() -> None:
    with pytest.raises(ValueError, match="shortcut folding"):
        WanVAE(WanVAEConfig(dim=2, dec_dim=2, dim_mult=(1, 2, 3), temperal_downsample=(False, True)))


def test_load_reports_missing_unexpected_and_misshaped(tmp_path: Path) -> None:
    sd = {k: v.clone() for k, v in WanVideoCodec.random(SMALL).vae.state_dict().items()}
    del sd["decoder.head.2.bias"]
    sd["decoder.extra.weight"] = torch.zeros(3)
    sd["decoder.middle.1.proj.weight"] = torch.zeros(2, 2, 1, 1)
    path = tmp_path / "bad.safetensors"
    save_file(sd, str(path))
    with pytest.raises(ValueError) as err:
        WanVideoCodec.load(path)
    msg = str(err.value)
    assert str(path) in msg and "missing (1): decoder.head.2.bias;" in msg
    assert "unexpected (1): decoder.extra.weight;" in msg
    assert "misshaped (1): decoder.middle.1.proj.weight (2, 2, 1, 1) (expected" in msg


def test_load_round_trip_and_rejections(tmp_path: Path) -> None:
    codec = WanVideoCodec.random(SMALL, seed=3)
    path = tmp_path / "vae.safetensors"
    save_file(codec.vae.state_dict(), str(path))
    loaded = WanVideoCodec.load(path)
    z = torch.randn(1, 8, 2, 2, 3)
    torch.testing.assert_close(loaded.decode(z), codec.decode(z), atol=0, rtol=0)
    pickle_file = tmp_path / "vae.pth"
    pickle_file.write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="only .safetensors"):
        WanVideoCodec.load(pickle_file)
    with pytest.raises(FileNotFoundError):
        WanVideoCodec.load(tmp_path / "absent.safetensors")
    with pytest.raises(ValueError, match="not a Wan2.2 VAE"):
        strip_prefix({"model.weight": torch.zeros(1)})
    wan21_like = {"encoder.conv1.weight": torch.zeros(4, 3, 3, 3, 3)}
    with pytest.raises(ValueError, match="Wan2.1"):
        detect_config(wan21_like)


def test_random_is_deterministic_and_keeps_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = WanVideoCodec.random(SMALL, seed=7)
    assert torch.equal(torch.rand(1), before)
    b = WanVideoCodec.random(SMALL, seed=7)
    for (ka, va), (_, vb) in zip(a.vae.state_dict().items(), b.vae.state_dict().items()):
        assert torch.equal(va, vb), ka


# ---------------------------------------------------------------------------- codec behaviour


def test_codec_shapes_and_clamp() -> None:
    codec = WanVideoCodec.random(SMALL)
    frames = torch.rand(2, 3, 5, 16, 24) * 2 - 1  # F = 1 + 2·2 for temporal stride 2
    latent = codec.encode(frames)
    assert latent.shape == (2, 8, 3, 2, 3)
    video = codec.decode(latent * 20)
    assert video.shape == frames.shape and video.abs().max() <= 1.0
    # batch items are independent
    torch.testing.assert_close(codec.encode(frames[1:]), latent[1:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape, match", [
    ((1, 3, 6, 32, 32), "causal video VAE needs 4"),
    ((1, 3, 5, 40, 32), "multiples of 16"),
    ((1, 4, 5, 32, 32), r"\[B, 3, F, H, W\]"),
    ((3, 5, 32, 32), r"\[B, 3, F, H, W\]"),
])
def test_encode_rejects_bad_frames(shape: tuple, match: str) -> None:
    codec = WanVideoCodec.random(WanVAEConfig(dim=2, dec_dim=2))
    with pytest.raises(ValueError, match=match):
        codec.encode(torch.zeros(shape))


def test_rejects_non_finite_inputs() -> None:
    codec = WanVideoCodec.random(SMALL)
    frames = torch.zeros(1, 3, 3, 8, 8)
    frames[0, 0, 1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        codec.encode(frames)
    with pytest.raises(ValueError, match="NaN or Inf"):
        codec.decode(torch.full((1, 8, 1, 1, 1), float("inf")))
    with pytest.raises(ValueError, match=r"\[B, 8, T >= 1, h, w\]"):
        codec.decode(torch.zeros(1, 48, 1, 1, 1))


def test_scale_arguments() -> None:
    vae = WanVideoCodec.random(SMALL).vae
    codec = WanVideoCodec(vae, mean=torch.full((8,), 0.5), std=torch.full((8,), 2.0))
    mu = torch.randn(1, 8, 1, 1, 1)
    torch.testing.assert_close(codec.normalize(mu), (mu - 0.5) / 2.0)
    torch.testing.assert_close(codec.denormalize(codec.normalize(mu)), mu)
    with pytest.raises(ValueError, match="both mean and std"):
        WanVideoCodec(vae, mean=torch.zeros(8))
