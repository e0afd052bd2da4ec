"""Every node's V3 schema: registration via comfy_entrypoint, ids, categories, tooltips, the spec sockets."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import folder_paths
import pytest
from comfy_api.latest import ComfyExtension

from node_harness import REPO, pack_module

SAMPLER_INPUTS = {  # HarmonySampler's inputs; HarmonyBestOfTakes has `takes` where this has `batch`
    "model": "MODEL",
    "codecs": "HARMONY_CODECS",
    "positive": "CONDITIONING",
    "negative": "CONDITIONING",
    "mode": "COMBO",
    "width": "INT",
    "height": "INT",
    "frames": "INT",
    "fps": "FLOAT",
    "steps": "INT",
    "shift": "FLOAT",
    "seed": "INT",
    "solver": "COMBO",
    "sync_video_scale": "FLOAT",
    "sync_audio_scale": "FLOAT",
    "sync_start": "FLOAT",
    "sync_end": "FLOAT",
    "text_video_scale": "FLOAT",
    "text_audio_scale": "FLOAT",
    "batch": "INT",
    "audio_cond": "HARMONY_AUDIO",
    "video_cond": "HARMONY_VIDEO",
    "reference": "HARMONY_IMAGE",
    "guidance": "COMBO",
    "rescale_video": "FLOAT",
    "rescale_audio": "FLOAT",
}

SPEC = {  # node_id: (category, {input: type}, [output types]) — the contract with workflows/ and web/
    "HarmonyModelLoader": (
        "Harmony/loaders",
        {"ckpt_name": "COMBO", "weight_dtype": "COMBO", "attention": "COMBO", "fp8": "COMBO", "swap_blocks": "INT",
         "compile": "BOOLEAN"},
        ["MODEL"],
    ),
    "HarmonyCodecLoader": (
        "Harmony/loaders",
        {"model": "MODEL", "video_vae": "COMBO", "audio_vae": "COMBO", "vocoder": "COMBO", "vae": "VAE"},
        ["HARMONY_CODECS"],
    ),
    "HarmonyTextEncode": (
        "Harmony/conditioning",
        {
            "model": "MODEL",
            "video_caption": "STRING",
            "audio_caption": "STRING",
            "transcript": "STRING",
            "negative": "STRING",
        },
        ["CONDITIONING", "CONDITIONING"],
    ),
    "HarmonyConditioning": (
        "Harmony/conditioning",
        {"video": "CONDITIONING", "audio": "CONDITIONING", "transcript": "STRING", "language": "COMBO"},
        ["CONDITIONING"],
    ),
    "HarmonyAudioCondition": (
        "Harmony/conditioning",
        {
            "codecs": "HARMONY_CODECS",
            "audio": "AUDIO",
            "role": "COMBO",
            "start_seconds": "FLOAT",
            "max_seconds": "FLOAT",
            "transcript": "STRING",
        },
        ["HARMONY_AUDIO"],
    ),
    "HarmonyVideoCondition": (
        "Harmony/conditioning",
        {"codecs": "HARMONY_CODECS", "images": "IMAGE", "video": "VIDEO", "fps": "FLOAT"},
        ["HARMONY_VIDEO"],
    ),
    "HarmonyReferenceImage": (
        "Harmony/conditioning",
        {"codecs": "HARMONY_CODECS", "image": "IMAGE", "width": "INT", "height": "INT", "crop": "COMBO"},
        ["HARMONY_IMAGE"],
    ),
    "HarmonySampler": (
        "Harmony/sampling",
        SAMPLER_INPUTS,
        ["LATENT"],
    ),
    "HarmonyBestOfTakes": (
        "Harmony/sampling",
        {("takes" if k == "batch" else k): v for k, v in SAMPLER_INPUTS.items()},  # takes where batch is
        ["IMAGE", "AUDIO", "FLOAT", "IMAGE", "AUDIO", "STRING", "IMAGE"],
    ),
    "HarmonyDecode": (
        "Harmony/media",
        {"codecs": "HARMONY_CODECS", "latent": "LATENT"},
        ["IMAGE", "AUDIO", "FLOAT"],
    ),
    "HarmonyMux": ("Harmony/media", {"images": "IMAGE", "audio": "AUDIO", "fps": "FLOAT"}, ["VIDEO"]),
    "HarmonySaveAV": (
        "Harmony/media",
        {"images": "IMAGE", "audio": "AUDIO", "fps": "FLOAT", "filename_prefix": "STRING"},
        [],
    ),
    "HarmonySyncScore": (
        "Harmony/analysis",
        {"video": "VIDEO", "images": "IMAGE", "audio": "AUDIO", "fps": "FLOAT", "max_lag": "INT"},
        ["FLOAT", "FLOAT", "STRING", "IMAGE"],
    ),
    "HarmonySyncCFGGuider": (
        "Harmony/sampling",
        {
            "model": "MODEL",
            "positive": "CONDITIONING",
            "negative": "CONDITIONING",
            "video_scale": "FLOAT",
            "audio_scale": "FLOAT",
            "cfg": "FLOAT",
            "sync_start": "FLOAT",
            "sync_end": "FLOAT",
            "audio_vae": "VAE",
            "vae": "VAE",
            "image": "IMAGE",
        },
        ["GUIDER"],
    ),
}
OPTIONAL = {
    ("HarmonyModelLoader", "fp8"),   # the memory kit: optional so saved API prompts stay valid
    ("HarmonyModelLoader", "swap_blocks"),
    ("HarmonyModelLoader", "compile"),
    ("HarmonyCodecLoader", "vae"),
    ("HarmonyConditioning", "audio"),
    ("HarmonyConditioning", "language"),
    ("HarmonyAudioCondition", "transcript"),
    ("HarmonyVideoCondition", "images"),
    ("HarmonyVideoCondition", "video"),
    ("HarmonySampler", "negative"),
    ("HarmonySampler", "audio_cond"),
    ("HarmonySampler", "video_cond"),
    ("HarmonySampler", "reference"),
    ("HarmonySampler", "guidance"),
    ("HarmonySampler", "rescale_video"),  # CFG-rescale: optional, after guidance, so saved workflows keep order
    ("HarmonySampler", "rescale_audio"),
    ("HarmonyBestOfTakes", "negative"),
    ("HarmonyBestOfTakes", "audio_cond"),
    ("HarmonyBestOfTakes", "video_cond"),
    ("HarmonyBestOfTakes", "reference"),
    ("HarmonyBestOfTakes", "guidance"),
    ("HarmonyBestOfTakes", "rescale_video"),
    ("HarmonyBestOfTakes", "rescale_audio"),
    ("HarmonySyncScore", "video"),
    ("HarmonySyncScore", "images"),
    ("HarmonySyncScore", "audio"),
    ("HarmonySyncCFGGuider", "audio_vae"),
    ("HarmonySyncCFGGuider", "vae"),
    ("HarmonySyncCFGGuider", "image"),
}


@pytest.fixture
def node_list(pack):
    extension = asyncio.run(pack.comfy_entrypoint())
    assert isinstance(extension, ComfyExtension)
    asyncio.run(extension.on_load())
    return asyncio.run(extension.get_node_list())


def test_entrypoint_lists_every_spec_node(node_list):
    ids = [cls.GET_SCHEMA().node_id for cls in node_list]
    assert ids == list(SPEC)
    assert len(set(ids)) == len(ids)


def test_importing_the_pack_is_light_and_exports_only_web_dir_and_entrypoint():
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('p', {str(REPO / '__init__.py')!r}, "
        f"submodule_search_locations=[{str(REPO)!r}]); "
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
        "print(sorted(k for k in vars(m) if not k.startswith('__')), m.WEB_DIRECTORY, "
        "any(n.split('.')[0] in ('torch', 'comfy_api', 'comfy') for n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['WEB_DIRECTORY',", "'comfy_entrypoint']", "./web", "False"]


def test_schemas_match_the_spec_and_every_input_has_a_tooltip(node_list):
    for cls in node_list:
        info = cls.GET_NODE_INFO_V1()
        category, inputs, outputs = SPEC[info["name"]]
        assert info["category"] == category and info["display_name"]
        assert info["output"] == outputs
        seen = {}
        for kind in ("required", "optional"):
            for name, (io_type, options) in info["input"].get(kind, {}).items():
                seen[name] = io_type
                assert options.get("tooltip"), f"{info['name']}.{name} has no tooltip"
                assert ((info["name"], name) in OPTIONAL) == (kind == "optional"), (info["name"], name)
        assert seen == inputs, info["name"]
        assert all(info["output_tooltips"]), info["name"]


def test_widgets_defaults_lie_in_their_ranges_and_combos(node_list):
    for cls in node_list:
        for kind in ("required", "optional"):
            for name, (io_type, opt) in cls.GET_NODE_INFO_V1()["input"].get(kind, {}).items():
                if io_type in ("INT", "FLOAT"):
                    assert opt["min"] <= opt["default"] <= opt["max"], name
                if io_type == "COMBO":
                    assert opt["default"] in opt["options"], name


def test_seed_has_control_after_generate_and_save_is_an_output_node(node_list):
    by_id = {cls.GET_SCHEMA().node_id: cls.GET_NODE_INFO_V1() for cls in node_list}
    assert by_id["HarmonySampler"]["input"]["required"]["seed"][1]["control_after_generate"] is True
    save = by_id["HarmonySaveAV"]
    assert save["output_node"] is True
    assert set(save["input"]["hidden"]) == {"prompt", "extra_pnginfo"}
    assert by_id["HarmonyDecode"]["output_is_list"] == [True, True, True]


def test_demo_model_offered_with_empty_folder_and_files_listed(node_list, comfy_env):
    loader = node_list[0]
    options = loader.GET_NODE_INFO_V1()["input"]["required"]["ckpt_name"][1]["options"]
    assert options == ["harmony_demo.safetensors (bundled)"]
    (comfy_env / "models" / "harmony" / "mine.safetensors").write_bytes(b"")
    (comfy_env / "models" / "harmony" / "notes.txt").write_text("not a model")
    options = loader.GET_NODE_INFO_V1()["input"]["required"]["ckpt_name"][1]["options"]
    assert options == ["harmony_demo.safetensors (bundled)", "mine.safetensors"]


def test_extra_model_paths_harmony_folder_is_honoured(pack, tmp_path):
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    (extra / "big.safetensors").write_bytes(b"")
    folder_paths.add_model_folder_path("harmony", str(extra))  # what extra_model_paths.yaml does at startup
    paths = pack_module("nodes.adapters.paths")
    assert paths.harmony_files() == ["big.safetensors"]
    assert folder_paths.get_folder_paths("harmony")[0] == str(extra)
    assert folder_paths.folder_names_and_paths["harmony"][1] == {".safetensors"}
