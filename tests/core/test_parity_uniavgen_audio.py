"""UniAVGen's audio codec path against the uniavgen_audio fixtures: the 24 kHz log-mel and its normalisation,
the Qwen2.5-Omni BigVGAN vocoder, and the codec that joins them. Every comparison has a negative control.

Tolerances (the fixture README's, checked against the arithmetic):
- mel 1e-5 (+ rtol 1e-5): fp32 STFT of 1024 points (error ~ eps * log2(1024) of the frame's energy), a
  513-term filterbank sum, then ln: an absolute error in ln-mel is a relative one in the mel energy, and the
  quietest bins sit ~2 decades under their frame's peak, so ~1e-6..1e-5 is the fp32 floor (measured 4.8e-6).
- vocoder 1e-4: ~60 fp32 convolutions in series (kernels up to 11 x 128 channels, i.e. ~1.4k-term sums) with
  unit-scale activations; the rounding that accumulates stays ~1e-6 (measured 5e-7). A perturbation of 0.01 on
  one weight moves the output by ~1e-2, far outside.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harmony_core.codecs.uniavgen.codec import UniAVGenAudioCodec
from harmony_core.codecs.uniavgen.mel import (
    AUDIO_MEAN,
    AUDIO_STD,
    MEL_24K,
    UniAVGenMel,
    normalise,
    peak_normalise,
    to_model_layout,
)
from harmony_core.codecs.uniavgen.vocoder import (
    OMNI_BIGVGAN,
    OmniBigVGAN,
    load_omni_bigvgan,
    omni_config_from_dict,
    process_mel,
)
from harmony_core.loading.safetensors_io import metadata_json, read_safetensors

CASES = ["single", "batch2"]
MEL_TOL = {"atol": 1e-5, "rtol": 1e-5}
VOC_TOL = {"atol": 1e-4, "rtol": 1e-4}


def _folder(parity_dir: Path) -> Path:
    folder = parity_dir / "uniavgen_audio"
    if not folder.is_dir():
        pytest.skip(f"{folder} missing")
    return folder


def _mel_case(parity_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(_folder(parity_dir) / "mel24k.safetensors"))


def _vocoder(parity_dir: Path) -> OmniBigVGAN:
    return load_omni_bigvgan(_folder(parity_dir) / "vocoder_weights.safetensors")


def _voc_case(parity_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(_folder(parity_dir) / "vocoder_case.safetensors"))


def _fails(mine: torch.Tensor, ref: torch.Tensor, tol: dict[str, float]) -> bool:
    try:
        torch.testing.assert_close(mine, ref, **tol)
    except AssertionError:
        return True
    return False


# ---------------------------------------------------------------------------------------------- mel


@pytest.mark.parity
def test_uniavgen_filterbank_window_and_stats(parity_dir):
    c = _mel_case(parity_dir)
    _, meta = read_safetensors(_folder(parity_dir) / "mel24k.safetensors")
    mel = UniAVGenMel()
    torch.testing.assert_close(mel.mel_basis, c["mel_basis"], atol=1e-8, rtol=0)  # float64 -> float32 cast
    torch.testing.assert_close(mel.window, c["window"], atol=0, rtol=0)
    assert (float(meta["audio_mean"]), float(meta["audio_std"])) == (AUDIO_MEAN, AUDIO_STD)
    assert (int(meta["sr"]), int(meta["hop"])) == (MEL_24K.sample_rate, MEL_24K.hop_size)
    # negative control: librosa's default fmax (sr / 2) is a different filterbank
    wrong = UniAVGenMel(replace(MEL_24K, fmax=12_000.0))
    assert _fails(wrong.mel_basis, c["mel_basis"], {"atol": 1e-3, "rtol": 0})


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_mel_parity(parity_dir, case):
    c = _mel_case(parity_dir)
    wave, conv = c[f"{case}.wave"], UniAVGenMel()
    torch.testing.assert_close(peak_normalise(wave), wave, atol=0, rtol=0)  # stored waves are normalised
    mel = conv(wave)
    assert mel.shape == c[f"{case}.mel"].shape
    assert mel.shape[-1] == conv.num_frames(wave.shape[-1]) == wave.shape[-1] // MEL_24K.hop_size
    torch.testing.assert_close(mel, c[f"{case}.mel"], **MEL_TOL)
    torch.testing.assert_close(to_model_layout(normalise(mel)), c[f"{case}.mel_norm"], **MEL_TOL)
    torch.testing.assert_close(to_model_layout(conv.normalised(wave)), c[f"{case}.mel_norm"], **MEL_TOL)


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_mel_parity_catches_wrong_recipe(parity_dir, case):
    """Negative controls: log10 instead of ln, and fmax 12 kHz instead of 8 kHz, both fail the check."""
    c = _mel_case(parity_dir)
    wave, ref = c[f"{case}.wave"], c[f"{case}.mel"]
    mel = UniAVGenMel()(wave)
    assert _fails(mel / torch.log(torch.tensor(10.0)), ref, MEL_TOL)
    assert _fails(UniAVGenMel(replace(MEL_24K, fmax=12_000.0))(wave), ref, MEL_TOL)
    assert _fails(mel + 2e-4, ref, MEL_TOL)  # the check resolves errors well below 1e-3


# ---------------------------------------------------------------------------------------------- vocoder


@pytest.mark.parity
def test_uniavgen_vocoder_config_from_metadata(parity_dir):
    vocoder = _vocoder(parity_dir)
    assert vocoder.cfg == replace(OMNI_BIGVGAN, upsample_initial_channel=128)
    assert vocoder.cfg.hop == MEL_24K.hop_size == 240
    _, meta = read_safetensors(_folder(parity_dir) / "vocoder_weights.safetensors")
    assert omni_config_from_dict(metadata_json(meta, "full_config")) == OMNI_BIGVGAN


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_vocoder_parity(parity_dir, case):
    vocoder, c = _vocoder(parity_dir), _voc_case(parity_dir)
    mel_in = c[f"{case}.mel_in"]
    with torch.no_grad():
        processed = vocoder.process_mel(mel_in)
        pre = vocoder.conv_pre(processed)
        wave = vocoder(mel_in)  # [B, 1, T * 240]
    torch.testing.assert_close(processed, c[f"{case}.processed"], **VOC_TOL)
    torch.testing.assert_close(pre, c[f"{case}.conv_pre"], **VOC_TOL)
    assert wave.shape == (mel_in.shape[0], 1, mel_in.shape[-1] * 240)
    torch.testing.assert_close(wave[:, 0], c[f"{case}.wave_out"], **VOC_TOL)


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_vocoder_parity_catches_wrong_weights(parity_dir, case):
    """Negative controls: one conv weight moved by 0.01, and the dB image without its -20 dB offset."""
    vocoder, c = _vocoder(parity_dir), _voc_case(parity_dir)
    mel_in = c[f"{case}.mel_in"]
    with torch.no_grad():
        vocoder.resblocks[4].convs1[1].weight[0, 0, 3] += 0.01
        wave = vocoder(mel_in)[:, 0]
    assert _fails(wave, c[f"{case}.wave_out"], VOC_TOL)
    no_offset = torch.clamp(2 * (20 * torch.log10(torch.exp(mel_in).clamp(min=10 ** (-115 / 20))) + 115) / 115 - 1,
                            -1, 1)
    assert _fails(no_offset, c[f"{case}.processed"], VOC_TOL)
    torch.testing.assert_close(process_mel(mel_in), c[f"{case}.processed"], **VOC_TOL)


@pytest.mark.parity
def test_uniavgen_fullsize_keys_and_shapes_on_meta(parity_dir):
    """The released topology, built on the meta device (nothing allocated): 115,443,504 params, every key and
    shape of the released state dict, in order, and nothing else (the filters are not state)."""
    lines = (_folder(parity_dir) / "vocoder_fullsize_state_dict_keys.txt").read_text().splitlines()
    expected = {}
    for line in lines:
        key, shape = line.split(" ", 1)
        expected[key] = tuple(int(n) for n in shape.strip("[]").split(","))
    with torch.device("meta"):
        vocoder = OmniBigVGAN(OMNI_BIGVGAN)
    assert all(p.is_meta for p in vocoder.parameters())
    sd = vocoder.state_dict()
    assert list(sd) == list(expected)
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert sum(p.numel() for p in vocoder.parameters()) == sum(
        torch.Size(s).numel() for s in expected.values()) == 115_443_504
    small = (_folder(parity_dir) / "vocoder_state_dict_keys.txt").read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in small] == list(expected)


# ---------------------------------------------------------------------------------------------- codec


@pytest.mark.parity
def test_uniavgen_codec_encode_decode_parity(parity_dir):
    """The codec reproduces the reference on the fixture: encode -> mel_norm (as [B, 80, T]), decode of the
    normalised vocoder input -> wave_out; the negative control drops the normalisation."""
    codec = UniAVGenAudioCodec.load(_folder(parity_dir) / "vocoder_weights.safetensors")
    m, v = _mel_case(parity_dir), _voc_case(parity_dir)
    latent = codec.encode(m["single.wave"])  # 24000 samples = 100 latents: exactly the reference
    torch.testing.assert_close(codec.to_model_layout(latent), m["single.mel_norm"], **MEL_TOL)
    assert _fails(codec.to_model_layout(codec.mel(m["single.wave"])), m["single.mel_norm"], MEL_TOL)
    for case in CASES:
        wave = codec.decode(normalise(v[f"{case}.mel_in"]))
        torch.testing.assert_close(wave, v[f"{case}.wave_out"], **VOC_TOL)
        assert _fails(codec.decode(v[f"{case}.mel_in"]), v[f"{case}.wave_out"], VOC_TOL)
