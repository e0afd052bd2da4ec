"""The bundled workflows (workflows/*.json + .jpg) against the node schemas: node types, links, widget values
(count, order, the control_after_generate value after the seed, ranges, combo choices), API conversion; the
UniAVGen ones wired for their tasks."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import av
import numpy as np
import pytest

from workflow_graph import (CONTROL, CONTROL_VALUES, input_specs, is_widget, to_api, validate_workflow,
                            widget_layout)
from workflow_inputs import EXAMPLE_INPUTS, EXAMPLES_DIR

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
EXPECTED = {  # file stem: (sampling node, its mode, node feeding its condition socket, socket)
    "harmony_text_to_audio_video": ("HarmonySampler", "joint", None, None),
    "harmony_audio_to_video": ("HarmonySampler", "audio_driven", "HarmonyAudioCondition", "audio_cond"),
    "harmony_video_to_audio": ("HarmonySampler", "video_driven", "HarmonyVideoCondition", "video_cond"),
    "harmony_image_to_audio_video": ("HarmonySampler", "joint", "HarmonyReferenceImage", "reference"),
    "best_of_takes": ("HarmonyBestOfTakes", "joint", None, None),
}
LOADERS = {"LoadAudio": "audio", "LoadVideo": "file", "LoadImage": "image"}
# workflows for models the user brings (not run here, so no thumbnail from a run); run or checked against a live
# ComfyUI by tests/e2e/test_e2e_uniavgen.py and test_e2e_ltx_guider.py
UNIAVGEN = {  # file stem: (mode, {condition socket: node feeding it}, HarmonyAudioCondition's role)
    "uniavgen_talking_head": ("joint", {"reference": "HarmonyReferenceImage"}, None),
    "uniavgen_talking_head_voice": ("joint", {"reference": "HarmonyReferenceImage",
                                              "audio_cond": "HarmonyAudioCondition"}, "reference_voice"),
    "uniavgen_lipsync": ("audio_driven", {"reference": "HarmonyReferenceImage",
                                          "audio_cond": "HarmonyAudioCondition"}, "drive"),
    "uniavgen_foley": ("video_driven", {"video_cond": "HarmonyVideoCondition"}, None),
}
USER_MODEL_WORKFLOWS = ("ltx2_synccfg_lipsync", *UNIAVGEN)
USER_FILES = {"HarmonyModelLoader": ("ckpt_name",), "HarmonyCodecLoader": ("video_vae", "vocoder")}


def load(stem: str) -> dict:
    return json.loads((WORKFLOWS / f"{stem}.json").read_text())


def nodes_of(workflow: dict, node_type: str) -> list[dict]:
    return [n for n in workflow["nodes"] if n["type"] == node_type]


def widget_value(node: dict, schema: dict, name: str) -> object:
    names = [w.name for w in widget_layout(schema)]
    return node["widgets_values"][names.index(name)]


def feeders(workflow: dict, node: dict) -> dict[str, dict]:
    """{input name: the node linked into it} of `node`."""
    links = {link[0]: link for link in workflow["links"]}
    by_id = {n["id"]: n for n in workflow["nodes"]}
    return {slot["name"]: by_id[links[slot["link"]][1]] for slot in node["inputs"] if slot.get("link") is not None}


def test_folder_holds_exactly_the_use_cases_with_thumbnails():
    files = sorted(p.name for p in WORKFLOWS.iterdir())
    assert files == sorted([f"{stem}{ext}" for stem in EXPECTED for ext in (".json", ".jpg")]
                           + [f"{stem}.json" for stem in USER_MODEL_WORKFLOWS])


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_workflow_matches_the_node_schemas(stem, schemas, frontend_only):
    assert validate_workflow(load(stem), schemas, frontend_only) == []


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_workflow_is_wired_for_its_use_case(stem, schemas, demo_choice):
    workflow = load(stem)
    sampler_type, mode, condition, socket = EXPECTED[stem]
    (loader,) = nodes_of(workflow, "HarmonyModelLoader")
    assert widget_value(loader, schemas["HarmonyModelLoader"], "ckpt_name") == demo_choice
    (sampler,) = nodes_of(workflow, sampler_type)
    assert widget_value(sampler, schemas[sampler_type], "mode") == mode
    assert len(nodes_of(workflow, "HarmonySaveAV")) == 1
    links = {link[0]: link for link in workflow["links"]}
    fed = {slot["name"]: links[slot["link"]][1] for slot in sampler["inputs"] if slot.get("link") is not None}
    types = {n["id"]: n["type"] for n in workflow["nodes"]}
    conditions = {name: types[origin] for name, origin in fed.items() if name in ("audio_cond", "video_cond",
                                                                                    "reference")}
    assert conditions == ({} if condition is None else {socket: condition})


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_seed_is_followed_by_its_control_value(stem, schemas):
    sampler_type = EXPECTED[stem][0]
    (sampler,) = nodes_of(load(stem), sampler_type)
    names = [w.name for w in widget_layout(schemas[sampler_type])]
    assert names[names.index("seed") + 1] == CONTROL
    assert sampler["widgets_values"][names.index("seed") + 1] in CONTROL_VALUES


@pytest.mark.parametrize("stem", sorted(EXPECTED) + sorted(USER_MODEL_WORKFLOWS))
def test_loaders_name_example_inputs_that_ship_with_the_pack(stem, schemas):
    workflow = load(stem)
    for node_type, widget in LOADERS.items():
        for node in nodes_of(workflow, node_type):
            name = widget_value(node, schemas[node_type], widget)
            assert name in EXAMPLE_INPUTS and (EXAMPLES_DIR / name).is_file(), name


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_api_prompt_gives_every_required_input(stem, schemas):
    prompt = to_api(load(stem), schemas)
    assert "Note" not in {entry["class_type"] for entry in prompt.values()}
    for node_id, entry in prompt.items():
        schema = schemas[entry["class_type"]]
        required = schema["input_order"].get("required", [])
        assert set(required) <= set(entry["inputs"]), (node_id, entry["class_type"])
        assert set(entry["inputs"]) <= set(input_specs(schema)), (node_id, entry["class_type"])
        for name, value in entry["inputs"].items():
            if isinstance(value, list):
                assert value[0] in prompt and isinstance(value[1], int)
            else:
                assert is_widget(input_specs(schema)[name])


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_thumbnail_is_a_real_jpeg_frame(stem):
    path = WORKFLOWS / f"{stem}.jpg"
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")  # [H, W, 3]
    assert min(frame.shape[:2]) >= 128
    assert float(np.std(frame)) > 5.0, "thumbnail is a flat image"


@pytest.mark.parametrize("stem", sorted(UNIAVGEN))
def test_uniavgen_workflow_matches_the_node_schemas(stem, schemas, frontend_only):
    """As the demo workflows, except that the user's file names are not options here (no files offline)."""
    relaxed = copy.deepcopy(schemas)
    for node_type, names in USER_FILES.items():
        for name in names:
            relaxed[node_type]["input"]["required"][name][1]["options"] = []
    assert validate_workflow(load(stem), relaxed, frontend_only) == []


