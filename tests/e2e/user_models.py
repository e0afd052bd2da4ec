"""What the e2e ComfyUI gets besides the pack: the model files a UniAVGen user has, and a test-only text encoder.

Model files (written into the session's work folder, added to ComfyUI by its extra_model_paths.yaml): tiny random
ones under exactly the names the UniAVGen workflows choose (tests/nodes/uniavgen_files.py): the sharded download
`models/harmony/UniAVGen/` with its vocoder folder `code2wav_bigvgan_model/`, `models/vae/wan2.2_vae.safetensors`,
and one more single-file checkpoint under ComfyUI's `model.diffusion_model.` prefix.

Text encoder: a real UniAVGen reads umT5-XXL captions (4096 wide, CLIPLoader type "wan" + CLIPTextEncode), which
cannot be built here and do not fit the tiny checkpoint (32 wide, 16 long). A custom node package written into the
session's custom_nodes (`TEXT_PACK`, whitelisted with the pack) has one node, `TEXT_NODE`, that turns a text
into CONDITIONING of that size shaped as ComfyUI's umT5 output is (comfy/text_encoders/wan.py: min_length 512,
masked rows zeroed): one seeded random row per word (at most 16), then zero rows up to 16. `swap_text_encoders`
puts it in place of exactly the CLIPLoader and CLIPTextEncode nodes of an API prompt (same ids, same texts, so
every link into the rest of the graph stays as shipped).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nodes"))

import uniavgen_files as files  # noqa: E402  (tests/nodes, after the path insert)

TEXT_PACK = "harmony_e2e_tiny_umt5"
TEXT_NODE = "E2ETinyUMT5TextEncode"
SINGLE_FILE = "uniavgen_one_file.safetensors"   # models/harmony: one file, model.diffusion_model.-prefixed
TEXT_ENCODER_NODES = ("CLIPLoader", "CLIPTextEncode")

_PACK_SOURCE = f'''"""Test-only node (tests/e2e/user_models.py): stands in for umT5 at the tiny checkpoint's caption width."""
import hashlib

import torch


class TinyUMT5TextEncode:
    DESCRIPTION = "Test-only: a text -> CONDITIONING [1, {files.TEXT_LEN}, {files.TEXT_DIM}] (seeded by the text)."
    CATEGORY = "testing"
    FUNCTION = "encode"
    RETURN_TYPES = ("CONDITIONING",)

    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{"text": ("STRING", {{"multiline": True}})}}}}

    def encode(self, text):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        generator = torch.Generator().manual_seed(seed)
        words = min(len(text.split()), {files.TEXT_LEN})
        context = torch.zeros(1, {files.TEXT_LEN}, {files.TEXT_DIM})
        context[:, :words] = torch.randn(1, words, {files.TEXT_DIM}, generator=generator)
        return ([[context, {{}}]],)


NODE_CLASS_MAPPINGS = {{"{TEXT_NODE}": TinyUMT5TextEncode}}
'''


def write_models(work: Path) -> dict[str, Path]:
    """The user's model folders under `work/models`: {ComfyUI folder name: path} for extra_model_paths.yaml."""
    models = work / "models"
    if not (models / "harmony" / files.CHECKPOINT).is_dir():
        files.write_user_models(models)
        files.write_single(models / "harmony" / SINGLE_FILE)
    return {"harmony": models / "harmony", "vae": models / "vae"}


def write_text_pack(custom_nodes: Path) -> str:
    """The test-only text encoder package in `custom_nodes`; returns its folder name (to whitelist)."""
    folder = custom_nodes / TEXT_PACK
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text(_PACK_SOURCE)
    return TEXT_PACK


def swap_text_encoders(prompt: dict) -> dict:
    """`prompt` (API format) with CLIPLoader removed and each CLIPTextEncode replaced by TEXT_NODE on its text."""
    swapped = {}
    for node_id, entry in prompt.items():
        if entry["class_type"] == "CLIPLoader":
            continue
        if entry["class_type"] == "CLIPTextEncode":
            entry = {"class_type": TEXT_NODE, "inputs": {"text": entry["inputs"]["text"]},
                     "_meta": {"title": f"{entry['_meta']['title']} (tiny umT5 stand-in)"}}
        swapped[node_id] = entry
    return swapped
