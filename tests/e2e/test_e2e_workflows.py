"""Every bundled workflow, converted to API format, queued through /prompt on a real ComfyUI (CPU): each
output is an mp4 with exactly one video and one audio stream of equal duration (within one frame)."""
from __future__ import annotations

import json
import time

import pytest

from comfy_server import REPO, WALL_TIMES, output_files, run_prompt
from media_checks import summarize
from workflow_graph import to_api

pytestmark = pytest.mark.e2e

WORKFLOWS = sorted(p.stem for p in (REPO / "workflows").glob("*.json"))


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_runs_and_saves_a_synchronized_mp4(name, server, object_info, tmp_path):
    workflow = json.loads((REPO / "workflows" / f"{name}.json").read_text())
    start = time.monotonic()
    entry = run_prompt(server, to_api(workflow, object_info), timeout=420)
    WALL_TIMES[name] = time.monotonic() - start
    files = output_files(entry)
    assert files, f"{name} produced no output file"
    for item in files:
        assert item["filename"].endswith(".mp4"), item
        clip = summarize(server.download(item, tmp_path / item["filename"]))
        assert (clip.video_streams, clip.audio_streams) == (1, 1), clip
        frame = 1 / float(clip.fps)
        assert clip.frames > 1 and clip.video_seconds > 0, clip
        assert abs(clip.audio_seconds - clip.video_seconds) <= frame, clip
        assert abs(clip.decoded_audio_seconds - clip.video_seconds) <= frame, clip
