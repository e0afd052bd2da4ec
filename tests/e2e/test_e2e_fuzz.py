"""Bad input through a real ComfyUI: one change at a time to the bundled text -> audio + video graph (shrunk to
9 frames, 2 steps), queued with POST /prompt. Every case must end in a clear error (the expected message) or a
correct output; after each the server answers, nothing was written outside the output folder and no temporary
file is left; a valid prompt still runs after every five cases. The table of cases and outcomes is printed at
the end of the run (and is the one in the closing note of issue 18)."""
from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import av
import numpy as np
import pytest

from comfy_server import FUZZ_TABLE, REPO, ComfyServer
from workflow_graph import to_api

pytestmark = pytest.mark.e2e


def base_prompt(object_info: dict) -> dict:
    workflow = json.loads((REPO / "workflows" / "harmony_text_to_audio_video.json").read_text())
    prompt = to_api(workflow, object_info)
    sampler = node_of(prompt, "HarmonySampler")
    sampler["inputs"].update(frames=9, steps=2)
    return prompt


def node_of(prompt: dict, class_type: str) -> dict:
    return next(n for n in prompt.values() if n["class_type"] == class_type)


def node_id(prompt: dict, class_type: str) -> str:
    return next(k for k, n in prompt.items() if n["class_type"] == class_type)


def linked(prompt: dict, class_type: str, name: str, value: object, kind: str = "PrimitiveFloat") -> dict:
    """The input `name` of `class_type` fed by a Primitive node (so the widget's min/max is not checked)."""
    prompt["900"] = {"class_type": kind, "inputs": {"value": value}}
    node_of(prompt, class_type)["inputs"][name] = ["900", 0]
    return prompt


def widget(prompt: dict, class_type: str, **values) -> dict:
    node_of(prompt, class_type)["inputs"].update(values)
    return prompt


def audio_driven_with(prompt: dict, file_name: str) -> dict:
    """Audio-driven mode fed by core LoadAudio of `file_name` through HarmonyAudioCondition."""
    codecs = node_id(prompt, "HarmonyCodecLoader")
    prompt["901"] = {"class_type": "LoadAudio", "inputs": {"audio": file_name}}
    prompt["902"] = {"class_type": "HarmonyAudioCondition",
                     "inputs": {"codecs": [codecs, 0], "audio": ["901", 0], "role": "drive", "start_seconds": 0.0,
                                "max_seconds": 0.0}}
    node_of(prompt, "HarmonySampler")["inputs"].update(mode="audio_driven", audio_cond=["902", 0])
    return prompt


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> None:
    """A float32 wav (pcm_f32le keeps NaN/Inf as they are)."""
    with av.open(str(path), mode="w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.astype(np.float32)[None], format="flt", layout="mono")
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def hostile_media(folder: Path) -> None:
    wave = (0.3 * np.sin(np.linspace(0, 400, 16000))).astype(np.float32)
    nan = wave.copy()
    nan[1000:1100] = np.nan
    nan[2000] = np.inf
    write_wav(folder / "fuzz_nan.wav", nan)
    write_wav(folder / "fuzz_ok.wav", wave)
    (folder / "fuzz_text.wav").write_text("this is not audio")


# (case, how to change the prompt, expected: "ok" or a regex of the error)
CASES = [
    ("fps 1000 via link", lambda p: linked(p, "HarmonySampler", "fps", 1000.0), r"fps = 1000 is outside .*1\.\.120"),
    ("sync_video_scale 1e6 via link", lambda p: linked(p, "HarmonySampler", "sync_video_scale", 1e6),
     r"sync_video_scale = 1e\+06 is outside"),
    ("text_video_scale -2 via link", lambda p: linked(p, "HarmonySampler", "text_video_scale", -2.0),
     r"text_video_scale = -2 is outside"),
    ("sync_audio_scale NaN via link", lambda p: linked(p, "HarmonySampler", "sync_audio_scale", math.nan),
     r"sync_audio_scale is nan; give a finite number"),
    ("width 8192 via link", lambda p: linked(p, "HarmonySampler", "width", 8192, "PrimitiveInt"),
     r"width = 8192 is outside its range 16\.\.4096"),
    ("steps 0 via link", lambda p: linked(p, "HarmonySampler", "steps", 0, "PrimitiveInt"),
     r"steps = 0 is outside its range 1\.\.200"),
    ("seed -1 via link", lambda p: linked(p, "HarmonySampler", "seed", -1, "PrimitiveInt"),
     r"seed = -1 is outside its range 0\.\.18446744073709551615"),
    ("frames 10 (not 4k+1)", lambda p: widget(p, "HarmonySampler", frames=10), r"frames: 10 is not 4\*k\+1"),
    ("4096x4096x81 (fits the widgets, not the memory)",
     lambda p: widget(p, "HarmonySampler", width=4096, height=4096, frames=81), r"needs about .* GiB .* available"),
    ("fps 120 via link (the max)", lambda p: linked(p, "HarmonySampler", "fps", 120.0), "ok"),
    ("audio_driven without audio", lambda p: widget(p, "HarmonySampler", mode="audio_driven"),
     r"audio_cond: mode 'audio_driven' needs a driving soundtrack"),
    ("video_driven without video", lambda p: widget(p, "HarmonySampler", mode="video_driven"),
     r"video_cond: mode 'video_driven' needs driving frames"),
    ("driving wav with NaN/Inf", lambda p: audio_driven_with(p, "fuzz_nan.wav"),
     r"audio: 101 of 16000 audio samples are NaN or infinite"),
    ("driving 'wav' that is text", lambda p: audio_driven_with(p, "fuzz_text.wav"), r"(?i)invalid|audio"),
    ("driving wav, 1 s", lambda p: audio_driven_with(p, "fuzz_ok.wav"), "ok"),
    ("prefix with NUL", lambda p: widget(p, "HarmonySaveAV", filename_prefix="a\x00b"),
     r"filename_prefix: 1 control character"),
    ("prefix with newline", lambda p: widget(p, "HarmonySaveAV", filename_prefix="a\nb"),
     r"filename_prefix: 1 control character"),
    ("empty prefix", lambda p: widget(p, "HarmonySaveAV", filename_prefix=""), "ok"),
    ("prefix ending in /", lambda p: widget(p, "HarmonySaveAV", filename_prefix="fuzz/"), "ok"),
    ("prefix ../../outside", lambda p: widget(p, "HarmonySaveAV", filename_prefix="../../outside/x"),
     r"(?i)outside the output folder"),
    ("prefix absolute /tmp/x", lambda p: widget(p, "HarmonySaveAV", filename_prefix="/tmp/harmony_fuzz/x"),
     r"(?i)outside the output folder"),
    ("mode from a STRING link", lambda p: linked(p, "HarmonySampler", "mode", "sideways", "PrimitiveString"),
     r"Return type mismatch.*mode, received_type\(STRING\)"),  # ComfyUI's own /prompt check
]


def outcome(server: ComfyServer, prompt: dict, timeout: float = 300) -> tuple[str, str]:
    """("ok", "") or ("error", message) for one queued prompt; a /prompt refusal counts as an error."""
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "harmony-fuzz"})
    if status != 200:
        return "error", json.dumps(body)
    prompt_id, deadline = body["prompt_id"], time.monotonic() + timeout
    while time.monotonic() < deadline:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            if entry["status"].get("status_str") == "success":
                return "ok", ""
            errors = [m[1] for m in entry["status"].get("messages", []) if m[0] == "execution_error"]
            return "error", " | ".join(f"{e.get('node_type')}: {e.get('exception_message')}" for e in errors)
        time.sleep(0.2)
    raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")


