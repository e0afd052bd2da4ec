"""Specs of the bundled workflows for models the user brings (see workflow_specs.py for the format).

UniAVGen (HF MCG-NJU/UniAVGen, docs/uniavgen.md), one workflow per task, each a HarmonySampler mode: talking
head from image + text (AVG = joint), the same in a given voice (RAVG = joint + a reference voice), lip-sync to a
given speech (A2V = audio_driven) and a soundtrack for a given video (V2A = video_driven). They name the files a
user has: the download in models/harmony/UniAVGen/ (its vocoder folder inside it), ComfyUI's Wan2.2 VAE and umT5.
tests/e2e/test_e2e_uniavgen.py runs them on tiny random files of those names.

LTX-2 lip-sync with HarmonySyncCFGGuider (ComfyUI's native LTX-2 nodes; the user's LTX-2 files).

Node titles: the editor saves a title only when it differs from its own default, and for a few core nodes its
default ("LTXVConcatAVLatent") is not the display name /object_info gives ("Concat AV Latent"); those get the
display name as an explicit title, so the editor's prompt and our conversion agree.
"""
from __future__ import annotations

import uuid

from workflow_inputs import FACE_PNG, IMPACTS_MP4, SPEECH_WAV

UNIAVGEN_CKPT = "UniAVGen/"                                 # models/harmony/UniAVGen (the HF download)
UNIAVGEN_VOCODER = "UniAVGen/code2wav_bigvgan_model/"       # its vocoder folder
WAN_VAE = "wan2.2_vae.safetensors"                          # models/vae (ComfyUI's Wan2.2 repackage)
UMT5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"             # models/text_encoders (ComfyUI's Wan umT5)
FROM_MODEL = "from model (demo)"
SEED = 2025                                                 # the reference's seed
SPEECH_TRANSCRIPT = "magemu sope sibu"                      # what the example speech chants
FACE = ("An orange cartoon face with two black eyes and a dark red mouth talks to the camera in front of a beige "
        "wall. The mouth opens and closes with every syllable, the head stays still. Static camera.")
COLUMNS = {"inputs": 20, "media": 460, "cond": 900, "sample": 1340, "output": 1780}
TITLES = {"inputs": "Model and inputs", "media": "Your media", "cond": "Conditioning", "sample": "Sampling",
          "output": "Output"}
SHIPPED = "ships with the pack (copied into ComfyUI's input folder)"
FILES = (f"Files (not shipped): the HF download MCG-NJU/UniAVGen in models/harmony/UniAVGen/ (its "
         f"code2wav_bigvgan_model/ is the vocoder), ComfyUI's {WAN_VAE} in models/vae and {UMT5} in "
         f"models/text_encoders. Weights in bf16: about 14 GB; see docs/uniavgen.md.")
USER_MODEL_WORKFLOWS = ("ltx2_synccfg_lipsync", "uniavgen_talking_head", "uniavgen_talking_head_voice",
                        "uniavgen_lipsync", "uniavgen_foley")


def _node(key: str, type_: str, group: str, y: int, size: list, **extra) -> dict:
    return {"key": key, "type": type_, "pos": [COLUMNS[group], y], "size": size, "group": group, **extra}


def _spec(name: str, nodes: list, links: list, titles: dict[str, str]) -> dict:
    groups = [{"title": title, "members": [n["key"] for n in nodes if n.get("group") == key]}
              for key, title in titles.items() if any(n.get("group") == key for n in nodes)]
    return {"name": name, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"harmony-av/workflows/{name}")),
            "nodes": nodes, "links": links, "groups": groups, "userFiles": True}


