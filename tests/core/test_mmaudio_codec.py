"""MMAudioCodec: shapes, length relation, latent normalisation, silence anchor, safetensors loading."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from harmony_core.codecs.base import AudioCodec
from harmony_core.codecs.mmaudio.codec import MMAudioCodec
from harmony_core.loading import WeightsMismatchError


@pytest.fixture(scope="module")
def codecs() -> dict[str, MMAudioCodec]:
    return {mode: MMAudioCodec.random(mode, seed=0) for mode in ("16k", "44k")}


@pytest.mark.parametrize("mode,sr,spl,channels", [("16k", 16000, 512, 20), ("44k", 44100, 1024, 40)])
def test_rates_and_shapes(codecs, mode, sr, spl, channels):
    codec = codecs[mode]
    assert isinstance(codec, AudioCodec)
    assert (codec.sample_rate, codec.samples_per_latent, codec.latent_channels) == (sr, spl, channels)
    assert codec.latent_rate == pytest.approx(sr / spl)
    for length in (1, spl - 1, spl, 3 * spl + 1):
        latent = codec.encode(torch.rand(2, length) * 2 - 1)
        ta = -(-length // spl)
        assert latent.shape == (2, channels, ta) and codec.num_latents(length) == ta
        wave = codec.decode(latent)
        assert wave.shape == (2, ta * spl)
        assert torch.isfinite(wave).all() and wave.abs().max() <= 1.0


def test_encode_is_mel_then_vae_mean_on_padded_wave(codecs):
    codec = codecs["16k"]
    wave = torch.rand(1, 1500) - 0.5
    padded = torch.nn.functional.pad(wave, (0, 3 * 512 - 1500))  # ceil(1500 / 512) = 3 latents
    with torch.no_grad():
        expected = codec.vae.encode(codec.mel(padded)).mean
    torch.testing.assert_close(codec.encode(wave), expected, atol=0, rtol=0)


def test_latent_normalisation_round_trip():
    mean, std = torch.linspace(-1, 1, 20).view(1, 1, 20), torch.linspace(0.5, 2, 20)
    plain = MMAudioCodec.random("16k", seed=1)
    scaled = MMAudioCodec.random("16k", seed=1, latent_mean=mean, latent_std=std)
    wave = torch.rand(1, 2048) - 0.5
    raw = plain.encode(wave)
    norm = scaled.encode(wave)
    torch.testing.assert_close(norm, (raw - mean.view(1, 20, 1)) / std.view(1, 20, 1))
    torch.testing.assert_close(scaled.decode(norm), plain.decode(raw), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="20 elements"):
        MMAudioCodec.random("16k", latent_mean=torch.zeros(40))
    with pytest.raises(ValueError, match="positive"):
        MMAudioCodec.random("16k", latent_std=torch.zeros(20))


@pytest.mark.parametrize("mode", ["16k", "44k"])
def test_silence_latent(codecs, mode):
    codec = codecs[mode]
    silence = codec.silence_latent(7, batch=2)
    assert silence.shape == (2, codec.latent_channels, 7)
    assert torch.isfinite(silence).all()
    torch.testing.assert_close(silence[0], silence[1])


def test_random_is_seeded_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b = MMAudioCodec.random("16k", seed=5), MMAudioCodec.random("16k", seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a.vae.encoder.conv_in.weight, b.vae.encoder.conv_in.weight, atol=0, rtol=0)


def test_bad_inputs(codecs):
    codec = codecs["16k"]
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        codec.encode(torch.zeros(1, 1, 512))
    with pytest.raises(ValueError, match=r"\[B, 20, Ta\]"):
        codec.decode(torch.zeros(1, 40, 3))
    with pytest.raises(ValueError, match="accepted"):
        MMAudioCodec.random("32k")


@pytest.mark.parity
def test_load_fixture_files_matches_components(parity_dir):
    vae_path = parity_dir / "mmaudio_vae16k" / "weights_raw.safetensors"
    voc_path = parity_dir / "bigvgan16k" / "weights_legacy_wn.safetensors"
    if not (vae_path.is_file() and voc_path.is_file()):
        pytest.skip("mmaudio_vae16k / bigvgan16k fixtures missing")
    codec = MMAudioCodec.load(vae_path, voc_path, mode="16k")
    assert codec.vocoder.cfg.upsample_initial_channel == 128  # from the file's metadata config
    c = load_file(str(parity_dir / "mmaudio_vae16k" / "case_small.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(codec.vae.encode(c["mel_in"]).mean, c["post_mean"], atol=1e-4, rtol=0)
        wave = codec.decode(c["post_mean"])
        expected = codec.vocoder(c["dec_mean"])[:, 0]
    assert wave.shape == (2, 31 * 512)
    torch.testing.assert_close(wave, expected, atol=1e-4, rtol=0)


@pytest.mark.parity
def test_load_errors(parity_dir, tmp_path):
    vae_path = parity_dir / "mmaudio_vae16k" / "weights_fused.safetensors"
    voc_path = parity_dir / "bigvgan16k" / "weights_fused.safetensors"
    if not (vae_path.is_file() and voc_path.is_file()):
        pytest.skip("mmaudio_vae16k / bigvgan16k fixtures missing")
    with pytest.raises(ValueError, match="mode '44k' uses 128 mel bins"):
        MMAudioCodec.load(vae_path, voc_path, mode="44k")
    sd = load_file(str(voc_path))
    sd.pop("ups.2.0.bias")
    sd["conv_pre.extra"] = torch.zeros(1)
    broken = tmp_path / "voc.safetensors"
    save_file(sd, str(broken))
    with pytest.raises(WeightsMismatchError,
                       match=r"missing \(1\): ups.2.0.bias.*unexpected \(1\): conv_pre.extra"):
        MMAudioCodec.load(vae_path, broken)
    pickled = tmp_path / "v1-16.pth"
    pickled.write_bytes(b"not used")
    with pytest.raises(ValueError, match="only .safetensors"):
        MMAudioCodec.load(pickled, voc_path)
    with pytest.raises(FileNotFoundError):
        MMAudioCodec.load(tmp_path / "absent.safetensors", voc_path)
