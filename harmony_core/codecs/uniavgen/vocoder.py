"""Qwen2.5-Omni token2wav BigVGAN: the vocoder UniAVGen decodes its 24 kHz mel with.

Reference: transformers `Qwen2_5OmniToken2WavBigVGANModel` (loaded by MCG-NJU/Sora2-mini `inference.py:358`
with `from_pretrained(<model>/code2wav_bigvgan_model)`) and its `Qwen2_5OmniBigVGANConfig` defaults.
It is MMAudio's BigVGAN generator (`codecs/mmaudio/bigvgan.py`, reused here) with one config and two
differences:

1. the input is a natural-log mel [B, 80, T], turned into a [-1, 1] dB image first (`process_mel`):
   dB = 20 log10(clamp(exp(mel), 10^(-115/20))) - 20; processed = clamp(2 (dB + 115) / 115 - 1, -1, 1);
2. the anti-aliasing filters are computed buffers that are *not* in the state dict (MMAudio's are).

Config (the transformers defaults, which the released folder is taken to use, uniavgen.md §9, §14):
conv_pre 80 -> 1536 (k7); 6 ConvTranspose1d ups, rates [5, 3, 2, 2, 2, 2] (x240 = the mel hop), kernels
[11, 7, 4, 4, 4, 4]; per stage the mean of 3 AMPBlock1 (kernels 3 / 7 / 11, dilations 1 / 3 / 5) with
anti-aliased SnakeBeta (log-scale alpha / beta); activation_post; conv_post 24 -> 1 (k7, no bias); clamp.
115,443,504 parameters at full size. Key names are the module's own (`conv_pre`, `ups.{i}.0`,
`resblocks.{j}.convs1.{k}`, `resblocks.{j}.activations.{k}.act.alpha`, `activation_post`, `conv_post`).

mel [B, 80, T] -> wave [B, 1, T * 240] in [-1, 1].
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...loading.safetensors_io import metadata_json, read_safetensors
from ...loading.strict import strip_prefix
from ..mmaudio.bigvgan import BigVGAN, BigVGANConfig
from ..mmaudio.bigvgan_layers import LowPassFilter1d, UpSample1d

logger = logging.getLogger(__name__)

MIN_DB = -115.0      # floor of the dB image (amplitude 10^(-115/20))
DB_OFFSET = 20.0     # subtracted after 20 log10 (reference `amplitude_to_db(...) - 20`)
OMNI_BIGVGAN = BigVGANConfig(num_mels=80, upsample_rates=(5, 3, 2, 2, 2, 2),
                             upsample_kernel_sizes=(11, 7, 4, 4, 4, 4), upsample_initial_channel=1536,
                             resblock_kernel_sizes=(3, 7, 11),
                             resblock_dilation_sizes=((1, 3, 5), (1, 3, 5), (1, 3, 5)), resblock="1",
                             activation="snakebeta", snake_logscale=True, use_tanh_at_final=False,
                             use_bias_at_final=False)
# Prefixes a converted folder may keep: the token2wav wrapper inside Qwen2.5-Omni, or a generic one.
OMNI_PREFIXES: tuple[str, ...] = ("token2wav.code2wav_bigvgan_model.", "code2wav_bigvgan_model.")
WEIGHTS_NAME = "model.safetensors"   # what `save_pretrained` writes into the folder
CONFIG_NAME = "config.json"
OMNI_CONFIG_FIELDS = ("upsample_initial_channel", "upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes",
                      "resblock_dilation_sizes")  # what Qwen2_5OmniBigVGANConfig sets, besides `mel_dim`


def omni_config_from_dict(d: Mapping[str, Any]) -> BigVGANConfig:
    """`Qwen2_5OmniBigVGANConfig` fields (`mel_dim`, `upsample_*`, `resblock_*`) -> BigVGANConfig.

    Absent fields keep the transformers defaults; the structural choices the class hard-codes (AMPBlock1,
    SnakeBeta, clamp, no final bias) are fixed. Other fields (`model_type`, versions) are ignored.
    """
    merged = asdict(OMNI_BIGVGAN)
    merged.update({k: d[k] for k in OMNI_CONFIG_FIELDS if k in d})
    if "mel_dim" in d:
        merged["num_mels"] = d["mel_dim"]
    cfg = BigVGANConfig.from_dict(merged)
    if len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes):
        raise ValueError(f"vocoder config: {len(cfg.resblock_kernel_sizes)} resblock_kernel_sizes but "
                         f"{len(cfg.resblock_dilation_sizes)} resblock_dilation_sizes; they must pair up")
    return cfg


def process_mel(mel: torch.Tensor) -> torch.Tensor:
    """Natural-log mel [B, 80, T] -> the [-1, 1] dB image conv_pre reads (reference `process_mel_spectrogram`)."""
    floor = torch.exp(torch.tensor(MIN_DB / 20.0 * math.log(10), device=mel.device, dtype=mel.dtype))
    db = 20 * torch.log10(torch.clamp(torch.exp(mel), min=floor)) - DB_OFFSET  # [B, 80, T]
    return torch.clamp(2 * ((db - MIN_DB) / -MIN_DB) - 1, -1.0, 1.0)


def _filters_not_persistent(module: nn.Module) -> None:
    """Re-register the anti-aliasing filters as non-persistent buffers (not in the released state dict)."""
    for m in module.modules():
        if isinstance(m, (UpSample1d, LowPassFilter1d)):
            m.register_buffer("filter", m.filter, persistent=False)


class OmniBigVGAN(BigVGAN):
    """Qwen2.5-Omni's token2wav BigVGAN: natural-log mel [B, 80, T] -> wave [B, 1, T * 240] in [-1, 1]."""

    def __init__(self, cfg: BigVGANConfig = OMNI_BIGVGAN) -> None:
        if (cfg.resblock, cfg.activation, cfg.use_tanh_at_final, cfg.use_bias_at_final) != \
                ("1", "snakebeta", False, False):
            raise ValueError("the Qwen2.5-Omni BigVGAN uses AMPBlock1, SnakeBeta, a final clamp and no final "
                             f"bias; build its config with omni_config_from_dict, got {cfg}")
        super().__init__(cfg)
        _filters_not_persistent(self)

    def process_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Natural-log mel [B, 80, T] -> dB image in [-1, 1], same shape."""
        return process_mel(mel)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Natural-log mel [B, 80, T] -> wave [B, 1, T * 240] clamped to [-1, 1]."""
        if mel.ndim != 3 or mel.shape[1] != self.cfg.num_mels:
            raise ValueError(f"the vocoder expects a natural-log mel [B, {self.cfg.num_mels}, T], "
                             f"got {tuple(mel.shape)}")
        return super().forward(self.process_mel(mel))