def _uniavgen(name: str, note: str, mode: str, transcript: str, caption: str, extra: list,
              extra_links: list) -> dict:
    """Loaders, umT5 captions (positive + the empty negative), HarmonyConditioning, sampler, decode, save."""
    sampler = {"mode": mode, "width": 1312, "height": 736, "frames": 81, "fps": 16.0, "steps": 50, "shift": 5.0,
               "seed": SEED, "control_after_generate": "fixed", "solver": "euler", "sync_video_scale": 3.0,
               "sync_audio_scale": 2.0, "text_video_scale": 3.0, "text_audio_scale": 2.0, "guidance": "default",
               "rescale_video": 0.0, "rescale_audio": 0.0}   # UniAVGen's own guidance, as its reference samples
    nodes = [
        _node("note", "Note", "inputs", 80, [400, 200], title="About this workflow",
              widgets={"text": f"{note}\n\n{FILES}"}),
        _node("model", "HarmonyModelLoader", "inputs", 320, [400, 180],
              widgets={"ckpt_name": UNIAVGEN_CKPT, "weight_dtype": "bf16", "attention": "sdpa"}),
        _node("codecs", "HarmonyCodecLoader", "inputs", 540, [400, 130],
              widgets={"video_vae": WAN_VAE, "audio_vae": FROM_MODEL, "vocoder": UNIAVGEN_VOCODER}),
        _node("clip", "CLIPLoader", "inputs", 710, [400, 110], title="Load umT5 (CLIPLoader, type wan)",
              widgets={"clip_name": UMT5, "type": "wan", "device": "default"}),
        _node("pos", "CLIPTextEncode", "cond", 80, [400, 170], title="Video caption (umT5)",
              widgets={"text": caption}),
        _node("neg", "CLIPTextEncode", "cond", 290, [400, 110], title="Negative caption (empty, as UniAVGen)",
              widgets={"text": ""}),
        _node("text", "HarmonyConditioning", "cond", 440, [400, 200],
              widgets={"transcript": transcript, "language": "en"}),
        # Sampling and Output start lower: the editor's "errors found" panel covers the top right while the user's
        # files are missing (build_workflows.js keeps every spec with userFiles clear of it)
        _node("sampler", "HarmonySampler", "sample", 300, [400, 700], widgets=sampler),
        _node("decode", "HarmonyDecode", "output", 320, [300, 90]),
        _node("save", "HarmonySaveAV", "output", 470, [400, 120],
              widgets={"filename_prefix": f"uniavgen/{name.removeprefix('uniavgen_')}"}),
        *extra,
    ]
    links = [
        ["model", "model", "codecs", "model"], ["model", "model", "sampler", "model"],
        ["codecs", "codecs", "sampler", "codecs"], ["codecs", "codecs", "decode", "codecs"],
        ["clip", "CLIP", "pos", "clip"], ["clip", "CLIP", "neg", "clip"],
        ["pos", "CONDITIONING", "text", "video"], ["text", "conditioning", "sampler", "positive"],
        ["neg", "CONDITIONING", "sampler", "negative"], ["sampler", "latent", "decode", "latent"],
        ["decode", "images", "save", "images"], ["decode", "audio", "save", "audio"],
        ["decode", "fps", "save", "fps"], *extra_links,
    ]
    return _spec(name, nodes, links, TITLES)


def _face() -> tuple[list, list]:
    nodes = [_node("image", "LoadImage", "media", 80, [400, 380], widgets={"image": FACE_PNG}),
             _node("ref", "HarmonyReferenceImage", "cond", 680, [400, 160],
                   widgets={"width": 1312, "height": 736, "crop": "center"})]
    links = [["codecs", "codecs", "ref", "codecs"], ["image", "IMAGE", "ref", "image"],
             ["ref", "reference", "sampler", "reference"]]
    return nodes, links


def _speech(role: str, transcript: str) -> tuple[list, list]:
    nodes = [_node("audio", "LoadAudio", "media", 500, [400, 140], widgets={"audio": SPEECH_WAV}),
             _node("voice", "HarmonyAudioCondition", "cond", 880, [400, 230],
                   widgets={"role": role, "start_seconds": 0.0, "max_seconds": 0.0, "transcript": transcript})]
    links = [["codecs", "codecs", "voice", "codecs"], ["audio", "AUDIO", "voice", "audio"],
             ["voice", "audio_cond", "sampler", "audio_cond"]]
    return nodes, links


def talking_head() -> dict:
    nodes, links = _face()
    note = (f"UniAVGen talking head (its AVG task, mode joint): the face image is the first frame; the video "
            f"caption says what is seen, the transcript what is said; video and speech are generated together "
            f"(81 frames at 16 fps, 5.06 s, 1312x736). Guidance 'default' is UniAVGen's MA-CFG; 'synccfg' runs "
            f"Harmony's SyncCFG on the same weights. The example face {FACE_PNG} {SHIPPED}.")
    return _uniavgen("uniavgen_talking_head", note, "joint",
                     "Hello, and welcome back. Today it is sunny and warm.", FACE, nodes, links)


def talking_head_voice() -> dict:
    face, face_links = _face()
    voice, voice_links = _speech("reference_voice", SPEECH_TRANSCRIPT)
    note = (f"UniAVGen talking head in a given voice (its RAVG task: mode joint + a reference voice). The voice "
            f"sample and what it says (HarmonyAudioCondition's transcript) go in front of the new speech. The "
            f"examples {FACE_PNG} and {SPEECH_WAV} {SHIPPED}.")
    return _uniavgen("uniavgen_talking_head_voice", note, "joint", "Hello, and welcome back.", FACE,
                     face + voice, face_links + voice_links)