@pytest.mark.parametrize("stem", sorted(UNIAVGEN))
def test_uniavgen_workflow_is_wired_for_its_task(stem, schemas):
    """The task's mode and conditions; umT5 (CLIPLoader type wan) captions, the negative an empty prompt (as
    UniAVGen's); HarmonyConditioning carries the transcript; the checkpoint's guidance, 81 frames at 16 fps."""
    workflow = load(stem)
    mode, conditions, role = UNIAVGEN[stem]
    (sampler,) = nodes_of(workflow, "HarmonySampler")
    value = lambda node, name: widget_value(node, schemas[node["type"]], name)  # noqa: E731
    assert [value(sampler, k) for k in ("mode", "guidance", "frames", "fps")] == [mode, "default", 81, 16.0]
    fed = feeders(workflow, sampler)
    assert {k: fed[k]["type"] for k in ("audio_cond", "video_cond", "reference") if k in fed} == conditions
    if role is not None:
        assert value(fed["audio_cond"], "role") == role
    assert fed["positive"]["type"] == "HarmonyConditioning" and fed["negative"]["type"] == "CLIPTextEncode"
    assert value(fed["negative"], "text") == ""
    caption = feeders(workflow, fed["positive"])["video"]
    assert caption["type"] == "CLIPTextEncode" and value(caption, "text")
    clip = feeders(workflow, caption)["clip"]
    assert clip["type"] == "CLIPLoader" and value(clip, "type") == "wan"
    (loader,) = nodes_of(workflow, "HarmonyModelLoader")
    assert value(loader, "ckpt_name") == "UniAVGen/" and value(loader, "weight_dtype") == "bf16"
