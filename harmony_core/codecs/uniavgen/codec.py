"""UniAVGen's audio path as an AudioCodec: 24 kHz wave <-> normalised log-mel "latent" <-> Qwen2.5-Omni BigVGAN.

UniAVGen has no audio VAE: its audio tower denoises the normalised 80-bin natural-log mel at 100 frames/s
(`mel.py`), and the token2wav BigVGAN (`vocoder.py`) turns it back into 24 kHz audio (uniavgen.md §4, §9).

| sample rate | latent | samples/latent | latents/s | vocoder |
| 24 000 | normalised ln-mel [B, 80, Ta] | 240 (the hop) | 100 | Qwen2.5-Omni BigVGAN x240 |

Lengths (the project's rule, `timeline.audio_latents_for_samples`, as MMAudioCodec does): a wave of L samples
gives Ta = ceil(L / 240) latents; `encode` zero-pads the wave at the end to Ta * 240 samples first. For
L = Ta * 240 this is exactly the reference (floor(L / 240) frames); for other L the reference drops the
last partial frame instead. A one-latent wave (240 samples, shorter than the 392-sample reflect padding)
is encoded with a second latent of zeros, which is then dropped. `decode` returns Ta * 240 samples.

Inputs other than 24 kHz are resampled with `torchaudio.functional.resample` (as `media.read_audio` and the
node adapters do; the reference used librosa's soxr). Every non-silent row is then peak-normalised to
0.999146 (`peak_normalise`, as UniAVGen's loader does for the conditioning and reference audio; turn it off
with `peak_normalise=False`); digital silence stays zero.

SyncCFG anchor: `silence_latent` is this codec's encoding of an all-zero waveform, i.e. the normalised mel of
digital silence. Every mel bin is then clamped at 1e-5, so the anchor is the constant
(ln(1e-5) + 5.1753) / 2.1544 = -2.9417 in every bin and frame.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace

import torch
import torchaudio
from torch import nn

from ...checks import require_finite
from ...timeline import audio_latents_for_samples
from ..base import AudioCodec
from . import mel as melmod
from .mel import UniAVGenMel
from .vocoder import OMNI_BIGVGAN, OmniBigVGAN, load_omni_bigvgan

logger = logging.getLogger(__name__)

SMALL_VOCODER_WIDTH = 128   # upsample_initial_channel of `random(small=True)` (the parity fixture's width)
MIN_ENCODED_LATENTS = 2     # 2 * 240 = 480 samples > the 392-sample reflect padding


class UniAVGenAudioCodec(AudioCodec):
    """Mono 24 kHz wave [B, L] <-> normalised log-mel latent [B, 80, Ta] (100 latents/s) <-> BigVGAN wave."""

    name = "uniavgen"

    def __init__(self, vocoder: OmniBigVGAN, peak_normalise: bool = True) -> None:
        super().__init__()
        self.mel = UniAVGenMel()
        cfg = self.mel.cfg
        if vocoder.cfg.num_mels != cfg.num_mels or vocoder.cfg.hop != cfg.hop_size:
            raise ValueError(f"UniAVGen's mel has {cfg.num_mels} bins and hop {cfg.hop_size}; the vocoder "
                             f"reads {vocoder.cfg.num_mels} bins and upsamples x{vocoder.cfg.hop}")
        self.vocoder = vocoder
        self.peak_normalise = peak_normalise
        self.sample_rate = cfg.sample_rate
        self.latent_channels = cfg.num_mels
        self.samples_per_latent = cfg.hop_size
        self.requires_grad_(False)
        self.eval()

    def num_latents(self, num_samples: int) -> int:
        """Latents for a wave of `num_samples` samples at 24 kHz: ceil(L / 240)."""
        return audio_latents_for_samples(num_samples, self.samples_per_latent)

    @torch.no_grad()
    def encode(self, wave: torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Mono wave [B, L] in [-1, 1] at `sample_rate` (None: 24 kHz) -> normalised mel [B, 80, ceil(L' / 240)]
        (L' = L after resampling to 24 kHz). Float32 whatever the vocoder's dtype."""
        if wave.ndim != 2 or wave.shape[-1] < 1:
            raise ValueError(f"UniAVGenAudioCodec.encode expects a mono wave [B, L] with L >= 1, "
                             f"got {tuple(wave.shape)}")
        require_finite(wave, "audio to encode", "samples", "clean or re-decode the audio")
        wave = self._at_24k(wave.to(self.mel.window.device, torch.float32), sample_rate)  # [B, L']
        if self.peak_normalise:
            wave = melmod.peak_normalise(wave)
        length = wave.shape[-1]
        ta = self.num_latents(length)
        if length != ta * self.samples_per_latent:
            logger.info("audio of %d samples zero-padded to %d latents x %d samples", length, ta,
                        self.samples_per_latent)
        target = max(ta, MIN_ENCODED_LATENTS) * self.samples_per_latent
        wave = nn.functional.pad(wave, (0, target - length))  # [B, target]
        return self.mel.normalised(wave)[..., :ta]  # [B, 80, Ta]

    def _at_24k(self, wave: torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        """wave [B, L] at `sample_rate` -> [B, ceil(L * 24000 / sample_rate)] (unchanged when None or 24 kHz)."""
        if sample_rate is None or sample_rate == self.sample_rate:
            return wave
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        logger.info("audio resampled from %d Hz to %d Hz", sample_rate, self.sample_rate)
        return torchaudio.functional.resample(wave, sample_rate, self.sample_rate)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalised mel [B, 80, Ta] -> mono 24 kHz wave [B, Ta * 240] in [-1, 1]."""
        if latent.ndim != 3 or latent.shape[1] != self.latent_channels or latent.shape[-1] < 1:
            raise ValueError(f"UniAVGenAudioCodec.decode expects a latent [B, {self.latent_channels}, Ta] with "
                             f"Ta >= 1, got {tuple(latent.shape)}")
        require_finite(latent, "audio latent to decode", "values", "the sampler diverged; lower the step "
                       "size or the guidance scale")
        weight = self.vocoder.conv_pre.weight
        mel_in = melmod.denormalise(latent.to(weight.device, torch.float32))  # [B, 80, Ta], natural log
        wave = self.vocoder(mel_in.to(weight.dtype))[:, 0].float()  # [B, Ta * 240]
        target = latent.shape[-1] * self.samples_per_latent
        if wave.shape[-1] != target:
            wave = nn.functional.pad(wave, (0, max(0, target - wave.shape[-1])))[:, :target]
        return wave

    def to_model_layout(self, latent: torch.Tensor) -> torch.Tensor:
        """Codec latent [B, 80, T] -> the audio tower's [B, T, 80]."""
        return melmod.to_model_layout(latent)

    def from_model_layout(self, mel_norm: torch.Tensor) -> torch.Tensor:
        """The audio tower's [B, T, 80] -> codec latent [B, 80, T]."""
        return melmod.from_model_layout(mel_norm)

    @classmethod
    def load(cls, path: str | os.PathLike, peak_normalise: bool = True) -> UniAVGenAudioCodec:
        """From a converted `code2wav_bigvgan_model`: a folder holding model.safetensors, or the file.

        The vocoder config comes from the metadata key 'config' (JSON), else config.json beside the file,
        else the transformers defaults; mel bins and width are read from conv_pre's shape. Loading is
        strict (one WeightsMismatchError naming every missing / unexpected / misshaped key)."""
        return cls(load_omni_bigvgan(path), peak_normalise=peak_normalise)

    @classmethod
    def random(cls, seed: int = 0, small: bool = True, peak_normalise: bool = True) -> UniAVGenAudioCodec:
        """Random vocoder weights for tests and benchmarks (small: width 128, else the released 1536).
        The global torch RNG is left untouched."""
        cfg = replace(OMNI_BIGVGAN, upsample_initial_channel=SMALL_VOCODER_WIDTH) if small else OMNI_BIGVGAN
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vocoder = OmniBigVGAN(cfg)
        return cls(vocoder, peak_normalise=peak_normalise)