def weights_file(path: str | os.PathLike) -> Path:
    """The weights file of `path`: the file itself, or `model.safetensors` inside a folder."""
    path = Path(path)
    if path.is_dir():
        inner = path / WEIGHTS_NAME
        if not inner.is_file():
            raise FileNotFoundError(f"{path} is a folder without {WEIGHTS_NAME}: give the converted "
                                    f"code2wav_bigvgan_model folder (with {WEIGHTS_NAME}) or the file itself")
        return inner
    return path


def _config_json(folder: Path | None) -> dict | None:
    """config.json of a `save_pretrained` folder, or None (a loose file's neighbours are never read)."""
    path = folder / CONFIG_NAME if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a readable JSON config: {e}") from e
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object (a Qwen2_5OmniBigVGANConfig), got {type(value).__name__}")
    return value


def config_for(sd: Mapping[str, torch.Tensor], metadata: Mapping[str, str], weights: Path,
               folder: Path | None = None) -> BigVGANConfig:
    """Config from the metadata `config` JSON, else `folder`'s config.json, else the defaults; the mel bins
    and width are then read from conv_pre's shape [C, num_mels, 7]."""
    given = metadata_json(metadata, "config") or _config_json(folder)
    cfg = omni_config_from_dict(given or {})
    if "conv_pre.weight" not in sd:
        raise ValueError(f"{weights}: not a Qwen2.5-Omni BigVGAN state dict (no 'conv_pre.weight'; expected "
                         "keys such as 'conv_pre.weight', 'ups.0.0.weight', 'resblocks.0.convs1.0.weight')")
    width, mels = (int(n) for n in sd["conv_pre.weight"].shape[:2])
    shaped = replace(cfg, num_mels=mels, upsample_initial_channel=width)
    if shaped != cfg:
        logger.info("vocoder config adjusted from conv_pre's shape: %d mels, width %d", mels, width)
    return shaped


def load_omni_bigvgan(path: str | os.PathLike) -> OmniBigVGAN:
    """Strictly load a converted `code2wav_bigvgan_model` (folder with model.safetensors, or the file)."""
    weights = weights_file(path)
    folder = Path(path) if Path(path).is_dir() else None
    sd, metadata = read_safetensors(weights, "Qwen2.5-Omni BigVGAN vocoder")
    sd = strip_prefix(sd, OMNI_PREFIXES)
    with torch.device("meta"):
        vocoder = OmniBigVGAN(config_for(sd, metadata, weights, folder))
    vocoder.load_reference_weights(sd, source=str(weights), assign=True)
    return vocoder.requires_grad_(False).eval()
