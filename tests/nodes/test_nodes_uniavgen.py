"""UniAVGen checkpoints through the nodes (ComfyUI stand-in): the files as a user has them (uniavgen_files.py, tiny
random weights), the loader's folder and vocoder choices, UniAVGen's four tasks as sampler modes, the guidance
choice on the same weights, and every missing input refused before any model is loaded."""

from __future__ import annotations

import importlib.util

import comfy.model_management as mm
import pytest
import torch
import uniavgen_files as files

from node_harness import SAMPLER_WIDGETS, pack_module, run_node

loaders = pack_module("nodes.loaders")
cond = pack_module("nodes.conditioning")
sampling = pack_module("nodes.sampling")
media = pack_module("nodes.media")
paths = pack_module("nodes.adapters.paths")
FROM = loaders.FROM_MODEL
CKPT, VOCODER = files.CHECKPOINT + "/", files.VOCODER + "/"
# 64x64, 21 frames at 16 fps (1.31 s: 131 mel frames), 2 steps, UniAVGen's scales
WIDGETS = {**SAMPLER_WIDGETS, "frames": 21, "fps": 16.0, "text_video_scale": 3.0, "text_audio_scale": 2.0}
SPEECH = "over the past week, it rained"


@pytest.fixture
def models(comfy_env):
    root = comfy_env / "models"
    files.write_user_models(root)
    files.write_single(root / "harmony" / "uniavgen_one_file.safetensors")
    return root


@pytest.fixture
def model(models):
    return run_node(loaders.HarmonyModelLoader, ckpt_name=CKPT, weight_dtype="default", attention="sdpa")[0]


@pytest.fixture
def codecs(model):
    return run_node(loaders.HarmonyCodecLoader, model=model, video_vae=files.VAE_FILE, audio_vae=FROM,
                    vocoder=VOCODER)[0]


def umt5(tokens: int = 5, seed: int = 0) -> list:
    """What CLIPTextEncode gives, at the tiny checkpoint's caption width."""
    return [[torch.randn(1, tokens, files.TEXT_DIM, generator=torch.Generator().manual_seed(seed)), {}]]


def positive(transcript: str = SPEECH, language: str = "en") -> list:
    return run_node(cond.HarmonyConditioning, video=umt5(), transcript=transcript, language=language)[0]


def reference(codecs) -> object:
    image = torch.rand(1, 80, 96, 3, generator=torch.Generator().manual_seed(1))
    return run_node(cond.HarmonyReferenceImage, codecs=codecs, image=image, width=64, height=64, crop="center")[0]


def voice(codecs, role: str, seconds: float = 0.5, transcript: str = "") -> object:
    wave = 0.3 * torch.sin(torch.arange(int(24000 * seconds)) * 0.05)
    audio = {"waveform": wave.reshape(1, 1, -1), "sample_rate": 24000}
    return run_node(cond.HarmonyAudioCondition, codecs=codecs, audio=audio, role=role, start_seconds=0.0,
                    max_seconds=0.0, transcript=transcript)[0]


def sample(model, codecs, **over) -> dict:
    inputs = {"positive": positive(), "negative": umt5(1, 9), **WIDGETS, **over}
    return run_node(sampling.HarmonySampler, model=model, codecs=codecs, **inputs)[0]


def test_loader_offers_the_download_folder_and_the_vocoder_folder(models):
    choices = paths.harmony_files()
    assert choices == [CKPT, "uniavgen_one_file.safetensors"]  # shards and the vocoder's weights hidden
    assert paths.vocoder_folders() == [VOCODER]
    info = loaders.HarmonyCodecLoader.GET_NODE_INFO_V1()["input"]["required"]
    assert VOCODER in info["vocoder"][1]["options"] and files.VAE_FILE in info["video_vae"][1]["options"]


@pytest.mark.parametrize("name", [CKPT, "uniavgen_one_file.safetensors"])
def test_sharded_folder_and_prefixed_file_load_as_uniavgen(models, name):
    patcher = run_node(loaders.HarmonyModelLoader, ckpt_name=name, weight_dtype="bf16", attention="sdpa")[0]
    loaded = patcher.model.diffusion_model
    assert loaded.cfg.name == "uniavgen-tiny" and patcher.model_dtype() == torch.bfloat16
    assert loaded.cfg.defaults.guidance == "uniavgen"


def test_uniavgen_codecs_are_the_wan_vae_and_the_vocoder_alone(model, codecs):
    assert (codecs.grid, codecs.video.latent_channels, codecs.audio.latent_channels) == (32, 48, 80)
    assert codecs.audio.sample_rate == 24000
    with pytest.raises(ValueError, match="audio_vae: this model's audio latent is the mel spectrogram"):
        run_node(loaders.HarmonyCodecLoader, model=model, video_vae=files.VAE_FILE, audio_vae=files.VAE_FILE,
                 vocoder=VOCODER)
    with pytest.raises(ValueError, match="vocoder: this model uses the uniavgen-24k audio codec; choose"):
        run_node(loaders.HarmonyCodecLoader, model=model, video_vae=files.VAE_FILE, audio_vae=FROM, vocoder=FROM)
    with pytest.raises(ValueError, match="vocoder: 'wan2.2_vae.safetensors' is not the uniavgen-24k vocoder"):
        run_node(loaders.HarmonyCodecLoader, model=model, video_vae=files.VAE_FILE, audio_vae=FROM,
                 vocoder=files.VAE_FILE)


