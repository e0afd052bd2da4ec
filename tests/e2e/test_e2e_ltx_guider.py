"""HarmonySyncCFGGuider in a real ComfyUI (COMFYUI_DIR): SyncCFG on a tiny random LTXAV built from ComfyUI's own
classes, run by core's SamplerCustomAdvanced; and the example workflow against the live schemas.

ltx_guider_probe.py runs once with ComfyUI's interpreter and records every diffusion-model call (batch, the
per-token timesteps the denoise-mask conds produced, the latents it was given) and every VAE call; these tests
read its facts. Timesteps: the flow model's t is sigma (model_sampling.timestep), so a generated token has
t = sigma and a kept or anchored one t = 0.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from comfy_server import REPO
from workflow_graph import load_core_schemas, to_api, validate_workflow

pytestmark = pytest.mark.e2e

HERE = REPO / "tests" / "e2e"
SIGMAS = [1.0, 0.75, 0.5, 0.25]
WORKFLOW = REPO / "workflows" / "ltx2_synccfg_lipsync.json"
MODEL_FILES = {"CheckpointLoaderSimple", "LTXAVTextEncoderLoader", "LTXVAudioVAELoader"}  # the user's LTX-2 files


@pytest.fixture(scope="module")
def facts(comfy_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("ltx_guider") / "facts.json"
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    run = subprocess.run([python, str(HERE / "ltx_guider_probe.py"), str(comfy_dir), str(out)],
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-6000:]
    return json.loads(out.read_text())


def calls(facts: dict, graph: str) -> list[list[dict]]:
    steps = facts["graphs"][graph]["steps"]
    assert len(steps) == len(SIGMAS), graph
    return steps


def times(call: dict, stream: str) -> set:
    return {t for row in call[f"t_{stream}"] for t in row}


def test_flow_timestep_is_sigma(facts):
    assert facts["sigma_t"] == SIGMAS


def test_joint_graph_runs_joint_audio_driven_and_video_driven_passes_one_call_each(facts):
    for sigma, (joint, ad, vd) in zip(SIGMAS, calls(facts, "joint"), strict=True):
        assert joint["batch"] == 2  # positive and negative share the joint call (cfg 2.5)
        assert times(joint, "video") == times(joint, "audio") == {sigma}
        assert ad["batch"] == vd["batch"] == 1
        assert times(ad, "video") == {sigma} and times(ad, "audio") == {0.0}
        assert ad["video_is_joint"] and ad["audio_is_mute"] and not ad["audio_is_joint"]
        assert times(vd, "video") == {0.0} and times(vd, "audio") == {sigma}
        assert vd["audio_is_joint"] and vd["video_is_static"] and not vd["video_is_joint"]


def test_cfg_1_drops_the_negative_from_the_joint_call(facts):
    for step in calls(facts, "joint_cfg1"):
        assert [c["batch"] for c in step] == [1, 1, 1]
    for step in calls(facts, "cfg_guider"):
        assert [c["batch"] for c in step] == [2]


def test_audio_driven_graph_runs_only_the_audio_driven_pass_on_the_kept_voice(facts):
    for sigma, step in zip(SIGMAS, calls(facts, "audio_driven"), strict=True):
        joint, ad = step
        assert joint["batch"] == 2 and joint["audio_is_given"]
        assert times(joint, "video") == {sigma} and times(joint, "audio") == {0.0}  # the voice at t = 0
        assert ad["batch"] == 1 and ad["audio_is_mute"] and ad["video_is_joint"]
        assert times(ad, "video") == {sigma} and times(ad, "audio") == {0.0}


def test_video_driven_graph_runs_only_the_video_driven_pass_with_frame0_held(facts):
    graph = facts["graphs"]["video_driven"]
    assert graph["vae_calls"] == {"encode": 1, "decode": 1}  # frame 0 decoded, the still clip encoded, once
    for sigma, step in zip(SIGMAS, calls(facts, "video_driven"), strict=True):
        joint, vd = step
        assert joint["video_is_given"] and times(joint, "video") == {0.0} and times(joint, "audio") == {sigma}
        assert vd["batch"] == 1 and vd["video_is_static"] and vd["audio_is_joint"]
        assert times(vd, "video") == {0.0} and times(vd, "audio") == {sigma}


def test_image_to_video_keeps_frame0_at_t0_in_every_pass(facts):
    for sigma, (joint, ad, vd) in zip(SIGMAS, calls(facts, "image_to_video"), strict=True):
        assert times(joint, "video") == times(ad, "video") == {0.0, sigma}
        assert times(vd, "video") == {0.0} and vd["video_is_static"]  # the still is the given frame 0


def test_text_to_video_without_image_holds_frame0_of_the_estimate(facts):
    assert facts["graphs"]["joint_no_image"]["vae_calls"] == {"encode": 1, "decode": 1}  # once per run
    for step in calls(facts, "joint_no_image"):
        assert len(step) == 3 and times(step[2], "video") == {0.0} and not step[2]["video_is_joint"]


def test_range_runs_the_driven_passes_only_inside_it(facts):
    assert [len(step) for step in calls(facts, "joint_range")] == [1, 1, 3, 3]  # sync_start 0.5 of 4 steps


def test_both_scales_at_1_equal_cfgguider_bit_for_bit(facts):
    eq = facts["equalities"]
    for case in ("joint_cfg2.5", "joint_cfg1", "audio_driven_cfg2.5"):
        assert eq[f"scales1_equal_cfgguider_{case}"] is True, case


def test_frozen_streams_stay_bit_exact(facts):
    eq = facts["equalities"]
    for sampler in ("euler", "dpmpp_2m"):
        assert eq[f"a2v_{sampler}_denoised_audio_equals_given"] is True
        assert eq[f"a2v_{sampler}_audio_equals_cfgguider"] is True  # euler's own last step rounds (core too)
        assert eq[f"a2v_{sampler}_video_differs_from_cfgguider"] is True  # and the guidance did act
    assert eq["a2v_dpmpp_2m_audio_equals_given"] is True
    assert eq["v2a_dpmpp_2m_video_equals_given"] is True and eq["v2a_dpmpp_2m_denoised_video_equals_given"]


def test_post_cfg_patches_still_apply(facts):
    eq = facts["equalities"]
    for patch in ("modality", "stg"):
        assert eq[f"{patch}_changes_output"] is True
        assert eq[f"{patch}_calls_per_step"] == 4  # joint, AD, VD + the patch's own pass
        assert eq[f"{patch}_flagged_calls"] == len(SIGMAS)


def test_anchors_are_the_codec_encodings_and_cached(facts):
    a = facts["anchors"]
    assert a["mute_vs_silence_encoding_max_diff"] < 1e-4  # fp32, convolutions over other lengths
    assert a["mute_vs_zero_latent_mean_diff"] > 0.1  # silence is not the zero latent
    assert a["static_vs_still_clip_encoding_max_diff"] < 1e-4
    assert a["vae_calls_when_cached"] == {"encode": 0, "decode": 0}
    assert facts["graphs"]["joint"]["vae_calls"]["decode"] == 0


def test_errors_name_the_input_and_what_to_do(facts):
    err = facts["errors"]
    for name in ("LTXV", "WAN21"):
        assert err[f"model_{name}"].startswith("model:") and "LTXAV" in err[f"model_{name}"]
        assert "MiniMax H3" in err[f"model_{name}"]
    assert err["model_MiniMaxH3"].startswith("model: MiniMax H3 is not supported") and "CFG-distilled" in \
        err["model_MiniMaxH3"]
    assert err["audio_vae_is_video_vae"].startswith("audio_vae:")
    assert err["vae_is_audio_vae"].startswith("vae:")
    assert err["no_audio_vae"].startswith("audio_vae:") and "video_scale" in err["no_audio_vae"]
    assert err["no_vae"].startswith("vae:") and "audio_scale" in err["no_vae"]
    assert "LTXVConcatAVLatent" in err["video_only_latent"]


def test_wall_time_against_cfgguider(facts, request):
    plugins = request.config.pluginmanager
    report, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    for graph, t in facts["timings"].items():
        assert t["ratio"] < 6, (graph, t)  # 3 / 2 / 2 calls per step against 1 (tiny model: per-call overhead)
        if report is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                report.write_line(f"\nHarmonySyncCFGGuider, {graph} graph: CFGGuider {t['cfg_guider'] * 1000:.0f} "
                                  f"ms, SyncCFG {t['synccfg'] * 1000:.0f} ms (x{t['ratio']:.2f}), 4 steps on the "
                                  "tiny LTXAV, best of 7")


def test_example_workflow_matches_the_live_schemas(object_info):
    workflow = json.loads(WORKFLOW.read_text())
    assert validate_workflow(workflow, object_info, load_core_schemas()[1]) == []
    types = {n["type"] for n in workflow["nodes"]}
    assert {"HarmonySyncCFGGuider", "SamplerCustomAdvanced", "LTXVConcatAVLatent"} <= types
    notes = [n for n in workflow["nodes"] if n["type"] in ("Note", "MarkdownNote")]
    assert any("LTX-2" in str(n["widgets_values"]) and "models/" in str(n["widgets_values"]) for n in notes)


def test_example_workflow_is_refused_only_for_the_missing_ltx2_files(server, object_info):
    """Queued on a ComfyUI without the LTX-2 files, the only errors are the model-file choices."""
    prompt = to_api(json.loads(WORKFLOW.read_text()), object_info)
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "harmony-e2e"})
    assert status == 400, body
    failing = {prompt[node_id]["class_type"]: [e["type"] for e in entry["errors"]]
               for node_id, entry in body["node_errors"].items()}
    assert set(failing) <= MODEL_FILES and failing, body
    assert all(kind == "value_not_in_list" for kinds in failing.values() for kind in kinds), body
