"""Compact descriptions of the bundled workflows; make_workflows.py builds them in ComfyUI's editor.

Each spec: nodes (key, type, position, widget values by name, optional title/size) and links
(from key, output name, to key, input name). The editor assigns ids in node order and sizes, and saves.
Captions follow the demo model's synthetic scenes (harmony_core.train.synthetic), which it was trained on.
"""
from __future__ import annotations

import uuid

from workflow_inputs import FIRST_FRAME_PNG, IMPACTS_MP4, SPEECH_WAV

DEMO = "harmony_demo.safetensors (bundled)"
FROM_MODEL = "from model (demo)"
SEED = 42
AUDIO_DRIVEN_SYNC = 2.0  # SyncCFG video scale for audio-driven video: best of 1 / 1.5 / 2 / 3 (docs/demo_model.md)


def _note(text: str) -> dict:
    return {"key": "note", "type": "Note", "pos": [20, 20], "size": [340, 170],
            "title": "About this workflow", "widgets": {"text": text}}


def _common(video: str, audio: str, transcript: str, mode: str, prefix: str,
            guidance: dict | None = None) -> tuple[list, list]:
    """Loader, codecs, text, sampler, decode and save nodes with their links; `guidance`: sampler widget
    values other than the model's defaults (per-mode scales measured in docs/demo_model.md)."""
    nodes = [
        {"key": "model", "type": "HarmonyModelLoader", "pos": [20, 230],
         "widgets": {"ckpt_name": DEMO, "weight_dtype": "default", "attention": "sdpa"}},
        {"key": "codecs", "type": "HarmonyCodecLoader", "pos": [400, 20],
         "widgets": {"video_vae": FROM_MODEL, "audio_vae": FROM_MODEL, "vocoder": FROM_MODEL}},
        {"key": "text", "type": "HarmonyTextEncode", "pos": [400, 200], "size": [380, 420],
         "widgets": {"video_caption": video, "audio_caption": audio, "transcript": transcript,
                     "negative": ""}},
        {"key": "sampler", "type": "HarmonySampler", "pos": [820, 20],
         "widgets": {"mode": mode, "seed": SEED, "control_after_generate": "fixed", **(guidance or {})}},
        {"key": "decode", "type": "HarmonyDecode", "pos": [1180, 20]},
        {"key": "save", "type": "HarmonySaveAV", "pos": [1180, 160], "size": [360, 120],
         "widgets": {"filename_prefix": f"harmony/{prefix}"}},
    ]
    links = [
        ["model", "model", "codecs", "model"], ["model", "model", "text", "model"],
        ["model", "model", "sampler", "model"], ["codecs", "codecs", "sampler", "codecs"],
        ["text", "positive", "sampler", "positive"], ["text", "negative", "sampler", "negative"],
        ["codecs", "codecs", "decode", "codecs"], ["sampler", "latent", "decode", "latent"],
        ["decode", "images", "save", "images"], ["decode", "audio", "save", "audio"],
        ["decode", "fps", "save", "fps"],
    ]
    return nodes, links


def _spec(name: str, nodes: list, links: list) -> dict:
    return {"name": name, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"harmony-av/workflows/{name}")),
            "nodes": nodes, "links": links}


def text_to_av() -> dict:
    nodes, links = _common(
        "a red circle and a blue square bouncing on a dark grey floor in front of a pale blue wall",
        "the red circle lands with a mid-pitched ringing ping; the blue square lands with a low dull knock, "
        "over a faint hiss", "", "joint", "text_to_av")
    note = _note("Text -> audio + video (joint mode). Both streams are generated together from the "
                 "captions; SyncCFG (sync_video_scale / sync_audio_scale) ties the impacts to the "
                 "sounds. Runs on the CPU with the bundled demo model (64x64, 81 frames at 25 fps).")
    return _spec("harmony_text_to_audio_video", [note, *nodes], links)


def audio_to_video() -> dict:
    nodes, links = _common("a yellow cartoon face with a round mouth talking in front of a pale green wall",
                           "a high buzzing voice chanting syllables, over a faint hiss", "magemu sope sibu",
                           "audio_driven", "audio_to_video", {"sync_video_scale": AUDIO_DRIVEN_SYNC})
    nodes += [
        {"key": "load", "type": "LoadAudio", "pos": [20, 420], "widgets": {"audio": SPEECH_WAV}},
        {"key": "cond", "type": "HarmonyAudioCondition", "pos": [400, 660],
         "widgets": {"role": "drive", "start_seconds": 0.0, "max_seconds": 0.0}},
    ]
    links += [["codecs", "codecs", "cond", "codecs"], ["load", "AUDIO", "cond", "audio"],
              ["cond", "audio_cond", "sampler", "audio_cond"]]
    note = _note(f"Audio-driven video: the loaded soundtrack is kept as is and only the video is generated "
                 f"(mode audio_driven); SyncCFG on the video side ({AUDIO_DRIVEN_SYNC:g}) makes the motion follow it. "
                 f"Load any speech or sound file; {SPEECH_WAV} is a synthetic example "
                 "(tests/workflows/workflow_inputs.py writes it).")
    return _spec("harmony_audio_to_video", [note, *nodes], links)


def video_to_audio() -> dict:
    clink = "the red triangle lands with a mid-pitched bright metallic clink, over a faint hiss"
    nodes, links = _common("a red triangle bouncing on a dark green floor in front of a grey wall", clink, "",
                           "video_driven", "video_to_audio", {"sync_audio_scale": 1.0})
    nodes += [
        {"key": "load", "type": "LoadVideo", "pos": [20, 420], "widgets": {"file": IMPACTS_MP4}},
        {"key": "cond", "type": "HarmonyVideoCondition", "pos": [400, 660], "widgets": {"fps": 25.0}},
    ]
    links += [["codecs", "codecs", "cond", "codecs"], ["load", "VIDEO", "cond", "video"],
              ["cond", "video_cond", "sampler", "video_cond"]]
    note = _note(f"Video-driven audio: the loaded frames are kept as is and a soundtrack is generated for "
                 f"them (mode video_driven). Size, length and frame rate come from the video. SyncCFG is off "
                 f"(sync_audio_scale 1): the demo model follows the picture closer without it. "
                 f"{IMPACTS_MP4} is a synthetic example (tests/workflows/workflow_inputs.py writes it).")
    return _spec("harmony_video_to_audio", [note, *nodes], links)


def image_to_av() -> dict:
    nodes, links = _common("a blue square bouncing on a dark grey floor in front of a pale blue wall",
                           "the blue square lands with a low dull knock, over a faint hiss", "", "joint",
                           "image_to_av")
    nodes += [
        {"key": "load", "type": "LoadImage", "pos": [20, 420], "widgets": {"image": FIRST_FRAME_PNG}},
        {"key": "ref", "type": "HarmonyReferenceImage", "pos": [400, 660],
         "widgets": {"width": 64, "height": 64, "crop": "center"}},
    ]
    links += [["codecs", "codecs", "ref", "codecs"], ["load", "IMAGE", "ref", "image"],
              ["ref", "reference", "sampler", "reference"]]
    note = _note(f"Image + text -> audio + video: the image becomes the first frame, the captions say what "
                 f"happens and how it sounds (joint mode). {FIRST_FRAME_PNG} is a synthetic example "
                 "(tests/workflows/workflow_inputs.py writes it).")
    return _spec("harmony_image_to_audio_video", [note, *nodes], links)


def all_specs() -> list[dict]:
    return [text_to_av(), audio_to_video(), video_to_audio(), image_to_av()]
