"""UniAVGen's four example workflows in a real ComfyUI (`main.py --cpu`), on a tiny random checkpoint in UniAVGen's
key format that the session writes itself (user_models.py): each saves an mp4 with one video and one audio stream
of equal length. Plus the same weights under SyncCFG and from one prefixed file, and inputs a task lacks refused
before any work.

What each run changes in the shipped graph, and why (everything else is as shipped: node types, links, values,
the file names the loaders choose, the example media):
- the text encoder: a real UniAVGen reads umT5-XXL captions (4096 wide, CLIPLoader type "wan" + CLIPTextEncode);
  umT5-XXL cannot be built here and the tiny checkpoint reads 32-wide captions, so exactly the CLIPLoader and
  CLIPTextEncode nodes are swapped for the test-only node user_models.TEXT_NODE (same ids, same texts, CONDITIONING
  of the tiny width), loaded from a package the session writes into ComfyUI's custom_nodes;
- the size: HarmonySampler's and HarmonyReferenceImage's width/height 64x64 instead of 1312x736, so that 81
  frames x 50 steps run in seconds on 2 CPU cores (the foley clip's size comes from its 64x64 video anyway).
The loaders read the session's tiny files under the shipped names: models/harmony/UniAVGen/ (a diffusers index +
2 shards in the reference's key names, the vocoder folder code2wav_bigvgan_model/ inside it) and
models/vae/wan2.2_vae.safetensors (48 latent channels, 4x16x16 strides at toy widths).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from comfy_server import REPO, STREAMS, WALL_TIMES, run_prompt
from media_checks import summarize
from user_models import SINGLE_FILE, swap_text_encoders
from workflow_graph import to_api

pytestmark = pytest.mark.e2e

WORKFLOWS = ("uniavgen_talking_head", "uniavgen_talking_head_voice", "uniavgen_lipsync", "uniavgen_foley")
SIZE = 64


def tiny_prompt(name: str, object_info: dict) -> dict:
    """The shipped workflow in API format with the two changes of the module docstring."""
    workflow = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    prompt = swap_text_encoders(to_api(workflow, object_info))
    for entry in prompt.values():
        if entry["class_type"] in ("HarmonySampler", "HarmonyReferenceImage"):
            entry["inputs"].update(width=SIZE, height=SIZE)
    return prompt


def node(prompt: dict, class_type: str) -> dict:
    return next(entry for entry in prompt.values() if entry["class_type"] == class_type)


def check_clip(server, entry: dict, tmp_path, name: str) -> object:
    """The one mp4 of a run: one video and one audio stream of equal duration (within one frame)."""
    clips = [f for f in _files(entry) if f["filename"].endswith(".mp4")]
    assert len(clips) == 1, clips
    clip = summarize(server.download(clips[0], tmp_path / clips[0]["filename"]))
    assert (clip.video_streams, clip.audio_streams) == (1, 1), clip
    frame = 1 / float(clip.fps)
    assert abs(clip.audio_seconds - clip.video_seconds) <= frame, clip
    assert abs(clip.decoded_audio_seconds - clip.video_seconds) <= frame, clip
    STREAMS.setdefault(name, []).append(f"{clip.width}x{clip.height}, video {clip.frames} frames "
                                        f"{clip.video_seconds:.2f} s, audio {clip.decoded_audio_seconds:.2f} s")
    return clip


def _files(entry: dict) -> list[dict]:
    return [i for out in entry.get("outputs", {}).values() for items in out.values() if isinstance(items, list)
            for i in items if isinstance(i, dict) and "filename" in i]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_uniavgen_workflow_runs_on_the_tiny_checkpoint(name, server, object_info, tmp_path):
    prompt = tiny_prompt(name, object_info)
    assert node(prompt, "HarmonyModelLoader")["inputs"]["ckpt_name"] == "UniAVGen/"   # the sharded download
    start = time.monotonic()
    entry = run_prompt(server, prompt, timeout=420)
    WALL_TIMES[name] = time.monotonic() - start
    clip = check_clip(server, entry, tmp_path, name)
    assert (clip.width, clip.height) == (SIZE, SIZE)
    if name == "uniavgen_foley":            # the driving video's length and rate
        assert (clip.frames, float(clip.fps)) == (81, 25.0), clip
    else:                                   # 81 frames at 16 fps, as shipped
        assert (clip.frames, float(clip.fps)) == (81, 16.0), clip


def test_synccfg_on_the_same_weights_from_one_prefixed_file(server, object_info, tmp_path):
    """guidance 'synccfg' (Harmony's SyncCFG on UniAVGen weights), the checkpoint as one file whose keys carry
    ComfyUI's model.diffusion_model. prefix."""
    prompt = tiny_prompt("uniavgen_talking_head", object_info)
    node(prompt, "HarmonyModelLoader")["inputs"]["ckpt_name"] = SINGLE_FILE
    node(prompt, "HarmonySampler")["inputs"].update(guidance="synccfg", steps=8)
    start = time.monotonic()
    entry = run_prompt(server, prompt, timeout=420)
    WALL_TIMES["uniavgen_talking_head (synccfg, one file, 8 steps)"] = time.monotonic() - start
    check_clip(server, entry, tmp_path, "uniavgen_talking_head (synccfg, one file, 8 steps)")


def _no_reference(prompt: dict) -> dict:
    node(prompt, "HarmonySampler")["inputs"].pop("reference")
    return prompt


def _chinese(prompt: dict) -> dict:
    node(prompt, "HarmonyConditioning")["inputs"].update(language="zh", transcript="今天天气很好")
    return prompt


def _short_clip(prompt: dict) -> dict:
    node(prompt, "HarmonySampler")["inputs"].update(frames=33)   # 2.06 s at 16 fps; the speech is 3.24 s
    return prompt


ERRORS = [  # (workflow, change, expected message)
    ("uniavgen_talking_head", _no_reference, r"reference: UniAVGen starts every clip from a reference image"),
    ("uniavgen_lipsync", _short_clip, r"audio_cond: driving audio: 3\.\d\d s is longer than the clip \(2\.06 s\)"),
    ("uniavgen_talking_head", _chinese, r"language: Chinese transcripts .*pip install jieba pypinyin"),
]


@pytest.fixture(scope="module")
def comfy_python_has_jieba(comfy_dir) -> bool:
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    probe = "import importlib.util; print(importlib.util.find_spec('jieba') is not None)"
    return subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "True"


@pytest.mark.parametrize("name, change, expected", ERRORS, ids=["no reference", "speech too long", "zh"])
def test_a_task_without_what_it_needs_is_refused_before_any_work(name, change, expected, server, object_info,
                                                                  comfy_python_has_jieba):
    """The sampler's error names the input and what to do, within seconds (nothing was sampled)."""
    if change is _chinese and comfy_python_has_jieba:
        pytest.skip("ComfyUI's Python has jieba: the Chinese transcript would run")
    prompt = change(tiny_prompt(name, object_info))
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="prompt failed") as failed:
        run_prompt(server, prompt, timeout=120)
    seconds = time.monotonic() - start
    assert re.search(expected, str(failed.value)), str(failed.value)[:2000]
    assert '"node_type": "HarmonySampler"' in str(failed.value)
    assert seconds < 30, f"refused after {seconds:.1f} s"
