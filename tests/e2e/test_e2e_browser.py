"""The web extension in ComfyUI's real editor (headless Debian chromium driven by playwright-core).

Loads every bundled workflow (it must save back unchanged and convert to the same prompt as our converter),
switches HarmonySampler through the modes and guidance choices (widgets and condition sockets show/hide), runs
the text -> audio + video workflow from the editor and waits for the A+V preview with its frame strip and
waveform, then adds HarmonyMux -> core Save Video and waits for the same preview on the Save Video node.
Skipped with the reason when node, chromium or playwright-core (`npm ci` in tests/e2e) is missing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from comfy_server import REPO
from workflow_graph import input_specs, to_api, widget_layout

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
RUN = "harmony_text_to_audio_video"
MODES = ["video_driven", "audio_driven", "joint"]  # ends on the workflow's own mode, which is then run
HIDDEN = {"joint": set(), "audio_driven": {"sync_audio_scale", "text_audio_scale", "rescale_audio"},
          "video_driven": {"width", "height", "frames", "fps", "sync_video_scale", "text_video_scale",
                           "rescale_video"}}
CONDITION_SOCKETS = {"joint": {"audio_cond", "reference"}, "audio_driven": {"audio_cond", "reference"},
                     "video_driven": {"audio_cond", "video_cond"}}
REQUIRED = {"joint": [], "audio_driven": ["audio_cond"], "video_driven": ["video_cond"]}  # marked by web/


def browser_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install -y nodejs)"
    if not Path(CHROMIUM).is_file():
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium, or set CHROMIUM)"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (cd tests/e2e && npm ci)"
    return None


@pytest.fixture(scope="module")
def browser_result(server, tmp_path_factory) -> dict:
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("browser")
    workflows = {p.stem: json.loads(p.read_text()) for p in sorted((REPO / "workflows").glob("*.json"))}
    cases = {"workflows": workflows, "modes": MODES, "run": RUN, "timeoutMs": 420000, "screenshots": str(work)}
    (work / "cases.json").write_text(json.dumps(cases))
    script = HERE / "browser" / "check_extension.js"
    subprocess.run(["node", str(script), server.url, str(work / "cases.json"), str(work / "result.json")],
                   check=True, timeout=900, env={**os.environ, "CHROMIUM": CHROMIUM})
    result = json.loads((work / "result.json").read_text())
    assert result.get("error") is None, result.get("error")
    assert result["pageErrors"] == []
    return result


def schema_values(node: dict, schema: dict) -> dict:
    """Widget values of the node's schema inputs (editor-only widgets such as upload buttons left out)."""
    pairs = zip(widget_layout(schema), node.get("widgets_values", []))
    return {w.name: v for w, v in pairs if w.spec is not None}


def test_extensions_are_registered(browser_result):
    assert sorted(browser_result["extensions"]) == ["Harmony.AVPreview", "Harmony.SamplerModes"]


def test_workflows_load_and_save_back_unchanged(browser_result, object_info):
    for name, outcome in browser_result["workflows"].items():
        original = json.loads((REPO / "workflows" / f"{name}.json").read_text())
        saved = outcome["saved"]
        assert saved["links"] == original["links"], name
        for before, after in zip(original["nodes"], saved["nodes"], strict=True):
            assert (after["id"], after["type"]) == (before["id"], before["type"]), name
            schema = object_info.get(before["type"])
            if schema is not None:
                assert schema_values(after, schema) == schema_values(before, schema), (name, before["type"])
            names = [[i["name"] for i in n.get("inputs", [])] for n in (before, after)]
            assert names[0] == names[1], (name, before["type"])


def test_editor_prompt_equals_our_conversion(browser_result, object_info):
    for name, outcome in browser_result["workflows"].items():
        ours = to_api(json.loads((REPO / "workflows" / f"{name}.json").read_text()), object_info)
        editor = {node_id: {**entry, "inputs": {k: v for k, v in entry["inputs"].items()
                                                if k in input_specs(object_info[entry["class_type"]])}}
                  for node_id, entry in outcome["prompt"].items()}
        assert editor == ours, name


def test_workflows_open_framed_and_grouped_clear_of_the_editor_panels(browser_result):
    """Every node and group is on screen at the stored view, none under the sidebar, tab bar, Run toolbar or
    minimap (probed with elementFromPoint), at a zoom that keeps widgets legible; screenshots: open_*.png."""
    for name, outcome in browser_result["workflows"].items():
        frame = outcome["framing"]
        assert frame["outside"] == [] and frame["obstructed"] == [], (name, frame)
        assert 0.6 <= frame["scale"] <= 1, (name, frame["scale"])
        assert {"Model and inputs", "Conditioning", "Output"} <= set(frame["groups"]), (name, frame["groups"])


def test_sampler_widgets_and_sockets_follow_the_mode(browser_result):
    for mode in MODES:
        seen = browser_result["modes"][mode]
        assert set(seen["hidden"]) == HIDDEN[mode], mode
        conditions = set(seen["sockets"]) - {"model", "codecs", "positive", "negative"}
        assert conditions == CONDITION_SOCKETS[mode], mode
        assert seen["required"] == REQUIRED[mode], mode
        assert seen["widgetsValues"] == 20, "hiding widgets must not change what is saved"


def test_guidance_uniavgen_hides_the_synccfg_widgets(browser_result):
    """MA-CFG has no SyncCFG: its scales are the text_* ones; 'default' and 'synccfg' hide nothing (joint)."""
    seen = browser_result["guidance"]
    assert set(seen["uniavgen"]["hidden"]) == {"sync_video_scale", "sync_audio_scale", "sync_start", "sync_end"}
    assert seen["synccfg"]["hidden"] == seen["default"]["hidden"] == []
    assert {v["widgetsValues"] for v in seen.values()} == {20}


def test_run_shows_the_av_preview_with_frames_and_waveform(browser_result):
    preview = browser_result["preview"]
    assert ".mp4" in preview["src"] and preview["duration"] > 1
    assert preview["frames"] == 8 and preview["frameInk"] > 0.5
    assert preview["peaks"] > 100 and preview["waveInk"] > 0.01
    assert preview["controls"] == 5  # play button, scrub bar, playhead, mute button, volume slider
    assert preview["sound"] == {"mutedByButton": True, "unmutedAgain": True, "volume": 0.3}
    assert preview["corePlayers"] == 0  # one preview: the editor adds no video player of its own


def test_harmony_mux_into_core_save_video_gets_the_preview(browser_result):
    assert browser_result["mux"] == {"previews": 2, "saveVideoHasPreview": True}
