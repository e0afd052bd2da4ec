"""The workflow checker and the UI -> API converter themselves, on small hand-made graphs: each check must
catch the mistake it exists for."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from workflow_graph import load_core_schemas, to_api, validate_workflow, widget_layout

SAMPLER_WIDGETS = ["mode", "width", "height", "frames", "fps", "steps", "shift", "seed",
                   "control_after_generate", "solver", "sync_video_scale", "sync_audio_scale", "sync_start",
                   "sync_end", "text_video_scale", "text_audio_scale", "batch", "guidance", "rescale_video",
                   "rescale_audio"]
TEXT_TO_AV = Path(__file__).resolve().parents[2] / "workflows" / "harmony_text_to_audio_video.json"


@pytest.fixture
def workflow() -> dict:
    return json.loads(TEXT_TO_AV.read_text())


def node(workflow: dict, node_type: str) -> dict:
    return next(n for n in workflow["nodes"] if n["type"] == node_type)


def test_widget_layout_follows_the_editor(schemas):
    assert [w.name for w in widget_layout(schemas["HarmonySampler"])] == SAMPLER_WIDGETS
    core, _ = load_core_schemas()
    for name, schema in core.items():
        assert [w.name for w in widget_layout(schema)] == schema["editor_widgets"], name


def test_missing_control_value_is_reported(workflow, schemas, frontend_only):
    values = node(workflow, "HarmonySampler")["widgets_values"]
    del values[SAMPLER_WIDGETS.index("control_after_generate")]
    errors = validate_workflow(workflow, schemas, frontend_only)
    assert any(f"widgets_values has {len(SAMPLER_WIDGETS) - 1} values" in e for e in errors)


@pytest.mark.parametrize("widget, value, message", [
    ("mode", "sideways", "is not one of"),
    ("steps", 0, "below the minimum"),
    ("width", 64.5, "not an integer"),
    ("control_after_generate", "sometimes", "control_after_generate value"),
    ("sync_video_scale", "1.5", "not a number"),
    ("rescale_audio", 1.5, "above the maximum"),
])
def test_bad_widget_values_are_reported(workflow, schemas, frontend_only, widget, value, message):
    sampler = node(workflow, "HarmonySampler")
    sampler["widgets_values"][SAMPLER_WIDGETS.index(widget)] = value
    sampler.pop("widgets_values_named", None)
    errors = validate_workflow(workflow, schemas, frontend_only)
    assert any(message in e for e in errors), errors


def test_named_values_must_agree(workflow, schemas, frontend_only):
    node(workflow, "HarmonySampler")["widgets_values_named"]["steps"] = 3
    assert any("widgets_values_named" in e for e in validate_workflow(workflow, schemas, frontend_only))


def test_link_type_mismatch_is_reported(workflow, schemas, frontend_only):
    decode, save = node(workflow, "HarmonyDecode"), node(workflow, "HarmonySaveAV")
    link = next(link for link in workflow["links"] if link[1] == decode["id"] and link[3] == save["id"])
    link[2] = 1  # now the AUDIO output feeds an input
    errors = validate_workflow(workflow, schemas, frontend_only)
    assert any(f"link {link[0]}" in e for e in errors), errors


def test_unknown_node_and_missing_required_link_are_reported(workflow, schemas, frontend_only):
    broken = copy.deepcopy(workflow)
    node(broken, "HarmonyDecode")["type"] = "HarmonyDecodeV2"
    errors = validate_workflow(broken, schemas, frontend_only)
    assert any("unknown node type 'HarmonyDecodeV2'" in e for e in errors)
    sampler = node(workflow, "HarmonySampler")
    for slot in sampler["inputs"]:
        if slot["name"] == "positive":
            slot["link"] = None
    errors = validate_workflow(workflow, schemas, frontend_only)
    assert any("required input 'positive' is not connected" in e for e in errors), errors


def test_api_prompt_maps_widgets_by_name_and_links_to_slots(workflow, schemas):
    prompt = to_api(workflow, schemas)
    sampler = node(workflow, "HarmonySampler")
    entry = prompt[str(sampler["id"])]
    assert entry["class_type"] == "HarmonySampler" and entry["_meta"] == {"title": "Harmony Sampler"}
    values = dict(zip(SAMPLER_WIDGETS, sampler["widgets_values"]))
    assert {k: entry["inputs"][k] for k in values if k != "control_after_generate"} == {
        k: v for k, v in values.items() if k != "control_after_generate"}
    assert "control_after_generate" not in entry["inputs"]
    text = node(workflow, "HarmonyTextEncode")
    assert entry["inputs"]["positive"] == [str(text["id"]), 0]
    assert entry["inputs"]["negative"] == [str(text["id"]), 1]
    save = prompt[str(node(workflow, "HarmonySaveAV")["id"])]
    assert save["inputs"]["fps"] == [str(node(workflow, "HarmonyDecode")["id"]), 2]


def test_api_prompt_skips_notes_and_muted_nodes_and_refuses_bypass(workflow, schemas):
    note = node(workflow, "Note")
    assert str(note["id"]) not in to_api(workflow, schemas)
    decode = node(workflow, "HarmonyDecode")
    decode["mode"] = 2
    assert str(decode["id"]) not in to_api(workflow, schemas)
    decode["mode"] = 4
    with pytest.raises(ValueError, match="bypassed"):
        to_api(workflow, schemas)


def test_sockets_outside_the_schema_are_reported(workflow, schemas, frontend_only):
    sampler = node(workflow, "HarmonySampler")
    sampler["inputs"].append({"name": "guide", "type": "HARMONY_GUIDE", "link": None})
    sampler["inputs"].append({"name": "cfg", "type": "FLOAT", "widget": {"name": "cfg"}, "link": None})
    errors = validate_workflow(workflow, schemas, frontend_only)
    assert any("input 'guide' is not in the schema" in e for e in errors)
    assert any("input 'cfg' is not in the schema" in e for e in errors)
