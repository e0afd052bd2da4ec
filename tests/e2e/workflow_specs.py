"""Compact descriptions of the bundled workflows; make_workflows.py builds them in ComfyUI's editor.

Each spec: nodes (key, type, position, widget values by name, optional title/size, the group it sits in) and
links (from key, output name, to key, input name). The editor assigns ids in node order and sizes; the builder
then frames each group around its nodes (loaders / conditioning / sampling / output) and stores a view that
shows the whole graph clear of the editor's sidebar and toolbars, and saves. Captions follow the demo model's
synthetic scenes (harmony_core.train.synthetic), which it was trained on. The example media ship with the pack
(harmony_core/assets/examples, copied into ComfyUI's input folder when the pack loads). Workflows for models
the user brings (UniAVGen, LTX-2) are in workflow_specs_user.py.
"""
from __future__ import annotations

import uuid

from workflow_inputs import FIRST_FRAME_PNG, IMPACTS_MP4, SPEECH_WAV
from workflow_specs_user import USER_MODEL_WORKFLOWS, user_model_specs

DEMO = "harmony_demo.safetensors (bundled)"
FROM_MODEL = "from model (demo)"
SEED = 42
AUDIO_DRIVEN_SYNC = 2.0  # SyncCFG video scale for audio-driven video: best of 1 / 2 / 3 (docs/demo_model.md)
VIDEO_DRIVEN_SYNC = 3.0  # SyncCFG audio scale for video-driven audio: best of 1 / 1.5 / 2 / 3 (docs/demo_model.md)
TAKES = 4
X = {"inputs": 20, "cond": 440, "scores": 440, "sample": 900, "output": 1270}  # column of each group
GROUPS = {"inputs": "Model and inputs", "cond": "Conditioning", "scores": "Scores", "sample": "Sampling",
          "output": "Output"}
SHIPPED = "ships with the pack and is copied into ComfyUI's input folder when the pack loads"


def _note(text: str) -> dict:
    return {"key": "note", "type": "Note", "pos": [X["inputs"], 80], "size": [380, 210], "group": "inputs",
            "title": "About this workflow", "widgets": {"text": text}}


def _node(key: str, type_: str, group: str, y: int, size: list | None = None, **extra) -> dict:
    node = {"key": key, "type": type_, "pos": [X[group], y], "group": group, **extra}
    if size:
        node["size"] = size
    return node


def _common(video: str, audio: str, transcript: str, mode: str, prefix: str,
            guidance: dict | None = None) -> tuple[list, list]:
    """Loader, codecs, text, sampler, decode and save nodes with their links; `guidance`: sampler widget
    values other than the model's defaults (per-mode scales measured in docs/demo_model.md)."""
    nodes = [
        _node("model", "HarmonyModelLoader", "inputs", 350, [380, 180],
              widgets={"ckpt_name": DEMO, "weight_dtype": "default", "attention": "sdpa"}),
        _node("codecs", "HarmonyCodecLoader", "inputs", 570, [380, 130],
              widgets={"video_vae": FROM_MODEL, "audio_vae": FROM_MODEL, "vocoder": FROM_MODEL}),
        _node("text", "HarmonyTextEncode", "cond", 80, [420, 430],
              widgets={"video_caption": video, "audio_caption": audio, "transcript": transcript, "negative": ""}),
        _node("sampler", "HarmonySampler", "sample", 80, [330, 600],
              widgets={"mode": mode, "seed": SEED, "control_after_generate": "fixed", **(guidance or {})}),
        _node("decode", "HarmonyDecode", "output", 80, [260, 90]),
        _node("save", "HarmonySaveAV", "output", 230, [400, 120], widgets={"filename_prefix": f"harmony/{prefix}"}),
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
    used = [g for g in GROUPS if any(n.get("group") == g for n in nodes)]
    groups = [{"title": GROUPS[g], "members": [n["key"] for n in nodes if n.get("group") == g]} for g in used]
    return {"name": name, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"harmony-av/workflows/{name}")),
            "nodes": nodes, "links": links, "groups": groups}


def text_to_av() -> dict:
    nodes, links = _common(
        "a red circle and a blue square bouncing on a dark grey floor in front of a pale blue wall",
        "the red circle lands with a mid-pitched ringing ping; the blue square lands with a low dull knock, "
        "over a faint hiss", "", "joint", "text_to_av")
    note = _note("Text -> audio + video (joint mode). Both streams are generated together from the "
                 "captions, each tower reading the other's frames at every layer, which ties the impacts "
                 "to the sounds. SyncCFG (sync_video_scale / sync_audio_scale) stays at 1 (off): on the "
                 "demo model it lowered joint sync. Runs on the CPU with the bundled demo model (64x64, "
                 "81 frames at 25 fps).")
    return _spec("harmony_text_to_audio_video", [note, *nodes], links)


