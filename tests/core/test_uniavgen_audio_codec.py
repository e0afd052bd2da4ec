"""UniAVGenAudioCodec: rates, shapes and lengths, peak normalisation, resampling, the silence anchor, input
checks, strict safetensors loading (file or folder), the registry name, and the full-size vocoder on meta."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
import torchaudio
from safetensors.torch import save_file

from harmony_core.codecs.base import AudioCodec
from harmony_core.codecs.registry import REAL_AUDIO, build_audio_codec
from harmony_core.codecs.uniavgen.codec import UniAVGenAudioCodec
from harmony_core.codecs.uniavgen.mel import PEAK, denormalise, normalise, peak_normalise
from harmony_core.codecs.uniavgen.vocoder import OMNI_BIGVGAN, OmniBigVGAN, omni_config_from_dict
from harmony_core.loading import WeightsMismatchError

SILENCE = (math.log(1e-5) - (-5.1753)) / 2.1544  # every bin of digital silence is clamped at 1e-5


@pytest.fixture(scope="module")
def codec() -> UniAVGenAudioCodec:
    return UniAVGenAudioCodec.random(seed=0)


def _save(vocoder: OmniBigVGAN, path, config: dict | None = None, drop: str | None = None, extra: bool = False):
    sd = {k: v.contiguous() for k, v in vocoder.state_dict().items() if k != drop}
    if extra:
        sd["conv_post.bias"] = torch.zeros(1)
    meta = {"config": json.dumps(config)} if config is not None else None
    save_file(sd, str(path), metadata=meta)
    return path


def test_rates_and_shapes(codec):
    assert isinstance(codec, AudioCodec)
    assert (codec.sample_rate, codec.samples_per_latent, codec.latent_channels) == (24_000, 240, 80)
    assert codec.latent_rate == 100.0
    for length in (1, 239, 240, 241, 480, 1000):
        latent = codec.encode(torch.rand(2, length) * 2 - 1)
        ta = -(-length // 240)
        assert latent.shape == (2, 80, ta) and codec.num_latents(length) == ta
        assert latent.dtype == torch.float32 and torch.isfinite(latent).all()
        wave = codec.decode(latent)
        assert wave.shape == (2, ta * 240)  # round trip: ceil(L / 240) latents x 240 samples
        assert torch.isfinite(wave).all() and wave.abs().max() <= 1.0


def test_encode_is_the_normalised_mel_of_the_peak_normalised_wave(codec):
    wave = (torch.rand(2, 4800) - 0.5) * torch.tensor([[0.3], [1.4]])  # multiple of 240: no padding
    expected = normalise(codec.mel(peak_normalise(wave)))
    torch.testing.assert_close(codec.encode(wave), expected, atol=0, rtol=0)
    assert peak_normalise(wave).abs().amax(-1).sub(PEAK).abs().max() < 1e-6
    padded = torch.nn.functional.pad(peak_normalise(wave[:, :4000]), (0, 80))  # ceil(4000 / 240) = 17 latents
    torch.testing.assert_close(codec.encode(wave[:, :4000]), normalise(codec.mel(padded)), atol=0, rtol=0)
    torch.testing.assert_close(codec.encode(0.25 * wave), codec.encode(wave), atol=1e-5, rtol=0)
    raw = UniAVGenAudioCodec(codec.vocoder, peak_normalise=False)
    torch.testing.assert_close(raw.encode(wave), normalise(codec.mel(wave)), atol=0, rtol=0)
    assert not torch.allclose(raw.encode(0.25 * wave), raw.encode(wave))


def test_layouts_and_normalisation(codec):
    latent = torch.randn(2, 80, 9)
    model_in = codec.to_model_layout(latent)
    assert model_in.shape == (2, 9, 80)
    torch.testing.assert_close(codec.from_model_layout(model_in), latent, atol=0, rtol=0)
    torch.testing.assert_close(normalise(denormalise(latent)), latent, atol=1e-6, rtol=0)


def test_silence_latent_is_the_mel_of_zeros(codec):
    silence = codec.silence_latent(7, batch=2)
    assert silence.shape == (2, 80, 7)
    torch.testing.assert_close(silence, torch.full_like(silence, SILENCE), atol=1e-6, rtol=0)
    torch.testing.assert_close(silence, codec.encode(torch.zeros(2, 7 * 240)), atol=0, rtol=0)
    one = codec.silence_latent(1)  # shorter than the reflect padding: encoded with a zero tail
    torch.testing.assert_close(one, torch.full((1, 80, 1), SILENCE), atol=1e-6, rtol=0)
    mixed = codec.encode(torch.stack([torch.zeros(480), torch.rand(480) - 0.5]))  # a silent row stays silent
    torch.testing.assert_close(mixed[0], silence[0, :, :2], atol=0, rtol=0)


def test_resamples_other_rates(codec):
    wave = torch.rand(1, 1600) - 0.5  # 0.1 s at 16 kHz -> 2400 samples at 24 kHz -> 10 latents
    latent = codec.encode(wave, sample_rate=16_000)
    assert latent.shape == (1, 80, 10)
    expected = codec.encode(torchaudio.functional.resample(wave, 16_000, 24_000))
    torch.testing.assert_close(latent, expected, atol=0, rtol=0)
    torch.testing.assert_close(codec.encode(wave, sample_rate=24_000), codec.encode(wave), atol=0, rtol=0)
    with pytest.raises(ValueError, match="positive integer"):
        codec.encode(wave, sample_rate=0)


def test_refuses_bad_and_non_finite_input(codec):
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        codec.encode(torch.zeros(1, 1, 480))
    with pytest.raises(ValueError, match=r"\[B, 80, Ta\]"):
        codec.decode(torch.zeros(1, 40, 3))
    bad = torch.zeros(1, 480)
    bad[0, 7] = float("nan")
    with pytest.raises(ValueError, match="1 of 480 samples are NaN or infinite"):
        codec.encode(bad)
    latent = torch.zeros(1, 80, 2)
    latent[0, 3, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite"):
        codec.decode(latent)
    with pytest.raises(ValueError, match="upsamples x480"):
        UniAVGenAudioCodec(OmniBigVGAN(replace(OMNI_BIGVGAN, upsample_initial_channel=64,
                                               upsample_rates=(5, 3, 2, 2, 2, 4))))
    with pytest.raises(ValueError, match="AMPBlock1, SnakeBeta"):
        OmniBigVGAN(replace(OMNI_BIGVGAN, use_bias_at_final=True))


def test_random_is_seeded_and_leaves_global_rng():
    state = torch.get_rng_state()
    a, b = UniAVGenAudioCodec.random(seed=5), UniAVGenAudioCodec.random(seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a.vocoder.conv_pre.weight, b.vocoder.conv_pre.weight, atol=0, rtol=0)
    assert not any("filter" in k for k in a.state_dict())  # anti-aliasing filters are computed, not state


def test_load_file_folder_and_registry(codec, tmp_path):
    small = codec.vocoder.cfg
    file = _save(codec.vocoder, tmp_path / "vocoder.safetensors",
                 config={"mel_dim": 80, "upsample_initial_channel": 128})
    loaded = UniAVGenAudioCodec.load(file)
    assert loaded.vocoder.cfg == small
    latent = codec.encode(torch.rand(1, 960) - 0.5)
    torch.testing.assert_close(loaded.decode(latent), codec.decode(latent), atol=0, rtol=0)
    folder = tmp_path / "code2wav_bigvgan_model"  # a save_pretrained folder: no metadata, config.json
    folder.mkdir()
    _save(codec.vocoder, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_omni_bigvgan", "mel_dim": 80,
                                                    "upsample_rates": [5, 3, 2, 2, 2, 2]}))
    assert UniAVGenAudioCodec.load(folder).vocoder.cfg == small  # width read from conv_pre's shape
    built = build_audio_codec("uniavgen-24k", vocoder_path=folder)
    assert isinstance(built, UniAVGenAudioCodec) and "uniavgen-24k" in REAL_AUDIO
    (folder / "config.json").write_text(json.dumps({"upsample_kernel_sizes": [11, 7, 4, 4, 4, 8]}))
    with pytest.raises(WeightsMismatchError, match=r"misshaped \(1\): ups.5.0.weight"):
        UniAVGenAudioCodec.load(folder)  # the folder's config.json is read ...
    assert UniAVGenAudioCodec.load(folder / "model.safetensors").vocoder.cfg == small  # ... a loose file's not
    with pytest.raises(ValueError, match="no audio VAE"):
        build_audio_codec("uniavgen-24k", vae_path=file, vocoder_path=file)
    with pytest.raises(ValueError, match="give its vocoder"):
        build_audio_codec("uniavgen-24k")


def test_load_is_strict_and_safetensors_only(codec, tmp_path):
    broken = _save(codec.vocoder, tmp_path / "broken.safetensors", drop="resblocks.7.convs2.1.bias")
    with pytest.raises(WeightsMismatchError, match=r"missing \(1\): resblocks.7.convs2.1.bias"):
        UniAVGenAudioCodec.load(broken)
    extra = _save(codec.vocoder, tmp_path / "extra.safetensors", extra=True)
    with pytest.raises(WeightsMismatchError, match=r"unexpected \(1\): conv_post.bias"):
        UniAVGenAudioCodec.load(extra)
    wrong = _save(codec.vocoder, tmp_path / "wrong.safetensors", config={"upsample_kernel_sizes": [11, 7, 4, 4, 4, 8]})
    with pytest.raises(WeightsMismatchError, match=r"misshaped \(1\): ups.5.0.weight"):
        UniAVGenAudioCodec.load(wrong)
    pickled = tmp_path / "model.pth"
    pickled.write_bytes(b"never read")
    with pytest.raises(ValueError, match="only .safetensors"):
        UniAVGenAudioCodec.load(pickled)
    with pytest.raises(FileNotFoundError, match="without model.safetensors"):
        UniAVGenAudioCodec.load(tmp_path)


def test_fullsize_vocoder_on_meta_device():
    """The released size, built without allocating: 115,443,504 parameters, all on meta, 449 tensors."""
    with torch.device("meta"):
        vocoder = OmniBigVGAN(omni_config_from_dict({}))
    assert vocoder.cfg == OMNI_BIGVGAN and vocoder.cfg.hop == 240
    assert all(p.is_meta for p in vocoder.parameters())
    assert sum(p.numel() for p in vocoder.parameters()) == 115_443_504
    sd = vocoder.state_dict()
    assert len(sd) == 449 and tuple(sd["conv_pre.weight"].shape) == (1536, 80, 7)
    assert tuple(sd["conv_post.weight"].shape) == (1, 24, 7) and "conv_post.bias" not in sd


def test_half_precision_module_keeps_an_exact_mel():
    full = UniAVGenAudioCodec.random(seed=3)
    half = UniAVGenAudioCodec.random(seed=3).to(torch.bfloat16)
    wave = torch.rand(1, 960) - 0.5
    torch.testing.assert_close(half.encode(wave), full.encode(wave), atol=0, rtol=0)
    assert half.silence_latent(3).dtype == torch.float32
    out = half.decode(full.encode(wave))
    assert out.shape == (1, 960) and out.dtype == torch.float32 and torch.isfinite(out).all()
