"""Demo audio codec: a log-mel spectrogram with a Griffin-Lim decoder, no learned weights.

Made for the bundled demo model only (16 kHz mono synthetic clips: clicks and a buzzing voice); it is not a
stand-in for MMAudio's VAE + vocoder, but it runs at the same latent rate as MMAudio 16k (512 samples per
latent, 31.25 latents/s).

Encode: |STFT| (n_fft 1024, Hann window 1024, hop 256, centred with zero padding; frame k is centred on
sample 256 k) -> mel filterbank (`n_mels` HTK triangles over 0..8 kHz, torchaudio.functional.melscale_fbanks)
-> log(max(mel, FLOOR)) -> (x - log_mel_mean) / log_mel_std (config; by default LOG_MEL_MEAN / LOG_MEL_STD). A latent stacks the two mel frames it owns:
frame 2j in channels [0, n_mels), frame 2j + 1 in [n_mels, 2 n_mels); latent_channels = 2 n_mels (64 by
default). Stacking (rather than averaging 64 bands) keeps the 16 ms frame hop, so onsets stay in place
(click-train round trip: onset error <= 6 ms and spectral convergence 0.08, against 22 ms and 0.45 for 64
averaged bands, which in turn resolve a buzz's harmonics better: spectral convergence 0.41 against 0.70).

Decode: undo the normalisation, exp, subtract FLOOR (so the silence latent decodes to exact zeros), map mel
bands back to linear-frequency magnitudes with the filterbank's pseudo-inverse (clamped at zero), and run
Griffin-Lim (torchaudio.functional.griffinlim, zero initial phase, fixed iteration count: deterministic).
The last frame is repeated (once, or up to 5 frames for very short clips) and the result is cut to exactly
Ta * 512 samples; a wave whose peak would exceed PEAK_CEILING (0.98) is scaled down to it (no clipping).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torchaudio

from ..base import AudioCodec
from .video import config_fields_from_dict

SAMPLE_RATE = 16_000
N_FFT = 1024
HOP = 256
FRAMES_PER_LATENT = 2
SAMPLES_PER_LATENT = HOP * FRAMES_PER_LATENT  # 512, as MMAudio 16k
FLOOR = 1e-4  # magnitude-mel floor; log(FLOOR) is the value of silence before normalisation
LOG_MEL_MEAN = -2.0
LOG_MEL_STD = 4.0
MAX_LOG_MEL = 10.0  # above any [-1, 1] wave's log-mel (~9.2); keeps decode finite on wild latents
GRIFFIN_LIM_MOMENTUM = 0.99
# Griffin-Lim's phase estimate can put peaks above full scale under a magnitude that fits (it happened on 9
# of 24 unguided demo clips): decode scales such a wave down to this peak rather than clipping its samples.
PEAK_CEILING = 0.98
_MIN_GRIFFIN_LIM_FRAMES = N_FFT // HOP + 1  # Griffin-Lim's reflect-padded STFT needs > n_fft / 2 samples


@dataclass(frozen=True)
class DemoAudioConfig:
    """Settings of the demo audio codec: mel bands per frame (latent_channels = 2 * n_mels) and Griffin-Lim
    iterations used by decode."""

    n_mels: int = 32
    griffin_lim_iters: int = 64
    log_mel_mean: float = LOG_MEL_MEAN   # latent = (log mel - mean) / std; the defaults are the first demo
    log_mel_std: float = LOG_MEL_STD     # model's; the v2 demo measures them on its training data (config.py)

    def validate(self) -> None:
        """Raise ValueError when a setting is out of range."""
        if not isinstance(self.n_mels, int) or not 8 <= self.n_mels <= 64:
            raise ValueError(f"DemoAudioConfig.n_mels={self.n_mels!r} is not accepted: use an integer 8..64.")
        if not isinstance(self.griffin_lim_iters, int) or not 1 <= self.griffin_lim_iters <= 1000:
            raise ValueError(
                f"DemoAudioConfig.griffin_lim_iters={self.griffin_lim_iters!r} is not accepted: use 1..1000."
            )
        if not (math.isfinite(self.log_mel_mean) and math.isfinite(self.log_mel_std) and self.log_mel_std > 0):
            raise ValueError(f"DemoAudioConfig.log_mel_mean / log_mel_std = {self.log_mel_mean!r} / "
                             f"{self.log_mel_std!r} are not accepted: use finite numbers, std > 0.")


class DemoAudioCodec(AudioCodec):
    """16 kHz log-mel demo audio codec (no learned weights, empty state_dict)."""

    name = "demo_audio"
    sample_rate = SAMPLE_RATE
    samples_per_latent = SAMPLES_PER_LATENT

    def __init__(self, config: DemoAudioConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else DemoAudioConfig()
        self.config.validate()
        self.n_mels = self.config.n_mels
        self.latent_channels = FRAMES_PER_LATENT * self.n_mels
        fbank = torchaudio.functional.melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, self.n_mels,
                                                      SAMPLE_RATE)  # [513, n_mels]
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("mel_fbank", fbank, persistent=False)  # [513, n_mels]
        pinv = torch.linalg.pinv(fbank.double()).float()  # [n_mels, 513]
        self.register_buffer("mel_pinv", pinv, persistent=False)

    @classmethod
    def default(cls) -> DemoAudioCodec:
        """The codec the bundled demo model is trained with (32 mels, 64 channels)."""
        return cls(DemoAudioConfig())

    def to_config(self) -> dict[str, Any]:
        """JSON-able description, stored in checkpoint metadata; `from_config` rebuilds the same codec."""
        config = asdict(self.config)
        for key, default in (("log_mel_mean", LOG_MEL_MEAN), ("log_mel_std", LOG_MEL_STD)):
            if config[key] == default:
                del config[key]  # the original layout: checkpoints written before the option read the same
        return {"name": self.name, **config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DemoAudioCodec:
        """Rebuild a codec from `to_config()` output; ValueError on another codec's name or unknown keys."""
        return cls(DemoAudioConfig(**config_fields_from_dict(cls.name, DemoAudioConfig, config)))

    @property
    def floor_value(self) -> float:
        """The normalised latent value of silence (every channel of `silence_latent`)."""
        return (math.log(FLOOR) - self.config.log_mel_mean) / self.config.log_mel_std

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        """Mono wave [B, L] in [-1, 1], L a positive multiple of 512 -> latent [B, 2 * n_mels, L / 512]."""
        if wave.ndim != 2 or wave.shape[1] == 0 or wave.shape[1] % SAMPLES_PER_LATENT:
            raise ValueError(
                f"DemoAudioCodec.encode expects a mono wave [B, L] with L a positive multiple of "
                f"{SAMPLES_PER_LATENT}; got shape {tuple(wave.shape)}."
            )
        x = wave.to(self.window.device, self.window.dtype)
        spec = torch.stft(x, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True).abs()  # [B, 513, L/256 + 1]
        mel = self.mel_fbank.T @ spec[..., :-1]  # [B, n_mels, 2 Ta]
        log_mel = (mel.clamp_min(FLOOR).log() - self.config.log_mel_mean) / self.config.log_mel_std
        b, m, frames = log_mel.shape
        pairs = log_mel.reshape(b, m, frames // FRAMES_PER_LATENT, FRAMES_PER_LATENT)  # [B, n_mels, Ta, 2]
        return pairs.permute(0, 3, 1, 2).reshape(b, FRAMES_PER_LATENT * m, -1)  # [B, 2 n_mels, Ta]

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent [B, 2 * n_mels, Ta] -> mono wave [B, Ta * 512] in [-1, 1] (inverse mel + Griffin-Lim)."""
        if latent.ndim != 3 or latent.shape[1] != self.latent_channels or latent.shape[2] < 1:
            raise ValueError(
                f"DemoAudioCodec.decode expects a latent [B, {self.latent_channels}, Ta >= 1]; "
                f"got shape {tuple(latent.shape)}."
            )
        z = latent.to(self.window.device, self.window.dtype)
        b, _, ta = z.shape
        pairs = z.reshape(b, FRAMES_PER_LATENT, self.n_mels, ta)  # [B, 2, n_mels, Ta]
        log_mel = pairs.permute(0, 2, 3, 1).reshape(b, self.n_mels, -1)  # [B, n_mels, 2 Ta]
        mel = (log_mel * self.config.log_mel_std + self.config.log_mel_mean).clamp(max=MAX_LOG_MEL).exp() - FLOOR
        spec = (self.mel_pinv.T @ mel.clamp_min(0.0)).clamp_min(0.0)  # [B, 513, 2 Ta]
        extra = max(1, _MIN_GRIFFIN_LIM_FRAMES - spec.shape[-1])
        spec = torch.cat([spec, spec[..., -1:].expand(-1, -1, extra)], dim=-1)  # [B, 513, 2 Ta + extra]
        wave = torchaudio.functional.griffinlim(
            spec, self.window, N_FFT, HOP, N_FFT, power=1.0, n_iter=self.config.griffin_lim_iters,
            momentum=GRIFFIN_LIM_MOMENTUM, length=(spec.shape[-1] - 1) * HOP, rand_init=False,
        )  # [B, (2 Ta + extra - 1) * 256]
        wave = wave[:, : ta * SAMPLES_PER_LATENT]                                     # [B, Ta * 512]
        peak = wave.abs().amax(dim=-1, keepdim=True)                                  # [B, 1]
        return wave / (peak / PEAK_CEILING).clamp_min(1.0)   # a limiter, not a clip: see PEAK_CEILING
