"""The memory kit and comfy.ops layers in a real ComfyUI: the loader's fp8 / swap_blocks / compile widgets and
ComfyUI's own memory options, on the demo model and the tiny UniAVGen files; plus the layers against the real
comfy.ops and ComfyUI's real lowvram load, in-process (memory_kit_probe.py).

Which ComfyUI options (comfy/cli_args.py of the checkout): --fp8_e4m3fn-unet runs on a CPU server. --lowvram exists
but sits in one mutually exclusive group with --cpu (argparse refuses the pair) and without --cpu ComfyUI needs a
GPU, so here ComfyUI's lowvram load is run by the probe instead: ModelPatcher.load with a 1-byte budget streams every
managed layer per op, exactly what --lowvram (or too little VRAM) does on a GPU. The kit server runs with
--disable-smart-memory, which unloads every model after each prompt: the MODEL is offloaded and loaded again
between runs (with parked swapped layers). Two servers are started (`main.py --cpu` plus the flag). The kit server
runs with TORCHDYNAMO_DISABLE=1: torch.compile then wraps the blocks and runs them eagerly (a real CPU compile of the
demo blocks takes about a minute), so the compile widget's path is exercised, not the compiler.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from comfy_server import REPO, STREAMS, WALL_TIMES, run_prompt, start_server
from test_e2e_uniavgen import check_clip, node, tiny_prompt
from workflow_graph import to_api

pytestmark = pytest.mark.e2e

HERE = REPO / "tests" / "e2e"
SERVERS = {  # name: (ComfyUI flags, environment)
    "kit": (("--disable-smart-memory",), {"TORCHDYNAMO_DISABLE": "1"}),
    "fp8-unet": (("--fp8_e4m3fn-unet",), {}),
}
RUNS = {  # (server, workflow): the loader's kit widgets for that run
    ("kit", "harmony_text_to_audio_video"): {"fp8": "row", "swap_blocks": 2, "compile": True},
    ("kit", "uniavgen_talking_head"): {"fp8": "tensor", "swap_blocks": 1},
    ("fp8-unet", "harmony_text_to_audio_video"): {},
    ("fp8-unet", "uniavgen_talking_head"): {"swap_blocks": 1},
}
LOG_LINES = {  # what each run must have logged (the kit really applied)
    ("kit", "harmony_text_to_audio_video"): ("fp8: ", "with row scales", "block swap: layers",
                                                  "torch.compile (inductor): "),
    ("kit", "uniavgen_talking_head"): ("with tensor scales", "block swap: layers"),
    ("fp8-unet", "harmony_text_to_audio_video"): ("ComfyUI runs with --fp8_e4m3fn-unet: Harmony weights load as "
                                                  "torch.float8_e4m3fn with per-tensor scales",),
    ("fp8-unet", "uniavgen_talking_head"): ("--fp8_e4m3fn-unet", "block swap: layers"),
}


def test_the_flags_exist_in_this_comfyui(comfy_dir):
    cli = (comfy_dir / "comfy" / "cli_args.py").read_text()
    for flag in ("--fp8_e4m3fn-unet", "--fp8_e5m2-unet", "--disable-smart-memory", "--lowvram", "--novram",
                 "--disable-dynamic-vram"):
        assert f'"{flag}"' in cli, flag
    # --lowvram and --cpu are one mutually exclusive group: a CPU-only machine cannot run a --lowvram server
    assert 'vram_group.add_argument("--lowvram"' in cli and 'vram_group.add_argument("--cpu"' in cli


@pytest.fixture(scope="module", params=list(SERVERS))
def kit_server(request, comfy_dir, tmp_path_factory):
    flags, env = SERVERS[request.param]
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    running = start_server(comfy_dir, python, tmp_path_factory.mktemp(f"comfyui-{request.param}"), flags=flags,
                           env=env)
    running.name = request.param
    yield running
    running.stop()


def kit_prompt(server, workflow: str, widgets: dict) -> dict:
    object_info = server.get("/object_info")
    if workflow.startswith("uniavgen"):
        prompt = tiny_prompt(workflow, object_info)
        node(prompt, "HarmonySampler")["inputs"]["steps"] = 2    # the kit is what is tested here, not 50 steps
    else:
        prompt = to_api(json.loads((REPO / "workflows" / f"{workflow}.json").read_text()), object_info)
    node(prompt, "HarmonyModelLoader")["inputs"].update(widgets)
    return prompt


@pytest.mark.parametrize("workflow", ["harmony_text_to_audio_video", "uniavgen_talking_head"])
def test_kit_widgets_and_comfy_memory_flags_generate_a_synchronized_mp4(kit_server, workflow, tmp_path):
    key = (kit_server.name, workflow)
    before = len(kit_server.log())
    start = time.monotonic()
    entry = run_prompt(kit_server, kit_prompt(kit_server, workflow, RUNS[key]), timeout=420)
    label = f"{workflow} (ComfyUI {' '.join(SERVERS[kit_server.name][0])}, loader {RUNS[key] or 'defaults'})"
    WALL_TIMES[label] = time.monotonic() - start
    clip = check_clip(kit_server, entry, tmp_path, label)
    assert clip.frames > 1
    log = kit_server.log()[before:]
    for line in LOG_LINES[key]:
        assert line in log, f"{line!r} not in the log of {label}:\n{log[-3000:]}"
    assert "Traceback" not in log
    STREAMS.setdefault(label, [])


@pytest.mark.parametrize("kit_server", ["kit"], indirect=True)
def test_the_kit_model_is_unloaded_after_a_prompt_and_loaded_again_for_the_next(kit_server, tmp_path):
    """--disable-smart-memory: ComfyUI unloads every model after each prompt; the same MODEL (cached loader, parked
    swapped layers, fp8) is offloaded and loaded again for a new seed."""
    assert "Disabling smart memory management" in kit_server.log()
    prompt = kit_prompt(kit_server, "harmony_text_to_audio_video", RUNS["kit", "harmony_text_to_audio_video"])
    for seed in (11, 12):
        node(prompt, "HarmonySampler")["inputs"]["seed"] = seed
        before = len(kit_server.log())
        check_clip(kit_server, run_prompt(kit_server, prompt, timeout=420), tmp_path, f"kit seed {seed}")
        log = kit_server.log()[before:]
        assert "Requested to load HarmonyModule" in log and "Traceback" not in log
    assert "fp8: " not in log          # the second run: the loader's output was cached, the same MODEL again


# --- the layers against the real comfy.ops and the real lowvram load -------------------------------------------
@pytest.fixture(scope="module")
def facts(comfy_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("memory_kit") / "facts.json"
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    run = subprocess.run([python, str(HERE / "memory_kit_probe.py"), str(comfy_dir), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-6000:]
    return json.loads(out.read_text())


def test_layers_become_the_real_comfy_ops_classes(facts):
    for name, model in facts["models"].items():
        assert "comfy.ops.disable_weight_init.Linear" in model["classes"], name
        assert "comfy.ops.disable_weight_init.Conv3d" in model["classes"], name
        if name.endswith(("/row", "/tensor")):
            assert model["fp8_layers"] == ["ComfyFP8Linear"], name
    assert facts["models"]["gldi/row"]["scale_shapes"] == ["[out, 1]"]     # per row broadcasts (our own scale)
    assert facts["models"]["gldi/tensor"]["scale_shapes"] == ["()"]


def test_outputs_are_bit_identical_after_conversion_and_under_comfys_lowvram_load(facts):
    for name, model in facts["models"].items():
        assert model["full"] and model["lowvram"], name
        assert model["model_lowvram"] and model["streamed"] == model["managed"] > 0, name
        assert model["casts"] >= model["managed"], name    # every managed layer went through cast_bias_weight


def test_direct_weight_reads_go_through_comfys_cast(facts):
    for name, model in facts["models"].items():
        assert model["trap"], name
        assert model["trap_without_hooks"] == "nan" or model["trap_without_hooks"].startswith("error"), name


def test_parked_block_swap_under_the_real_patcher(facts):
    swap = facts["swap"]
    assert swap["kind"] == "ParkedBlockSwap" and swap["patcher"] == "ModelPatcher"
    assert swap["size_drop"] == swap["parked"] > 0       # ComfyUI's model size leaves the parked layers out
    assert swap["full"] and swap["lowvram"] and swap["placeholders_after"]
