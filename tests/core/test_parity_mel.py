"""MMAudio mel converter (16k log10 / 44k natural log) against the mmaudio_mel16k / 44k fixtures."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from harmony_core.codecs.mmaudio.mel import MEL_16K, MEL_44K, MelConverter, mel_preset

CASES = [("16k", "mmaudio_mel16k"), ("44k", "mmaudio_mel44k")]


def _case(parity_dir, folder: str) -> dict[str, torch.Tensor]:
    path = parity_dir / folder / "case.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return load_file(str(path))


@pytest.mark.parity
@pytest.mark.parametrize("mode,folder", CASES)
def test_filterbank_and_window_match_reference(parity_dir, mode, folder):
    c = _case(parity_dir, folder)
    conv = MelConverter(mel_preset(mode))
    torch.testing.assert_close(conv.mel_basis, c["mel_basis"], atol=1e-6, rtol=0)
    torch.testing.assert_close(conv.hann_window, c["hann_window"], atol=0, rtol=0)


@pytest.mark.parity
@pytest.mark.parametrize("mode,folder", CASES)
def test_mel_matches_reference(parity_dir, mode, folder):
    c = _case(parity_dir, folder)
    conv = MelConverter(mel_preset(mode))
    for wave_key, mel_key in (("wave_a", "mel_a"), ("wave_b", "mel_b")):
        mel = conv(c[wave_key])
        assert mel.shape == c[mel_key].shape
        length = c[wave_key].shape[-1]
        assert mel.shape[-1] == conv.num_frames(length) == length // conv.cfg.hop_size
        torch.testing.assert_close(mel, c[mel_key], atol=1e-4, rtol=0)
    torch.testing.assert_close(conv.magnitude(c["wave_a"]), c["mag_a"], atol=1e-4, rtol=0)


def test_log_base_and_clamp():
    assert MEL_16K.log == "log10" and MEL_44K.log == "ln"
    conv = MelConverter(MEL_16K)
    silent = conv(torch.zeros(1, 2048))
    torch.testing.assert_close(silent, torch.full_like(silent, -5.0))  # log10(clip 1e-5)
    loud = torch.full((1, 2048), 0.5)
    loud[:, ::7] = 3.0  # out of range: clamped to 1 before the STFT
    clamped = loud.clamp(-1, 1)
    torch.testing.assert_close(conv(loud), conv(clamped))


def test_rejects_bad_input():
    conv = MelConverter(MEL_16K)
    with pytest.raises(ValueError, match="too short"):
        conv(torch.zeros(1, 384))
    with pytest.raises(ValueError, match=r"\[B, L\]"):
        conv(torch.zeros(2, 1, 4096))
    with pytest.raises(ValueError, match="accepted"):
        mel_preset("22k")


def test_float32_output_for_half_module():
    conv = MelConverter(MEL_16K).to(torch.bfloat16)
    assert conv(torch.zeros(1, 1024)).dtype == torch.float32