def test_the_four_tasks_run_and_decode(model, codecs):
    ref = reference(codecs)
    tasks = {  # UniAVGen's task: sampler inputs
        "AVG": {"mode": "joint", "reference": ref},
        "RAVG": {"mode": "joint", "reference": ref,
                 "audio_cond": voice(codecs, "reference_voice", transcript="selected forms are propagated")},
        "A2V": {"mode": "audio_driven", "reference": ref, "audio_cond": voice(codecs, "drive")},
        "V2A": {"mode": "video_driven", "video_cond": run_node(
            cond.HarmonyVideoCondition, codecs=codecs, fps=16.0, images=torch.rand(21, 64, 64, 3))[0]},
    }
    for task, inputs in tasks.items():
        latent = sample(model, codecs, **inputs)
        assert latent["samples"].shape == (1, 48, 6, 4, 4), task
        assert latent["harmony_audio"].shape == (1, 80, 131), task  # floor(21 / 16 s x 100)
        images, audio, fps = run_node(media.HarmonyDecode, codecs=codecs, latent=latent).args
        assert images[0].shape == (21, 64, 64, 3) and fps[0] == 16.0, task
        assert audio[0]["sample_rate"] == 24000 and torch.isfinite(audio[0]["waveform"]).all(), task


def test_request_carries_the_voice_transcript_language_and_guidance(model, codecs):
    harmony = model.model.diffusion_model
    ref = reference(codecs)
    c = sampling.Conditions(voice(codecs, "reference_voice", transcript="hello"), None, ref)
    w = sampling.Widgets(**WIDGETS)
    req = sampling.build_request(harmony, codecs, w, positive(), umt5(1), c)
    assert (req.transcript, req.ref_transcript, req.language) == (SPEECH, "hello", "en")
    assert req.guidance.kind == "uniavgen" and req.guidance.macfg.video_scale == 3.0
    assert req.guidance.macfg.skip_blocks == harmony.cfg.defaults.macfg_skip_blocks
    sync = sampling.build_request(harmony, codecs, sampling.Widgets(**{**WIDGETS, "guidance": "synccfg"}),
                                  positive(), umt5(1), c)
    assert sync.guidance.kind == "synccfg" and sync.guidance.sync.video_scale == WIDGETS["sync_video_scale"]


def test_synccfg_runs_on_the_same_weights(model, codecs):
    latent = sample(model, codecs, mode="joint", reference=reference(codecs), guidance="synccfg")
    assert torch.isfinite(latent["samples"]).all() and torch.isfinite(latent["harmony_audio"]).all()


def test_uniavgen_guidance_on_a_harmony_model_is_refused(demo_model, demo_codecs, demo_text):
    with pytest.raises(ValueError, match="guidance: 'uniavgen' .* is not a UniAVGen checkpoint"):
        run_node(sampling.HarmonySampler, model=demo_model, codecs=demo_codecs, positive=demo_text[0],
                 **{**SAMPLER_WIDGETS, "guidance": "uniavgen"})


def not_loaded(model) -> bool:
    return all(entry is not model for entry in mm.current_loaded_models)


@pytest.mark.parametrize("case, over, message", [
    ("joint without a reference image", {"mode": "joint"}, r"reference: UniAVGen starts every clip from a "
                                                           r"reference image.*mode 'joint' needs one"),
    ("lip-sync without a reference image", {"mode": "audio_driven", "drive": True}, r"reference: UniAVGen"),
    ("lip-sync without the speech", {"mode": "audio_driven", "ref": True}, r"audio_cond: mode 'audio_driven' "
                                                                           r"needs a driving soundtrack"),
    ("foley without the video", {"mode": "video_driven"}, r"video_cond: mode 'video_driven' needs driving frames"),
    ("no negative caption", {"mode": "joint", "ref": True, "negative": None}, r"negative: text CFG above 1 needs"),
    ("speech longer than the clip", {"mode": "audio_driven", "ref": True, "drive": 2.0},
     r"audio_cond: driving audio: 2.00 s is longer than the clip \(1.31 s\)"),
    ("85 frames", {"mode": "joint", "ref": True, "frames": 85}, r"85 frames is more than the 81 this model"),
    ("a caption of another width", {"mode": "joint", "ref": True, "positive": [[torch.zeros(1, 4, 4096), {}]]},
     r"positive: video caption embedding has shape \(1, 4, 4096\) but the model takes \[1, tokens, 32\]"),
])
def test_missing_or_wrong_inputs_fail_before_the_model_is_loaded(model, codecs, case, over, message):
    over = dict(over)
    if over.pop("ref", False):
        over["reference"] = reference(codecs)
    drive = over.pop("drive", None)
    if drive:
        over["audio_cond"] = voice(codecs, "drive", seconds=1.0 if drive is True else drive)
    if over.get("negative", 0) is None:
        inputs = {"positive": positive(), **WIDGETS, **{k: v for k, v in over.items() if k != "negative"}}
        call = lambda: run_node(sampling.HarmonySampler, model=model, codecs=codecs, **inputs)  # noqa: E731
    else:
        call = lambda: sample(model, codecs, **over)  # noqa: E731
    with pytest.raises(ValueError, match=message):
        call()
    assert not_loaded(model), case


@pytest.mark.skipif(importlib.util.find_spec("jieba") is not None, reason="jieba is installed here")
def test_chinese_without_jieba_is_a_clear_error_before_any_work(model, codecs):
    with pytest.raises(ValueError, match=r"language: Chinese transcripts .*\(pip install jieba pypinyin\)"):
        sample(model, codecs, mode="joint", reference=reference(codecs), positive=positive("今天下雨", "zh"))
    assert not_loaded(model)
