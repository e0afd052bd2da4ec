"""The real-model path: a checkpoint without its own text encoder, the Wan2.2 VAE and the
MMAudio 16k VAE + BigVGAN vocoder from models/ files (random small weights), umT5-style CONDITIONING,
sampling, decoding, saving."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from node_harness import SAMPLER_WIDGETS, pack_module, run_node

loaders = pack_module("nodes.loaders")
cond = pack_module("nodes.conditioning")
sampling = pack_module("nodes.sampling")
media = pack_module("nodes.media")
config = pack_module("harmony_core.config")
harmony = pack_module("harmony_core.model.harmony")
checkpoint = pack_module("harmony_core.loading.checkpoint")
mmaudio = pack_module("harmony_core.codecs.mmaudio.codec")
wan_vae = pack_module("harmony_core.codecs.wan.vae")


def write_models(models) -> None:
    """harmony/tiny.safetensors (text width 32); a small Wan2.2 VAE, MMAudio VAE and vocoder in vae/."""
    torch.manual_seed(0)
    checkpoint.save_checkpoint(
        harmony.HarmonyModel(config.preset("tiny")), models / "harmony" / "tiny.safetensors"
    )
    torch.manual_seed(0)
    vae = wan_vae.WanVAE(wan_vae.WanVAEConfig(dim=8, dec_dim=8, dim_mult=(1, 2, 2, 2)))
    save_file(
        {k: v.contiguous() for k, v in vae.state_dict().items()},
        str(models / "vae" / "wan_small.safetensors"),
    )
    audio = mmaudio.MMAudioCodec.random("16k", small=True)
    save_file(
        {k: v.contiguous() for k, v in audio.vae.state_dict().items()},
        str(models / "vae" / "mmaudio_vae.safetensors"),
    )
    save_file(
        {k: v.contiguous() for k, v in audio.vocoder.state_dict().items()},
        str(models / "vae" / "bigvgan.safetensors"),
    )


def test_real_codec_model_from_files_to_mp4(comfy_env):
    write_models(comfy_env / "models")
    model = run_node(
        loaders.HarmonyModelLoader, ckpt_name="tiny.safetensors", weight_dtype="default", attention="sdpa"
    )[0]
    with pytest.raises(ValueError, match="audio_vae, vocoder: this model uses the mmaudio-16k audio codec"):
        run_node(
            loaders.HarmonyCodecLoader,
            model=model,
            video_vae="wan_small.safetensors",
            audio_vae=loaders.FROM_MODEL,
            vocoder=loaders.FROM_MODEL,
        )
    codecs = run_node(
        loaders.HarmonyCodecLoader,
        model=model,
        video_vae="wan_small.safetensors",
        audio_vae="mmaudio_vae.safetensors",
        vocoder="bigvgan.safetensors",
    )[0]
    assert (codecs.grid, codecs.video.latent_channels, codecs.audio.latent_channels) == (32, 48, 20)
    umt5 = [[torch.randn(1, 6, 32), {"pooled_output": None}]]  # what CLIPTextEncode gives (width 32 here)
    positive = run_node(cond.HarmonyConditioning, video=umt5, transcript="hello")[0]
    with pytest.raises(ValueError, match="width: 48 is not a multiple of 32"):
        run_node(
            sampling.HarmonySampler, model=model, codecs=codecs, positive=positive, **{**WIDGETS, "width": 48}
        )
    latent = run_node(
        sampling.HarmonySampler, model=model, codecs=codecs, positive=positive, negative=umt5, **WIDGETS
    )[0]
    assert latent["samples"].shape == (1, 48, 2, 4, 4) and latent["harmony_audio"].shape == (1, 20, 7)
    images, audio, fps = run_node(media.HarmonyDecode, codecs=codecs, latent=latent).args
    assert images[0].shape == (5, 64, 64, 3) and audio[0]["waveform"].shape == (1, 1, 3200)
    out = run_node(media.HarmonySaveAV, images=images[0], audio=audio[0], fps=fps[0], filename_prefix="real")
    assert (comfy_env / "output" / out.ui["harmony_av"][0]["filename"]).is_file()


WIDGETS = {**SAMPLER_WIDGETS, "frames": 5, "seed": 1, "sync_video_scale": 3.0, "sync_audio_scale": 2.0,
           "text_video_scale": 2.0}