def audio_to_video() -> dict:
    nodes, links = _common("a yellow cartoon face with a round mouth talking in front of a pale green wall",
                           "a high buzzing voice chanting syllables, over a faint hiss", "magemu sope sibu",
                           "audio_driven", "audio_to_video", {"sync_video_scale": AUDIO_DRIVEN_SYNC})
    nodes += [
        _node("load", "LoadAudio", "inputs", 750, [380, 140], widgets={"audio": SPEECH_WAV}),
        _node("cond", "HarmonyAudioCondition", "cond", 570, [420, 130],
              widgets={"role": "drive", "start_seconds": 0.0, "max_seconds": 0.0}),
    ]
    links += [["codecs", "codecs", "cond", "codecs"], ["load", "AUDIO", "cond", "audio"],
              ["cond", "audio_cond", "sampler", "audio_cond"]]
    note = _note(f"Audio-driven video: the loaded soundtrack is kept as is and only the video is generated "
                 f"(mode audio_driven); SyncCFG on the video side ({AUDIO_DRIVEN_SYNC:g}) makes the motion follow it. "
                 f"Load any speech or sound file (upload it in Load Audio); the synthetic example {SPEECH_WAV} "
                 f"{SHIPPED}.")
    return _spec("harmony_audio_to_video", [note, *nodes], links)


def video_to_audio() -> dict:
    clink = "the red triangle lands with a mid-pitched bright metallic clink, over a faint hiss"
    nodes, links = _common("a red triangle bouncing on a dark green floor in front of a grey wall", clink, "",
                           "video_driven", "video_to_audio",
                           {"sync_audio_scale": VIDEO_DRIVEN_SYNC, "rescale_audio": 0.0})
    nodes += [
        _node("load", "LoadVideo", "inputs", 750, [380, 420], widgets={"file": IMPACTS_MP4}),
        _node("cond", "HarmonyVideoCondition", "cond", 570, [420, 90], widgets={"fps": 25.0}),
    ]
    links += [["codecs", "codecs", "cond", "codecs"], ["load", "VIDEO", "cond", "video"],
              ["cond", "video_cond", "sampler", "video_cond"]]
    note = _note(f"Video-driven audio: the loaded frames are kept as is and a soundtrack is generated for "
                 f"them (mode video_driven). Size, length and frame rate come from the video. SyncCFG on the "
                 f"audio side ({VIDEO_DRIVEN_SYNC:g}) makes the sounds follow the picture; CFG-rescale stays off "
                 f"(rescale_audio 0) so they keep the loudness guidance gives them. "
                 f"Upload your own clip in Load Video; the synthetic example {IMPACTS_MP4} {SHIPPED}.")
    return _spec("harmony_video_to_audio", [note, *nodes], links)


def image_to_av() -> dict:
    nodes, links = _common("a blue square bouncing on a dark grey floor in front of a pale blue wall",
                           "the blue square lands with a low dull knock, over a faint hiss", "", "joint",
                           "image_to_av")
    nodes += [
        _node("load", "LoadImage", "inputs", 750, [380, 420], widgets={"image": FIRST_FRAME_PNG}),
        _node("ref", "HarmonyReferenceImage", "cond", 570, [420, 130],
              widgets={"width": 64, "height": 64, "crop": "center"}),
    ]
    links += [["codecs", "codecs", "ref", "codecs"], ["load", "IMAGE", "ref", "image"],
              ["ref", "reference", "sampler", "reference"]]
    note = _note(f"Image + text -> audio + video: the image becomes the first frame, the captions say what "
                 f"happens and how it sounds (joint mode). Upload your own picture in Load Image; the synthetic "
                 f"example {FIRST_FRAME_PNG} {SHIPPED}.")
    return _spec("harmony_image_to_audio_video", [note, *nodes], links)


def best_of_takes() -> dict:
    """Joint text -> audio + video, TAKES seeds one after another, scored by sync; the best is saved."""
    nodes, links = _common(
        "a green square and an orange circle bouncing on a dark grey floor in front of a pale yellow wall",
        "the green square lands with a low dull knock; the orange circle lands with a mid-pitched ringing ping, "
        "over a faint hiss", "", "joint", "best_of_takes")
    nodes = [n for n in nodes if n["key"] not in ("sampler", "decode")]
    save = next(n for n in nodes if n["key"] == "save")
    save["pos"], save["size"] = [X["output"], 80], [400, 440]  # room for the A+V preview above the plot
    nodes += [
        _node("takes", "HarmonyBestOfTakes", "sample", 80, [330, 620],
              widgets={"mode": "joint", "seed": SEED, "control_after_generate": "fixed", "takes": TAKES}),
        _node("plot", "PreviewImage", "output", 600, [400, 240], title="Sync of the best take"),
        _node("report", "PreviewAny", "scores", 620, [420, 220], title="Scores of all takes"),
    ]
    links = [link for link in links if "sampler" not in (link[0], link[2]) and "decode" not in (link[0], link[2])]
    links += [["model", "model", "takes", "model"], ["codecs", "codecs", "takes", "codecs"],
              ["text", "positive", "takes", "positive"], ["text", "negative", "takes", "negative"],
              ["takes", "images", "save", "images"], ["takes", "audio", "save", "audio"],
              ["takes", "fps", "save", "fps"], ["takes", "plot", "plot", "images"],
              ["takes", "report", "report", "source"]]
    note = _note(f"Best of {TAKES} takes: the same captions with {TAKES} seeds, generated one after another "
                 "(memory of one take), each scored by how well its sounds land on its motion (Harmony Sync "
                 "Score). The best take is saved; the plot shows its motion (orange) against its sound onsets "
                 "(blue), and the table ranks every take.")
    return _spec("best_of_takes", [note, *nodes], links)


def all_specs() -> list[dict]:
    """Every bundled workflow: the demo model's, then those for the user's models (USER_MODEL_WORKFLOWS)."""
    return [text_to_av(), audio_to_video(), video_to_audio(), image_to_av(), best_of_takes(), *user_model_specs()]


__all__ = ["USER_MODEL_WORKFLOWS", "all_specs"]
