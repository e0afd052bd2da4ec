"""UniAVGen's 24 kHz log-mel "latent" and its normalisation.

Reference: MCG-NJU/Sora2-mini @ 6d9a41b `utils/mel_dataset.py` (`get_mel_spectrogram(wave, 24000, hop=240)`),
`inference.py:171-190` (normalisation, `[T, 80]` layout), `utils/eval_dataset.py::rescale_audio_volume`
(peak normalisation), `wan/configs/wan_ti2v_5B.py` (`audio_mean`, `audio_std`). Per wave [B, L]:

    x   = reflect_pad(wave, (1024 - 240) / 2 = 392 on both sides)          # no clamp (the reference has none)
    S   = stft(x, n_fft 1024, hop 240, periodic Hann 1024, center=False, onesided)
    mag = sqrt(Re(S)^2 + Im(S)^2 + 1e-9)
    mel = ln(clamp(mel_basis @ mag, min=1e-5))       # librosa Slaney mel: 80 bins, fmin 0, fmax 8000
    mel_norm = (mel - (-5.1753)) / 2.1544

giving floor(L / 240) frames at 100 frames/s. The model reads `mel_norm` as [B, T, 80] (`to_model_layout`);
our AudioCodec interface keeps it as the latent [B, 80, T] (`codecs/base.py`). The filterbank is computed
here in float64 (`slaney_filterbank`, librosa's Slaney construction), equal to librosa's float32 cast within
2e-9; the float32 torchaudio version MMAudio's mel uses is 1e-7 off.

Peak normalisation (`peak_normalise`, to 0.999146) is what UniAVGen's data loader applies to every wave it
reads (the A2V conditioning audio and the reference voice) before the mel; the mel itself does not do it.
`UniAVGenAudioCodec.encode` applies it (on by default); an all-zero row is left as it is (the reference
would divide by zero), so the silence anchor is the mel of digital silence.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..mmaudio.mel import MelConfig, mel_frames, stft_magnitude

MEL_24K = MelConfig(sample_rate=24_000, n_fft=1024, num_mels=80, hop_size=240, win_size=1024,
                    fmin=0.0, fmax=8_000.0, log="ln")
AUDIO_MEAN = -5.1753   # wan_ti2v_5B.py `audio_mean` (of the natural-log mel)
AUDIO_STD = 2.1544     # wan_ti2v_5B.py `audio_std`
PEAK = 0.999146        # eval_dataset.py `max_volume`: inputs are scaled so that max |x| is this
SLANEY_BREAK_HZ = 1000.0             # Slaney mel scale: linear (200/3 Hz per mel) below, logarithmic above
SLANEY_HZ_PER_MEL = 200.0 / 3.0
SLANEY_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    brk = SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL
    log_part = brk + torch.log(hz.clamp(min=SLANEY_BREAK_HZ) / SLANEY_BREAK_HZ) / SLANEY_LOG_STEP
    return torch.where(hz >= SLANEY_BREAK_HZ, log_part, hz / SLANEY_HZ_PER_MEL)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    brk = SLANEY_BREAK_HZ / SLANEY_HZ_PER_MEL
    log_part = SLANEY_BREAK_HZ * torch.exp(SLANEY_LOG_STEP * (mel - brk))
    return torch.where(mel >= brk, log_part, mel * SLANEY_HZ_PER_MEL)


def slaney_filterbank(cfg: MelConfig = MEL_24K) -> torch.Tensor:
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (Slaney scale, Slaney area norm) as float32
    [M, n_fft // 2 + 1], computed in float64 like librosa (within 2e-9 of its float32 cast)."""
    f64 = torch.float64
    freqs = torch.arange(cfg.n_fft // 2 + 1, dtype=f64) * (cfg.sample_rate / cfg.n_fft)  # [F]
    lo, hi = _hz_to_mel(torch.tensor([cfg.fmin, cfg.fmax], dtype=f64))
    edges = _mel_to_hz(torch.linspace(float(lo), float(hi), cfg.num_mels + 2, dtype=f64))  # [M + 2]
    width = edges.diff()  # [M + 1]
    ramps = edges[:, None] - freqs[None, :]  # [M + 2, F]
    rising = -ramps[:-2] / width[:-1, None]  # [M, F]
    falling = ramps[2:] / width[1:, None]  # [M, F]
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    area = 2.0 / (edges[2:] - edges[:-2])  # [M]
    return (weights * area[:, None]).float()


def peak_normalise(wave: torch.Tensor, peak: float = PEAK) -> torch.Tensor:
    """Each row of wave [B, L] scaled so that its max |x| is `peak`; all-zero rows are returned unchanged."""
    top = wave.abs().amax(dim=-1, keepdim=True)  # [B, 1]
    scale = torch.where(top > 0, peak / top.clamp(min=torch.finfo(top.dtype).tiny), torch.ones_like(top))
    return wave * scale


def normalise(mel: torch.Tensor) -> torch.Tensor:
    """Natural-log mel -> the model's normalised mel (any layout)."""
    return (mel - AUDIO_MEAN) / AUDIO_STD


def denormalise(mel_norm: torch.Tensor) -> torch.Tensor:
    """Normalised mel -> natural-log mel (what the vocoder reads), any layout."""
    return mel_norm * AUDIO_STD + AUDIO_MEAN


def to_model_layout(latent: torch.Tensor) -> torch.Tensor:
    """Codec latent [B, 80, T] -> the audio tower's input layout [B, T, 80]."""
    return latent.transpose(1, 2)


def from_model_layout(mel_norm: torch.Tensor) -> torch.Tensor:
    """The audio tower's [B, T, 80] -> codec latent [B, 80, T]."""
    return mel_norm.transpose(1, 2)


class UniAVGenMel(nn.Module):
    """Wave [B, L] at 24 kHz -> natural-log mel [B, 80, floor(L / 240)] exactly as UniAVGen computes it.

    The filterbank and window are non-persistent buffers (computed, never loaded); the computation runs in
    float32 whatever the module's dtype (after a cast to half precision both are recomputed in float32).
    """

    def __init__(self, cfg: MelConfig = MEL_24K) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mel_basis", slaney_filterbank(cfg), persistent=False)       # [80, 513]
        self.register_buffer("window", torch.hann_window(cfg.win_size), persistent=False)  # [1024]

    def num_frames(self, num_samples: int) -> int:
        """Mel frames for a wave of `num_samples` samples (> the 392-sample padding): floor(L / 240)."""
        return mel_frames(self.cfg, num_samples)

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """sqrt(|STFT|^2 + 1e-9): wave [B, L] -> [B, 513, F]."""
        cfg = self.cfg
        window = self.window if self.window.dtype == torch.float32 else \
            torch.hann_window(cfg.win_size, device=self.window.device)  # exact again after a half cast
        return stft_magnitude(wave.float(), cfg, window)          # no clamp before the STFT: the reference has none

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Wave [B, L] -> natural-log mel [B, 80, floor(L / 240)], float32."""
        basis = self.mel_basis if self.mel_basis.dtype == torch.float32 else \
            slaney_filterbank(self.cfg).to(self.mel_basis.device)  # exact again after a half cast
        mel = torch.matmul(basis, self.magnitude(wave))  # [B, 80, F]
        return torch.log(mel.clamp(min=self.cfg.clip_val))

    def normalised(self, wave: torch.Tensor) -> torch.Tensor:
        """Wave [B, L] -> normalised mel latent [B, 80, floor(L / 240)] (transpose it for the model)."""
        return normalise(self(wave))
