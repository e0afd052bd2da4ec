"""MMAudio's log-mel converter (16 kHz and 44.1 kHz settings).

Reference: hkchengrex/MMAudio `mmaudio/ext/mel_converter.py` (`MelConverter`, `get_mel_converter`).
Per wave [B, L] in [-1, 1]:

    x   = reflect_pad(clamp(wave, -1, 1), (n_fft - hop) // 2 on both sides)
    S   = stft(x, n_fft, hop, win, periodic hann, center=False, onesided)
    mag = sqrt(Re(S)^2 + Im(S)^2 + 1e-9)
    mel = log(clamp(mel_basis @ mag, min=1e-5))        # log10 (16k) or natural log (44k)

giving F = floor(L / hop) frames. The filterbank is librosa's Slaney-scale, Slaney-normalised mel
matrix; torchaudio's `melscale_fbanks(norm='slaney', mel_scale='slaney')` reproduces it within 2e-7.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torchaudio
from torch import nn

LogKind = Literal["log10", "ln"]


@dataclass(frozen=True)
class MelConfig:
    """Parameters of one MMAudio mel setting (`get_mel_converter(mode)` in the reference)."""

    sample_rate: int
    n_fft: int
    num_mels: int
    hop_size: int
    win_size: int
    fmin: float
    fmax: float
    log: LogKind
    clip_val: float = 1e-5
    mag_eps: float = 1e-9

    @property
    def pad(self) -> int:
        """Reflect padding applied to each side of the wave before the (center=False) STFT."""
        return (self.n_fft - self.hop_size) // 2


MEL_16K = MelConfig(sample_rate=16_000, n_fft=1024, num_mels=80, hop_size=256, win_size=1024,
                    fmin=0.0, fmax=8_000.0, log="log10")
MEL_44K = MelConfig(sample_rate=44_100, n_fft=2048, num_mels=128, hop_size=512, win_size=2048,
                    fmin=0.0, fmax=22_050.0, log="ln")
MEL_PRESETS: dict[str, MelConfig] = {"16k": MEL_16K, "44k": MEL_44K}


def mel_preset(mode: str) -> MelConfig:
    """The MelConfig of an MMAudio mode ('16k' or '44k')."""
    if mode not in MEL_PRESETS:
        raise ValueError(f"unknown MMAudio mel mode {mode!r}; accepted: {sorted(MEL_PRESETS)}")
    return MEL_PRESETS[mode]


def slaney_mel_basis(cfg: MelConfig) -> torch.Tensor:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (Slaney scale and norm), float32 [M, F]."""
    fb = torchaudio.functional.melscale_fbanks(
        n_freqs=cfg.n_fft // 2 + 1, f_min=float(cfg.fmin), f_max=float(cfg.fmax), n_mels=cfg.num_mels,
        sample_rate=cfg.sample_rate, norm="slaney", mel_scale="slaney")  # [n_freqs, M]
    return fb.T.contiguous().float()  # [M, n_freqs]


def mel_frames(cfg: MelConfig, num_samples: int) -> int:
    """Mel frames of a wave of `num_samples` samples (more than cfg.pad): floor(L / hop) for these recipes."""
    return 1 + (num_samples + 2 * cfg.pad - cfg.n_fft) // cfg.hop_size


def stft_magnitude(wave: torch.Tensor, cfg: MelConfig, window: torch.Tensor) -> torch.Tensor:
    """sqrt(|STFT|^2 + mag_eps) of a float wave [B, L], reflect-padded by cfg.pad on both sides, center=False
    (the BigVGAN / HiFi-GAN mel recipe both MMAudio and UniAVGen use) -> [B, n_fft // 2 + 1, F]."""
    if wave.ndim != 2:
        raise ValueError(f"the {cfg.sample_rate} Hz mel expects a mono wave [B, L], got shape {tuple(wave.shape)}")
    if wave.shape[-1] <= cfg.pad:
        raise ValueError(f"wave of {wave.shape[-1]} samples is too short for the {cfg.sample_rate} Hz mel (reflect "
                         f"padding needs more than {cfg.pad} samples); pad it with zeros first")
    x = nn.functional.pad(wave[:, None], (cfg.pad, cfg.pad), mode="reflect")[:, 0]  # [B, L + 2 * pad]
    spec = torch.stft(x, cfg.n_fft, hop_length=cfg.hop_size, win_length=cfg.win_size, window=window,
                      center=False, normalized=False, onesided=True, return_complex=True)  # [B, n_freqs, F]
    return torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + cfg.mag_eps)


class MelConverter(nn.Module):
    """Wave [B, L] -> log-mel [B, num_mels, floor(L / hop)] exactly as MMAudio's `MelConverter`.

    The filterbank and window are non-persistent buffers: they are computed, never loaded. The
    computation always runs in float32 (the output is float32 whatever the module's dtype).
    """

    def __init__(self, cfg: MelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mel_basis", slaney_mel_basis(cfg), persistent=False)
        self.register_buffer("hann_window", torch.hann_window(cfg.win_size), persistent=False)

    def num_frames(self, num_samples: int) -> int:
        """Mel frames produced for a wave of `num_samples` samples: floor(L / hop)."""
        return mel_frames(self.cfg, num_samples)

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """Linear STFT magnitude sqrt(|S|^2 + 1e-9): wave [B, L] (clamped to [-1, 1]) -> [B, n_fft//2+1, F]."""
        return stft_magnitude(wave.clamp(-1.0, 1.0).float(), self.cfg, self.hann_window.float())

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Wave [B, L] in [-1, 1] (values outside are clamped) -> log-mel [B, num_mels, floor(L / hop)]."""
        mel = torch.matmul(self.mel_basis.float(), self.magnitude(wave))  # [B, M, F]
        mel = mel.clamp(min=self.cfg.clip_val)
        return torch.log10(mel) if self.cfg.log == "log10" else torch.log(mel)