def lipsync() -> dict:
    face, face_links = _face()
    speech, speech_links = _speech("drive", "")
    note = (f"UniAVGen lip-sync (its A2V task, mode audio_driven): the speech is kept as is and only the video "
            f"is generated; the transcript says what the speech says. The speech must not be longer than the "
            f"clip (5.06 s); a shorter one gets its tail generated. The examples {FACE_PNG} and {SPEECH_WAV} "
            f"{SHIPPED}.")
    return _uniavgen("uniavgen_lipsync", note, "audio_driven", SPEECH_TRANSCRIPT, FACE, face + speech,
                     face_links + speech_links)


def foley() -> dict:
    nodes = [_node("video", "LoadVideo", "media", 80, [400, 420], widgets={"file": IMPACTS_MP4}),
             _node("frames", "HarmonyVideoCondition", "cond", 680, [400, 110], widgets={"fps": 25.0})]
    links = [["codecs", "codecs", "frames", "codecs"], ["video", "VIDEO", "frames", "video"],
             ["frames", "video_cond", "sampler", "video_cond"]]
    note = (f"UniAVGen soundtrack for a given video (its V2A task, mode video_driven): the frames are kept and "
            f"the audio is generated; size, length (at most 81 frames) and frame rate come from the video, its "
            f"first frame is the reference. UniAVGen was trained on speech: other sounds are outside its "
            f"training. The example {IMPACTS_MP4} {SHIPPED}.")
    caption = ("A red triangle bounces on a dark green floor in front of a grey wall; each landing makes a bright "
               "metallic clink.")
    return _uniavgen("uniavgen_foley", note, "video_driven", "", caption, nodes, links)


def _ltx_node(key: str, type_: str, group: str, x: int, y: int, size: list, **extra) -> dict:
    return {"key": key, "type": type_, "pos": [x, y], "size": size, "group": group, **extra}


LTX_NOTE = (
    "LTX-2 lip-sync to a supplied voice, with Harmony's SyncCFG (HarmonySyncCFGGuider in place of CFGGuider).\n\n"
    "Needs your LTX-2 files (not shipped with this pack; the files of ComfyUI's LTX-2 templates):\n"
    "- models/checkpoints/ltx-2-19b-dev-fp8.safetensors (model, video VAE and audio VAE)\n"
    "- models/text_encoders/gemma_3_12B_it_fp4_mixed.safetensors\n"
    "Pick your copies in the three loaders (any LTX-2.x dev checkpoint works; distilled ones are not meant for "
    "guidance).\n\nThe voice (Load Audio) is kept as is: a zero noise mask freezes the audio latent and only the "
    "video is generated from the face (Load Image). Each step the guider also runs the model with a mute "
    "soundtrack (silence encoded by the audio VAE) and pushes the motion away from it (video_scale 3), on top of "
    "text CFG (cfg 4): 2 model calls per step instead of 1. The example face and voice ship with the pack; use "
    "your own and set length = voice seconds x 25 + 1 (8k+1 frames) and the trim duration to match.")
LTX_CKPT = "ltx-2-19b-dev-fp8.safetensors"


