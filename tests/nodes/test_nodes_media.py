"""HarmonyDecode, HarmonyMux and HarmonySaveAV: takes as lists, exact durations, ComfyUI's file naming."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import folder_paths
import pytest
import torch
from comfy.cli_args import args
from comfy_api.latest import io

from node_harness import SAMPLER_WIDGETS, pack_module, run_node

sampling = pack_module("nodes.sampling")
media = pack_module("nodes.media")
save = pack_module("nodes.adapters.save")
read = pack_module("harmony_core.media")


@pytest.fixture(scope="module")
def takes(demo_model, demo_codecs, demo_text):
    widgets = {**SAMPLER_WIDGETS, "seed": 3, "batch": 2}
    latent = run_node(
        sampling.HarmonySampler, model=demo_model, codecs=demo_codecs, positive=demo_text[0], **widgets
    )[0]
    return run_node(media.HarmonyDecode, codecs=demo_codecs, latent=latent).args


def test_decode_gives_one_list_item_per_take_with_exact_durations(takes):
    images, audio, fps = takes
    assert len(images) == len(audio) == len(fps) == 2 and fps == [25.0, 25.0]
    for frames, sound in zip(images, audio, strict=True):
        assert frames.shape == (9, 64, 64, 3) and frames.dtype == torch.float32
        assert 0 <= frames.min() and frames.max() <= 1
        assert sound["sample_rate"] == 16000 and sound["waveform"].shape == (1, 1, 5760)  # 9 / 25 s at 16 kHz
    assert not torch.equal(images[0], images[1])


def test_decode_refuses_a_latent_without_audio(demo_codecs):
    with pytest.raises(ValueError, match="latent: this LATENT has no Harmony audio track"):
        run_node(media.HarmonyDecode, codecs=demo_codecs, latent={"samples": torch.zeros(1, 16, 3, 8, 8)})
    with pytest.raises(
        ValueError, match="codecs: the video latent has 48 channels but the video codec reads"
    ):
        run_node(
            media.HarmonyDecode,
            codecs=demo_codecs,
            latent={
                "samples": torch.zeros(1, 48, 3, 8, 8),
                "harmony_audio": torch.zeros(1, 1, 12),
                "harmony_fps": "25",
            },
        )


def test_mux_gives_a_native_video_with_audio_of_the_video_length(takes):
    images, audio, fps = takes
    video = run_node(media.HarmonyMux, images=images[0], audio=audio[0], fps=fps[0])[0]
    parts = video.get_components()
    assert video.get_dimensions() == (64, 64) and parts.frame_rate == Fraction(25)
    assert parts.audio["waveform"].shape == (1, 1, 5760) and parts.audio["sample_rate"] == 16000
    short = {"waveform": audio[0]["waveform"][..., :1000], "sample_rate": 16000}
    padded = run_node(media.HarmonyMux, images=images[0][:, :63, :63], audio=short, fps=29.97)[0]
    assert padded.get_dimensions() == (64, 64) and padded.get_frame_rate() == Fraction(30000, 1001)
    assert padded.get_components().audio["waveform"].shape[-1] == 4805  # ceil(9 * 1001 / 30000 * 16000)


def save_take(takes, hidden=None, prefix="harmony/Harmony"):
    images, audio, fps = takes
    return run_node(
        media.HarmonySaveAV,
        hidden=hidden,
        images=images[0],
        audio=audio[0],
        fps=fps[0],
        filename_prefix=prefix,
    )


def test_save_writes_an_mp4_with_comfy_naming_and_metadata(takes, comfy_env):
    prompt, workflow = {"3": {"class_type": "HarmonySampler"}}, {"nodes": [], "links": []}
    out = save_take(takes, {io.Hidden.prompt: prompt, io.Hidden.extra_pnginfo: {"workflow": workflow}})
    assert out.result is None
    # our own UI key only: under "images" the editor would add a second (core) video player
    assert out.ui == {
        "harmony_av": [{"filename": "Harmony_00001_.mp4", "subfolder": "harmony", "type": "output"}],
    }
    path = comfy_env / "output" / "harmony" / "Harmony_00001_.mp4"
    info = read.probe(path)
    assert [s.kind for s in info.streams] == ["video", "audio"]
    assert info.first("video").frames == 9
    wave, rate = read.read_audio(path)
    assert rate == 16000 and wave.shape[-1] == 5760
    with av.open(str(path)) as container:
        tags = container.metadata
    assert json.loads(tags["prompt"]) == prompt and json.loads(tags["workflow"]) == workflow
    assert save_take(takes).ui["harmony_av"][0]["filename"] == "Harmony_00002_.mp4"


def test_save_never_overwrites(takes, comfy_env, monkeypatch):
    folder = comfy_env / "output"
    folder.mkdir()
    (folder / "clip_00007_.mp4").write_bytes(b"keep me")
    assert save_take(takes, prefix="clip").ui["harmony_av"][0]["filename"] == "clip_00008_.mp4"
    real = folder_paths.get_save_image_path
    monkeypatch.setattr(
        folder_paths,
        "get_save_image_path",  # a stale counter (another writer)
        lambda *a: (*real(*a)[:2], 7, *real(*a)[3:]),
    )
    name = save_take(takes, prefix="clip").ui["harmony_av"][0]["filename"]
    assert name != "clip_00007_.mp4" and (folder / name).is_file()
    assert (folder / "clip_00007_.mp4").read_bytes() == b"keep me"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_save_honours_disable_metadata_and_refuses_leaving_the_output_folder(takes, comfy_env, monkeypatch):
    monkeypatch.setattr(args, "disable_metadata", True)
    save_take(takes, {io.Hidden.prompt: {"1": {}}}, prefix="plain")
    with av.open(str(comfy_env / "output" / "plain_00001_.mp4")) as container:
        assert "prompt" not in container.metadata
    with pytest.raises(Exception, match="outside the output folder"):
        save_take(takes, prefix="../escape")
    assert not (comfy_env / "escape_00001_.mp4").exists()
