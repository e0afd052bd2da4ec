"""HarmonyModelLoader and HarmonyCodecLoader: MODEL via ComfyUI's ModelPatcher, codecs, input errors."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.model_patcher
import pytest
import torch
from safetensors.torch import save_file

from node_harness import pack_module, run_node

loaders = pack_module("nodes.loaders")
adapter = pack_module("nodes.adapters.model_patcher")
harmony = pack_module("harmony_core.model.harmony")
config = pack_module("harmony_core.config")
checkpoint = pack_module("harmony_core.loading.checkpoint")
FROM = loaders.FROM_MODEL


def load_model(**over):
    widgets = {"ckpt_name": loaders.DEMO_CHOICE, "weight_dtype": "default", "attention": "sdpa", **over}
    return run_node(loaders.HarmonyModelLoader, **widgets)[0]


def load_codecs(model, **over):
    widgets = {"video_vae": FROM, "audio_vae": FROM, "vocoder": FROM, **over}
    return run_node(loaders.HarmonyCodecLoader, model=model, **widgets)[0]


def test_demo_model_is_a_model_patcher_that_comfy_loads_and_offloads(demo_model):
    assert isinstance(demo_model, comfy.model_patcher.ModelPatcher)
    assert isinstance(demo_model.model, adapter.HarmonyModule)
    assert demo_model.model_size() > 0 and demo_model.model_dtype() == torch.float32
    assert adapter.load(demo_model) == torch.device("cpu")
    assert mm.current_loaded_models[0] is demo_model
    assert demo_model.loaded_size() == demo_model.model_size()


def test_checkpoint_from_models_harmony_loads(comfy_env):
    torch.manual_seed(0)
    model = harmony.HarmonyModel(config.preset("demo"))
    checkpoint.save_checkpoint(model, comfy_env / "models" / "harmony" / "sub" / "mine.safetensors")
    patcher = load_model(ckpt_name="sub/mine.safetensors", weight_dtype="bf16")
    loaded = patcher.model.diffusion_model
    assert loaded.cfg == model.cfg and patcher.model_dtype() == torch.bfloat16
    ref = model.state_dict()["video.patch_embedding.weight"].to(torch.bfloat16)
    assert torch.equal(loaded.state_dict()["video.patch_embedding.weight"], ref)


def test_checkpoint_of_the_wrong_kind_names_ckpt_name(comfy_env):
    save_file(
        {"encoder.conv1.weight": torch.zeros(4, 12, 3, 3, 3)},
        str(comfy_env / "models" / "harmony" / "a_vae.safetensors"),
    )
    with pytest.raises(
        ValueError, match=r"ckpt_name: 'a_vae.safetensors' is not a Harmony or UniAVGen checkpoint.*models/vae"
    ):
        load_model(ckpt_name="a_vae.safetensors")


def test_missing_checkpoint_and_unusable_attention_name_their_input():
    with pytest.raises(ValueError, match="ckpt_name: 'gone.safetensors' is not in models/harmony"):
        load_model(ckpt_name="gone.safetensors")
    with pytest.raises(ValueError, match="attention: .*choose 'sdpa'"):
        load_model(attention="flash")


def test_demo_codecs_need_no_files_and_fit_the_model(demo_model, demo_codecs):
    assert demo_codecs.video.latent_channels == demo_model.model.diffusion_model.cfg.video.in_dim
    assert demo_codecs.audio.sample_rate == 16000
    assert demo_codecs.grid == 16
    assert isinstance(demo_codecs.patcher, comfy.model_patcher.ModelPatcher)


def test_codec_files_for_the_demo_model_are_refused(demo_model, comfy_env):
    (comfy_env / "models" / "vae" / "wan2.2_vae.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="video_vae: this model uses its built-in demo video codec"):
        load_codecs(demo_model, video_vae="wan2.2_vae.safetensors")
    with pytest.raises(ValueError, match="audio_vae, vocoder: this model uses its built-in demo audio codec"):
        load_codecs(demo_model, audio_vae="wan2.2_vae.safetensors", vocoder="wan2.2_vae.safetensors")


class FakeCoreVAE:
    """What core Load VAE hands over: an object with get_sd()."""

    def get_sd(self):
        return {}


def test_core_vae_for_the_demo_model_is_refused(demo_model):
    with pytest.raises(ValueError, match="vae: this model uses its built-in demo video codec"):
        load_codecs(demo_model, vae=FakeCoreVAE())
    with pytest.raises(ValueError, match="vae / video_vae: give the video VAE once"):
        load_codecs(demo_model, vae=FakeCoreVAE(), video_vae="x.safetensors")


def real_codec_model():
    """A MODEL whose config names the real codecs (the tiny test preset: Wan2.2 VAE + MMAudio 16k)."""
    return adapter.model_patcher(harmony.HarmonyModel(config.preset("tiny")), "tiny")


def test_real_codecs_need_their_files(comfy_env):
    model = real_codec_model()
    with pytest.raises(ValueError, match="video_vae: this model decodes video with the wan2.2-vae codec"):
        load_codecs(model)
    (comfy_env / "models" / "vae" / "not_a_vae.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="video_vae: 'not_a_vae.safetensors' is not a wan2.2-vae file"):
        load_codecs(model, video_vae="not_a_vae.safetensors")
    with pytest.raises(ValueError, match="vae: this VAE is not the Wan2.2 VAE"):
        load_codecs(model, vae=FakeCoreVAE())


def test_a_model_that_is_not_harmony_names_model(demo_model):
    foreign = comfy.model_patcher.ModelPatcher(
        torch.nn.Linear(2, 2), torch.device("cpu"), torch.device("cpu")
    )
    with pytest.raises(ValueError, match="model: this MODEL is a Linear, not a Harmony model"):
        load_codecs(foreign)