def files_outside_output(server: ComfyServer, before: set[str]) -> list[str]:
    """Files that appeared in the work folder outside output/ and temp/ (the log and the db excepted)."""
    now = {str(p.relative_to(server.work)) for p in server.work.rglob("*") if p.is_file()}
    allowed = ("output/", "temp/", "user/", "comfyui.log")
    return sorted(f for f in now - before if not f.startswith(allowed))


def temp_files(server: ComfyServer) -> list[str]:
    return sorted(str(p) for p in server.output_dir.rglob("*") if ".tmp" in p.name or p.name.startswith("."))


def healthy(server: ComfyServer) -> bool:
    try:
        return "HarmonySampler" in server.get("/object_info/HarmonySampler", timeout=10)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def test_every_bad_input_gets_a_clear_error_or_a_correct_output(server, object_info):
    hostile_media(server.input_dir)
    before = {str(p.relative_to(server.work)) for p in server.work.rglob("*") if p.is_file()}
    failures = []
    for index, (name, change, expected) in enumerate(CASES):
        start = time.monotonic()
        kind, message = outcome(server, change(base_prompt(object_info)))
        seconds = time.monotonic() - start
        FUZZ_TABLE.append((name, kind, seconds, message[:160]))
        if expected == "ok" and kind != "ok":
            failures.append(f"{name}: expected a clip, got {message[:300]}")
        if expected != "ok" and (kind != "error" or not re.search(expected, message)):
            failures.append(f"{name}: expected an error matching {expected!r}, got {kind} {message[:300]}")
        if "Traceback" in message:
            failures.append(f"{name}: the message is a traceback")
        assert healthy(server), f"the server did not answer after {name}"
        stray = files_outside_output(server, before)
        assert stray == [], f"{name} wrote outside the output folder: {stray}"
        assert temp_files(server) == [], f"{name} left temporary or hidden files"
        if index % 5 == 4:
            assert outcome(server, base_prompt(object_info))[0] == "ok", f"a valid prompt failed after {name}"
    assert not failures, "\n".join(failures)


def test_interrupt_stops_a_heavy_prompt_and_writes_nothing(server, object_info):
    """2048x2048, 1 frame: one denoiser step of the demo model takes tens of seconds on 2 CPU cores. POST
    /interrupt while it samples; the prompt ends interrupted (the cancel check runs per layer and per piece of
    a large attention call) and saves nothing. The latency is printed with the table (a figure, not a bound)."""
    prompt = widget(base_prompt(object_info), "HarmonySampler", width=2048, height=2048, frames=1, steps=4)
    widget(prompt, "HarmonySaveAV", filename_prefix="interrupt/x")
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "harmony-fuzz"})
    assert status == 200, body
    prompt_id = body["prompt_id"]
    deadline = time.monotonic() + 120
    while not server.get("/queue")["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(8)  # well inside the first step
    sent = time.monotonic()
    request = urllib.request.Request(server.url + "/interrupt", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    while time.monotonic() < deadline:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            break
        time.sleep(0.1)
    latency = time.monotonic() - sent
    kinds = [m[0] for m in entry["status"]["messages"]]
    FUZZ_TABLE.append(("interrupt at 2048x2048x1 (latency)", entry["status"]["status_str"], latency, str(kinds)))
    assert "execution_interrupted" in kinds and entry["status"]["status_str"] != "success"
    assert not (server.output_dir / "interrupt").exists() or not any((server.output_dir / "interrupt").iterdir())
