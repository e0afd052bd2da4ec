"""The pack inside a real ComfyUI: nodes registered, no import failure, web extension and workflows served."""
from __future__ import annotations

import json
import urllib.request

import pytest

from comfy_server import PACK_FOLDER, REPO
from workflow_inputs import EXAMPLE_INPUTS, EXAMPLES_DIR
from workflow_graph import load_core_schemas, validate_workflow

pytestmark = pytest.mark.e2e

NODE_IDS = ["HarmonyModelLoader", "HarmonyCodecLoader", "HarmonyTextEncode", "HarmonyConditioning",
            "HarmonyAudioCondition", "HarmonyVideoCondition", "HarmonyReferenceImage", "HarmonySampler",
            "HarmonyDecode", "HarmonyMux", "HarmonySaveAV", "HarmonyBestOfTakes", "HarmonySyncScore",
            "HarmonySyncCFGGuider"]
WORKFLOWS = sorted(p.stem for p in (REPO / "workflows").glob("*.json"))
WEB_FILES = sorted(p.name for p in (REPO / "web").glob("*.js"))


def test_object_info_lists_every_harmony_node(object_info):
    harmony = sorted(k for k in object_info if k.startswith("Harmony"))
    assert harmony == sorted(NODE_IDS)
    for node_id in NODE_IDS:
        assert object_info[node_id]["python_module"] == f"custom_nodes.{PACK_FOLDER}"
        assert object_info[node_id]["category"].startswith("Harmony/")


def test_log_shows_the_pack_imported_without_errors(server, object_info):
    log = server.log()
    assert "IMPORT FAILED" not in log
    assert "Traceback" not in log
    assert f"custom_nodes/{PACK_FOLDER}" in log  # listed in the import-times table


def test_web_extension_files_are_served(server):
    listed = server.get("/extensions")
    for name in WEB_FILES:
        route = f"/extensions/{PACK_FOLDER}/{name}"
        assert route in listed
        with urllib.request.urlopen(server.url + route, timeout=10) as response:
            assert "registerExtension" in response.read().decode()


def test_bundled_workflows_are_listed_as_templates(server):
    templates = server.get("/workflow_templates")
    assert sorted(templates[PACK_FOLDER]) == WORKFLOWS
    served = server.get(f"/api/workflow_templates/{PACK_FOLDER}/{WORKFLOWS[0]}.json")
    assert served == json.loads((REPO / "workflows" / f"{WORKFLOWS[0]}.json").read_text())


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_matches_the_live_schemas(name, object_info):
    workflow = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    assert validate_workflow(workflow, object_info, load_core_schemas()[1]) == []


def test_the_pack_copies_its_example_inputs_into_the_empty_input_folder(server):
    """The server started with an empty input folder (a fresh install); the pack put its examples there (ComfyUI
    itself adds an empty `3d` folder)."""
    found = sorted(p.name for p in server.input_dir.iterdir() if p.is_file())
    assert found == sorted(EXAMPLE_INPUTS)
    for name in EXAMPLE_INPUTS:
        assert (server.input_dir / name).read_bytes() == (EXAMPLES_DIR / name).read_bytes(), name
    assert "example inputs copied into" in server.log()
