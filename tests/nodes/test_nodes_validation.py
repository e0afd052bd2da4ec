"""Declared ranges hold when values come through links (ComfyUI checks widget values only): every Int/Float
input of every Harmony node refuses a value past its max or min, NaN and infinity; combos refuse a value that
is not an option. The check reads the same schema the editor shows, so the two cannot drift apart."""

from __future__ import annotations

import asyncio
import math

import pytest
import torch
from comfy_api.latest import io

from node_harness import pack_module, run_node

validation = pack_module("nodes.validation")


def harmony_nodes(pack) -> list[type[io.ComfyNode]]:
    return asyncio.run(asyncio.run(pack.comfy_entrypoint()).get_node_list())


def cases(pack) -> list[tuple[type, object, object, str]]:
    """(node, input spec, bad value, expected message) for every checked input."""
    out = []
    for node in harmony_nodes(pack):
        for spec in node.define_schema().inputs:
            if isinstance(spec, (io.Int.Input, io.Float.Input)):
                if spec.max is not None:
                    out.append((node, spec, spec.max + 1, "outside its range"))
                if spec.min is not None:
                    out.append((node, spec, spec.min - 1, "outside its range"))
                if isinstance(spec, io.Float.Input):
                    out += [(node, spec, math.nan, "finite"), (node, spec, math.inf, "finite")]
                else:
                    out.append((node, spec, (spec.min or 0) + 0.5, "whole number"))
            elif isinstance(spec, io.Combo.Input) and spec.options:
                out.append((node, spec, "no such option", "not one of its options"))
    return out


def test_every_numeric_and_combo_input_is_enforced_at_run_time(pack):
    checked = 0
    for node, spec, value, message in cases(pack):
        if spec.id in ("ckpt_name", "video_vae", "audio_vae", "vocoder"):
            continue  # file names: the loaders name the folder and say how to fix it (test_nodes_loaders.py)
        with pytest.raises(ValueError, match=f"{spec.id} .*{message}") as caught:
            run_node(node, **{spec.id: value})
        assert node.define_schema().display_name in str(caught.value)
        checked += 1
    assert checked > 60  # every sampler widget, both scores' inputs, conditioning, mux and save


def test_values_inside_the_range_pass_and_the_error_names_the_range(pack):
    sampler = pack_module("nodes.sampling").HarmonySampler
    validation.enforce_ranges(sampler, {"fps": 120.0, "sync_video_scale": 10.0, "steps": 1, "mode": "joint"})
    with pytest.raises(ValueError, match=r"fps = 1000 is outside its range 1\.\.120"):
        validation.enforce_ranges(sampler, {"fps": 1000.0})
    with pytest.raises(ValueError, match=r"sync_video_scale = 1e\+06 is outside its range 0\.\.10"):
        validation.enforce_ranges(sampler, {"sync_video_scale": 1e6})
    with pytest.raises(ValueError, match=r"text_video_scale = -2 is outside its range 0\.\.20"):
        validation.enforce_ranges(sampler, {"text_video_scale": -2.0})
    with pytest.raises(ValueError, match=r"rescale_video = -0\.1 is outside its range 0\.\.1"):
        validation.enforce_ranges(sampler, {"rescale_video": -0.1})
    with pytest.raises(ValueError, match="steps must be a number, got str"):
        validation.enforce_ranges(sampler, {"steps": "24"})


def leftovers(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_non_finite_media_is_an_input_error(demo_codecs, comfy_env):
    cond = pack_module("nodes.conditioning")
    media = pack_module("nodes.media")
    wave = torch.zeros(1, 1, 16000)
    wave[0, 0, 100:112] = math.nan
    with pytest.raises(ValueError, match="audio: 12 of 16000 audio samples are NaN or infinite"):
        run_node(cond.HarmonyAudioCondition, codecs=demo_codecs, audio={"waveform": wave, "sample_rate": 16000},
                 role="drive", start_seconds=0.0, max_seconds=0.0)
    with pytest.raises(ValueError, match="audio: expected AUDIO"):
        run_node(cond.HarmonyAudioCondition, codecs=demo_codecs, audio="speech.wav", role="drive",
                 start_seconds=0.0, max_seconds=0.0)
    images = torch.rand(9, 64, 64, 3)
    images[3, 5, 5, 0] = math.inf
    audio = {"waveform": torch.zeros(1, 1, 5760), "sample_rate": 16000}
    with pytest.raises(ValueError, match="images: 1 of 110592 pixel values are NaN or infinite"):
        run_node(media.HarmonySaveAV, images=images, audio=audio, fps=25.0, filename_prefix="x")
    with pytest.raises(ValueError, match="image: 1 of"):
        run_node(cond.HarmonyReferenceImage, codecs=demo_codecs, image=images[3:4], width=64, height=64,
                 crop="center")
    assert leftovers(comfy_env / "output") == []


@pytest.mark.parametrize("prefix, saved", [("", "harmony/Harmony_00001_.mp4"),
                                           ("  ", "harmony/Harmony_00001_.mp4"),
                                           ("clips/", "clips/Harmony_00001_.mp4"),
                                           ("take", "take_00001_.mp4")])
def test_prefixes_always_name_a_visible_file(comfy_env, prefix, saved):
    media = pack_module("nodes.media")
    images, audio = torch.rand(9, 64, 64, 3), {"waveform": torch.zeros(1, 1, 5760), "sample_rate": 16000}
    out = run_node(media.HarmonySaveAV, images=images, audio=audio, fps=25.0, filename_prefix=prefix)
    entry = out.ui["harmony_av"][0]
    assert f"{entry['subfolder']}/{entry['filename']}".lstrip("/") == saved
    expected = [saved.split("/")[0], saved] if "/" in saved else [saved]
    assert leftovers(comfy_env / "output") == expected  # no hidden file, no temporary file


@pytest.mark.parametrize("prefix", ["a\x00b", "line\nbreak", "tab\there"])
def test_prefixes_with_control_characters_are_refused_and_nothing_is_written(comfy_env, prefix):
    media = pack_module("nodes.media")
    images, audio = torch.rand(9, 64, 64, 3), {"waveform": torch.zeros(1, 1, 5760), "sample_rate": 16000}
    with pytest.raises(ValueError, match="filename_prefix: 1 control character"):
        run_node(media.HarmonySaveAV, images=images, audio=audio, fps=25.0, filename_prefix=prefix)
    assert leftovers(comfy_env / "output") == []


def test_cancel_inside_the_mp4_writer_leaves_nothing(pack, comfy_env):
    """on_load registers ComfyUI's interrupt as harmony_core's cancel check: the writer stops between frames."""
    import comfy.model_management as mm

    asyncio.run(asyncio.run(pack.comfy_entrypoint()).on_load())
    media = pack_module("nodes.media")
    images, audio = torch.rand(9, 64, 64, 3), {"waveform": torch.zeros(1, 1, 5760), "sample_rate": 16000}
    mm.interrupt_current_processing()
    with pytest.raises(mm.InterruptProcessingException):
        run_node(media.HarmonySaveAV, images=images, audio=audio, fps=25.0, filename_prefix="x")
    assert leftovers(comfy_env / "output") == []
