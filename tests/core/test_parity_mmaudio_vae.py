"""MMAudio 1-D mel VAE against the mmaudio_vae16k / mmaudio_vae44k_small fixtures."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from harmony_core.loading import WeightsMismatchError
from harmony_core.codecs.mmaudio.vae import (VAE_16K, VAE_44K, MMAudioVAE, VAEConfig,
                                             vae_config_from_state_dict)

ATOL = 1e-4
SMALL = [("mmaudio_vae16k", 80, 20), ("mmaudio_vae44k_small", 128, 40)]


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


def _load(parity_dir, folder: str, name: str) -> dict[str, torch.Tensor]:
    path = parity_dir / folder / name
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return load_file(str(path))


def _check_case(vae: MMAudioVAE, c: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        post = vae.encode(c["mel_in"])
        _close(post.mean, c["post_mean"])
        _close(post.logvar, c["post_logvar"])
        _close(post.std, c["post_std"])
        _close(post.mean.transpose(1, 2), c["latent_mean_btc"])  # MMAudio's [B, T, C] layout
        _close(vae.decode(c["z"]), c["dec_z"])
        _close(vae.decode(c["z_btc"].transpose(1, 2)), c["dec_z"])
        _close(vae.decode(c["post_mean"]), c["dec_mean"])


@pytest.mark.parity
@pytest.mark.parametrize("folder,data_dim,embed_dim", SMALL)
@pytest.mark.parametrize("layout,weight_norm", [("raw", "raw"), ("fused", "fused"), ("raw", "auto"),
                                                ("fused", "auto")])
def test_small_vae_matches_reference(parity_dir, folder, data_dim, embed_dim, layout, weight_norm):
    sd = _load(parity_dir, folder, f"weights_{layout}.safetensors")
    cfg = vae_config_from_state_dict(sd)
    assert cfg == VAEConfig(data_dim=data_dim, embed_dim=embed_dim, hidden_dim=32)
    vae = MMAudioVAE(cfg).load_reference_weights(sd, weight_norm)
    _check_case(vae, _load(parity_dir, folder, "case_small.safetensors"))


@pytest.mark.parity
def test_weight_norm_detection(parity_dir):
    for layout in ("raw", "fused"):
        vae = MMAudioVAE(VAEConfig(80, 20, 32))
        vae.load_state_dict(_load(parity_dir, "mmaudio_vae16k", f"weights_{layout}.safetensors"))
        assert vae._weights_look_fused() is (layout == "fused")
        assert not vae.fused


@pytest.mark.parity
def test_sample_with_shipped_eps(parity_dir):
    c = _load(parity_dir, "mmaudio_vae16k", "case_small.safetensors")
    vae = MMAudioVAE(VAEConfig(80, 20, 32)).load_reference_weights(
        _load(parity_dir, "mmaudio_vae16k", "weights_fused.safetensors"), "fused")
    with torch.no_grad():
        post = vae.encode(c["mel_in"])
    _close(post.mean + post.std * c["eps"], c["z"])
    g = torch.Generator().manual_seed(3)
    assert post.sample(g).shape == c["z"].shape


def _hash_param(t: int, shape: list[int], std: float) -> torch.Tensor:
    """The fixture README's integer-hash weights (x % 2**32 written as x & (2**32 - 1): same bits)."""
    n = 1
    for s in shape:
        n *= s
    mask, m = (1 << 32) - 1, float(1 << 32)
    h = torch.arange(n, dtype=torch.int64).mul_(2654435761).add_((t + 1) * 97531).bitwise_and_(mask)
    for _ in range(2):
        h.bitwise_xor_(h >> 16).mul_(73244475).bitwise_and_(mask)
    h.bitwise_xor_(h >> 16)
    u = h.to(torch.float64).add_(0.5).div_(m)
    return u.mul_(2).sub_(1).mul_(std * 3.0 ** 0.5).to(torch.float32).reshape(shape)


@pytest.mark.parity
@pytest.mark.slow
def test_fullsize_vae16k_matches_reference(parity_dir):
    """Real VAE_16k (hidden 384, 171.7 M params) with formula weights. ~10 s and ~2 GB RAM on one core."""
    folder = parity_dir / "mmaudio_vae16k"
    manifest = json.loads((folder / "fullsize_manifest.json").read_text())
    buffers = _load(parity_dir, "mmaudio_vae16k", "weights_raw.safetensors")  # data_mean / data_std constants
    sd = {}
    for e in manifest["tensors"]:
        if e["init"] == "fixed_buffer":
            sd[e["key"]] = buffers[e["key"]]
        else:
            sd[e["key"]] = _hash_param(e["tensor_index"], e["shape"], e["std"])
        assert sd[e["key"]].double().sum().item() == pytest.approx(e["raw_sum_float64"], rel=1e-9, abs=1e-9)
    assert vae_config_from_state_dict(sd) == VAE_16K
    with torch.device("meta"):
        vae = MMAudioVAE(VAE_16K)
    vae.load_reference_weights(sd, "raw", assign=True)
    del sd
    c = _load(parity_dir, "mmaudio_vae16k", "case_fullsize.safetensors")
    with torch.no_grad():
        post = vae.encode(c["mel_in"])
        _close(post.mean, c["post_mean"])
        _close(post.std, c["post_std"])
        _close(vae.decode(c["post_mean"]), c["dec_mean"])


@pytest.mark.parity
def test_fullsize_44k_manifest_matches_preset(parity_dir):
    path = parity_dir / "mmaudio_vae44k_small" / "vae44k_fullsize_manifest.json"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    manifest = json.loads(path.read_text())
    shapes = {e["key"]: tuple(e["shape"]) for e in manifest["tensors"]}
    with torch.device("meta"):
        vae = MMAudioVAE(VAE_44K)
    assert {k: tuple(v.shape) for k, v in vae.state_dict().items()} == shapes


def test_unfused_vae_refuses_to_run():
    vae = MMAudioVAE(VAEConfig(80, 20, 8))
    with pytest.raises(RuntimeError, match="fuse"):
        vae.encode(torch.zeros(1, 80, 4))
    vae.fuse_weight_norm()
    assert vae.fused and vae.encode(torch.zeros(1, 80, 4)).mean.shape == (1, 20, 2)
    assert vae.decode(torch.zeros(1, 20, 3)).shape == (1, 80, 6)


def test_strict_load_names_bad_keys():
    vae = MMAudioVAE(VAEConfig(80, 20, 8))
    sd = vae.state_dict()
    sd.pop("encoder.conv_in.weight")
    sd["encoder.extra"] = torch.zeros(1)
    sd["decoder.conv_out.weight"] = torch.zeros(80, 8, 5)
    with pytest.raises(WeightsMismatchError) as err:
        MMAudioVAE(VAEConfig(80, 20, 8)).load_reference_weights(sd)
    msg = str(err.value)
    assert "missing (1): encoder.conv_in.weight" in msg
    assert "unexpected (1): encoder.extra" in msg
    assert "decoder.conv_out.weight (80, 8, 5) (expected (80, 8, 3))" in msg


def test_config_detection_presets_and_errors():
    for cfg in (VAE_16K, VAE_44K):
        with torch.device("meta"):
            sd = MMAudioVAE(cfg).state_dict()
        assert vae_config_from_state_dict(sd) == cfg
    with pytest.raises(ValueError, match="decoder.conv_in.weight"):
        vae_config_from_state_dict({"conv.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="weight_norm"):
        MMAudioVAE(VAEConfig(80, 20, 8)).load_reference_weights({}, "maybe")
