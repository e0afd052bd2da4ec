"""Every bundled workflow for the demo model exactly as shipped, converted to API format, queued through /prompt on
a real ComfyUI (CPU) whose input folder was empty at start: each saved clip is an mp4 with exactly one video and
one audio stream of equal duration (within one frame); other outputs are previews (the best-of-takes plot). The
workflows for models the user brings are run or checked elsewhere (NEEDS_USER_MODELS)."""
from __future__ import annotations

import json
import time

import pytest

from comfy_server import REPO, STREAMS, WALL_TIMES, output_files, run_prompt
from media_checks import summarize
from workflow_graph import to_api, widget_layout
from workflow_specs_user import USER_MODEL_WORKFLOWS

pytestmark = pytest.mark.e2e

# workflows that need the user's model files cannot run as shipped here: test_e2e_ltx_guider.py checks the LTX-2 one
# against the live schemas and /prompt, test_e2e_uniavgen.py runs the UniAVGen ones on tiny stand-in files
NEEDS_USER_MODELS = set(USER_MODEL_WORKFLOWS)
WORKFLOWS = sorted(p.stem for p in (REPO / "workflows").glob("*.json") if p.stem not in NEEDS_USER_MODELS)


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_runs_and_saves_a_synchronized_mp4(name, server, object_info, tmp_path):
    workflow = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    start = time.monotonic()
    entry = run_prompt(server, to_api(workflow, object_info), timeout=420)
    WALL_TIMES[name] = time.monotonic() - start
    files = output_files(entry)
    clips = [f for f in files if f["filename"].endswith(".mp4")]
    assert clips, f"{name} saved no mp4: {files}"
    assert all(f["filename"].endswith(".png") and f["type"] == "temp" for f in files if f not in clips), files
    for item in clips:
        clip = summarize(server.download(item, tmp_path / item["filename"]))
        assert (clip.video_streams, clip.audio_streams) == (1, 1), clip
        frame = 1 / float(clip.fps)
        assert clip.frames > 1 and clip.video_seconds > 0, clip
        assert abs(clip.audio_seconds - clip.video_seconds) <= frame, clip
        assert abs(clip.decoded_audio_seconds - clip.video_seconds) <= frame, clip
        STREAMS.setdefault(name, []).append(
            f"{clip.width}x{clip.height}, video {clip.frames} frames {clip.video_seconds:.2f} s, "
            f"audio {clip.decoded_audio_seconds:.2f} s")


def test_best_of_takes_reports_every_take_ranked(server, object_info):
    workflow = json.loads((REPO / "workflows" / "best_of_takes.json").read_text())
    takes = next(n for n in workflow["nodes"] if n["type"] == "HarmonyBestOfTakes")
    names = [w.name for w in widget_layout(object_info["HarmonyBestOfTakes"])]
    count = takes["widgets_values"][names.index("takes")]  # where HarmonySampler has `batch`
    entry = run_prompt(server, to_api(workflow, object_info), timeout=420)
    texts = [t for out in entry["outputs"].values() for t in out.get("text", [])]
    assert len(texts) == 1, entry["outputs"]
    rows = [line for line in texts[0].splitlines() if line.strip()[:1].isdigit()]
    scores = [float(line.split()[3]) for line in rows]
    assert count >= 2 and len(rows) == count, texts[0]
    assert scores == sorted(scores, reverse=True), texts[0]
