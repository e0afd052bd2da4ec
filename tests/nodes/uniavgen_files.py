"""Tiny random UniAVGen files, laid out as a user has them, for tests of the nodes and of a real ComfyUI.

A user downloads HF MCG-NJU/UniAVGen into `models/harmony/UniAVGen/` (a diffusers index + shards with the
reference's key names, and the vocoder folder `code2wav_bigvgan_model/`) and already has ComfyUI's Wan2.2 VAE
(`models/vae/wan2.2_vae.safetensors`) and umT5 (`models/text_encoders/`, CLIPLoader type "wan"). These writers
make the same files at test sizes, with random weights:

- the DiT: `preset("uniavgen-tiny")` (the parity fixture's sizes) built with a fixed seed, saved under the
  reference's key names (the inverse of harmony_core.loading.keymaps.UNIAVGEN) with the reference's
  `constructor_kwargs` metadata (its head counts cannot be read from shapes), sharded as diffusers shards it,
  or as one file (optionally under ComfyUI's `model.diffusion_model.` prefix);
- the Wan2.2 VAE: 48 latent channels, strides 4x16x16, at toy widths (`TINY_VAE`);
- the vocoder: `UniAVGenAudioCodec.random()` (width 128) as `model.safetensors` with the `config` metadata its
  loader reads.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from harmony_core.codecs.uniavgen.codec import UniAVGenAudioCodec
from harmony_core.codecs.wan.codec import WanVideoCodec
from harmony_core.codecs.wan.vae import WanVAEConfig
from harmony_core.config import preset
from harmony_core.loading.checkpoint import INDEX_NAME
from harmony_core.loading.keymaps import UNIAVGEN
from harmony_core.loading.safetensors_io import write_safetensors
from harmony_core.model.harmony import HarmonyModel

CHECKPOINT = "UniAVGen"                                   # models/harmony/UniAVGen (the HF download)
VOCODER = "UniAVGen/code2wav_bigvgan_model"               # its vocoder folder
VAE_FILE = "wan2.2_vae.safetensors"                       # models/vae, ComfyUI's Wan2.2 VAE
TEXT_DIM = 32                                             # the tiny DiT's caption width (umT5: 4096)
TEXT_LEN = 16                                             # and its caption length (umT5 in ComfyUI: 512 rows)
TINY_VAE = WanVAEConfig(dim=4, dec_dim=4, z_dim=48, dim_mult=(1, 2, 2, 2), num_res_blocks=1,
                        temperal_downsample=(False, True, True))
VOCODER_CONFIG = {"mel_dim": 80, "upsample_initial_channel": 128, "upsample_rates": [5, 3, 2, 2, 2, 2],
                  "upsample_kernel_sizes": [11, 7, 4, 4, 4, 4], "resblock_kernel_sizes": [3, 7, 11],
                  "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]]}


def constructor_kwargs() -> dict:
    """What the reference's `WanModel(...)` is called with at these sizes (the parity fixture's README)."""
    cfg = preset("uniavgen-tiny")
    v, a = cfg.video, cfg.audio
    return {"model_type": "ti2v", "patch_size": list(v.patch_size), "text_len": v.text_len, "in_dim": v.in_dim,
            "in_audio_dim": a.in_dim, "dim": v.dim, "ffn_dim": v.ffn_dim, "audio_dim": a.dim,
            "audio_ffn_dim": a.ffn_dim, "freq_dim": v.freq_dim, "text_dim": v.text_dim, "out_dim": v.out_dim,
            "out_dim_audio": a.out_dim, "num_heads": v.num_heads, "audio_num_heads": a.num_heads,
            "num_layers": v.num_layers}


def state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """The tiny model's random weights under the reference's key names."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HarmonyModel(preset("uniavgen-tiny"))
    return {UNIAVGEN.invert(k): v.detach().contiguous() for k, v in model.state_dict().items()}


def write_sharded(folder: Path, shards: int = 2, seed: int = 0) -> Path:
    """A diffusers-sharded checkpoint folder (index + `diffusion_pytorch_model-0000k-of-0000n.safetensors`)."""
    sd = state_dict(seed)
    keys = sorted(sd)
    meta = {"constructor_kwargs": json.dumps(constructor_kwargs())}
    weight_map = {}
    for k in range(shards):
        name = f"diffusion_pytorch_model-{k + 1:05d}-of-{shards:05d}.safetensors"
        part = keys[k::shards]
        write_safetensors({key: sd[key] for key in part}, folder / name, meta)
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
             "weight_map": weight_map}
    (folder / INDEX_NAME).write_text(json.dumps(index, indent=2))
    return folder


def write_single(path: Path, prefix: str = "model.diffusion_model.", seed: int = 0) -> Path:
    """One .safetensors file, keys under `prefix` (ComfyUI's diffusion-model prefix by default)."""
    sd = {prefix + k: v for k, v in state_dict(seed).items()}
    return write_safetensors(sd, path, {"constructor_kwargs": json.dumps(constructor_kwargs())})


def write_vae(path: Path, seed: int = 0) -> Path:
    """A Wan2.2-VAE-format file (the reference's key names) at `TINY_VAE`'s sizes."""
    vae = WanVideoCodec.random(TINY_VAE, seed=seed).vae
    return write_safetensors({k: v.detach().contiguous() for k, v in vae.state_dict().items()}, path)


def write_vocoder(folder: Path, seed: int = 0) -> Path:
    """A converted `code2wav_bigvgan_model` folder: model.safetensors with its `config` metadata."""
    vocoder = UniAVGenAudioCodec.random(seed=seed).vocoder
    sd = {k: v.detach().contiguous() for k, v in vocoder.state_dict().items()}
    return write_safetensors(sd, folder / "model.safetensors", {"config": json.dumps(VOCODER_CONFIG)})


def write_user_models(models: Path) -> dict[str, Path]:
    """`models/harmony/UniAVGen/` (sharded, with its vocoder folder) and `models/vae/wan2.2_vae.safetensors`."""
    checkpoint = write_sharded(models / "harmony" / CHECKPOINT)
    vocoder = write_vocoder(models / "harmony" / VOCODER).parent
    vae = write_vae(models / "vae" / VAE_FILE)
    return {"checkpoint": checkpoint, "vocoder": vocoder, "vae": vae}