def ltx2_lipsync() -> dict:
    n = _ltx_node
    nodes = [
        n("note", "Note", "inputs", 20, 80, [400, 220], title="About this workflow", widgets={"text": LTX_NOTE}),
        n("ckpt", "CheckpointLoaderSimple", "inputs", 20, 340, [400, 100], widgets={"ckpt_name": LTX_CKPT}),
        n("gemma", "LTXAVTextEncoderLoader", "inputs", 20, 480, [400, 130],
          widgets={"text_encoder": "gemma_3_12B_it_fp4_mixed.safetensors", "ckpt_name": LTX_CKPT,
                   "device": "default"}),
        n("audio_vae", "LTXVAudioVAELoader", "inputs", 20, 650, [400, 80], widgets={"ckpt_name": LTX_CKPT}),
        n("face", "LoadImage", "inputs", 20, 770, [400, 420], widgets={"image": FACE_PNG}),
        n("pos", "CLIPTextEncode", "cond", 460, 80, [400, 220], title="Positive prompt", widgets={"text": FACE}),
        n("neg", "CLIPTextEncode", "cond", 460, 340, [400, 160], title="Negative prompt",
          widgets={"text": "blurry, distorted face, frozen mouth, jitter, flicker, watermark, text"}),
        n("ltxcond", "LTXVConditioning", "cond", 460, 540, [400, 80], widgets={"frame_rate": 25}),
        n("voice", "LoadAudio", "latents", 900, 80, [400, 140], widgets={"audio": SPEECH_WAV}),
        n("trim", "TrimAudioDuration", "latents", 900, 260, [400, 90],
          widgets={"start_index": 0, "duration": 3.24}),
        n("encode", "LTXVAudioVAEEncode", "latents", 900, 390, [400, 60]),
        n("mask", "SolidMask", "latents", 900, 490, [400, 110], title="Zero mask (keep the voice)",
          widgets={"value": 0, "width": 512, "height": 512}),
        n("masked", "SetLatentNoiseMask", "latents", 900, 640, [400, 60]),
        n("empty", "EmptyLTXVLatentVideo", "latents", 900, 740, [400, 140],
          widgets={"width": 768, "height": 512, "length": 81, "batch_size": 1}),
        n("i2v", "LTXVImgToVideoInplace", "latents", 900, 920, [400, 110], widgets={"strength": 1, "bypass": False}),
        n("concat", "LTXVConcatAVLatent", "latents", 900, 1070, [400, 60], title="Concat AV Latent"),
        n("guider", "HarmonySyncCFGGuider", "sample", 1340, 80, [400, 300],
          widgets={"video_scale": 3, "audio_scale": 2, "cfg": 4, "sync_start": 0, "sync_end": 1}),
        n("noise", "RandomNoise", "sample", 1340, 420, [400, 90],
          widgets={"noise_seed": 42, "control_after_generate": "fixed"}),
        n("select", "KSamplerSelect", "sample", 1340, 550, [400, 60], widgets={"sampler_name": "euler"}),
        n("sigmas", "LTXVScheduler", "sample", 1340, 650, [400, 170],
          widgets={"steps": 20, "max_shift": 2.05, "base_shift": 0.95, "stretch": True, "terminal": 0.1}),
        n("sampler", "SamplerCustomAdvanced", "sample", 1340, 860, [400, 130]),
        # the Output column starts lower: at the top right the editor shows its "errors found" panel over the
        # canvas while the LTX-2 files are missing (build_workflows.js keeps specs with userFiles clear of it)
        n("separate", "LTXVSeparateAVLatent", "output", 1780, 300, [400, 60], title="Separate AV Latent"),
        n("decode", "VAEDecodeTiled", "output", 1780, 400, [400, 150],
          widgets={"tile_size": 512, "overlap": 64, "temporal_size": 64, "temporal_overlap": 8}),
        n("save", "HarmonySaveAV", "output", 1780, 590, [400, 130],
          widgets={"fps": 25, "filename_prefix": "harmony/ltx2_lipsync"}),
    ]
    links = [
        ["gemma", "CLIP", "pos", "clip"], ["gemma", "CLIP", "neg", "clip"],
        ["pos", "CONDITIONING", "ltxcond", "positive"], ["neg", "CONDITIONING", "ltxcond", "negative"],
        ["voice", "AUDIO", "trim", "audio"], ["trim", "AUDIO", "encode", "audio"],
        ["audio_vae", "Audio VAE", "encode", "audio_vae"], ["encode", "Audio Latent", "masked", "samples"],
        ["mask", "MASK", "masked", "mask"], ["ckpt", "VAE", "i2v", "vae"], ["face", "IMAGE", "i2v", "image"],
        ["empty", "LATENT", "i2v", "latent"], ["i2v", "latent", "concat", "video_latent"],
        ["masked", "LATENT", "concat", "audio_latent"], ["ckpt", "MODEL", "guider", "model"],
        ["ltxcond", "positive", "guider", "positive"], ["ltxcond", "negative", "guider", "negative"],
        ["audio_vae", "Audio VAE", "guider", "audio_vae"], ["ckpt", "VAE", "guider", "vae"],
        ["face", "IMAGE", "guider", "image"], ["noise", "NOISE", "sampler", "noise"],
        ["guider", "guider", "sampler", "guider"], ["select", "SAMPLER", "sampler", "sampler"],
        ["sigmas", "SIGMAS", "sampler", "sigmas"], ["concat", "latent", "sampler", "latent_image"],
        ["sampler", "output", "separate", "av_latent"], ["separate", "video_latent", "decode", "samples"],
        ["ckpt", "VAE", "decode", "vae"], ["decode", "IMAGE", "save", "images"], ["trim", "AUDIO", "save", "audio"],
    ]
    titles = {"inputs": "Model and inputs", "cond": "Conditioning", "latents": "Voice (kept) and video latents",
              "sample": "Sampling", "output": "Output"}
    return _spec("ltx2_synccfg_lipsync", nodes, links, titles)


def user_model_specs() -> list[dict]:
    return [ltx2_lipsync(), talking_head(), talking_head_voice(), lipsync(), foley()]
