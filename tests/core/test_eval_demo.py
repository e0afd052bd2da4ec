"""The demo evaluation (issue 14): its driving media carry their events, the whole evaluation runs end to end on
a small random model and writes what it reports, and the report tables read it."""
from __future__ import annotations

import math

import pytest
import torch

from harmony_core.build import load_pipeline
from harmony_core.config import preset
from harmony_core.metrics import lag_correlation, motion_energy, onset_strength
from harmony_core.model.harmony import HarmonyModel
from harmony_core.pipeline import HarmonyPipeline
from harmony_core.train import classify
from harmony_core.train.cli import parse_task_weights
from harmony_core.train.eval_demo import EVAL_SEED, EvalPlan, GuidanceOverride, evaluate_demo, joint_prompts
from harmony_core.train.eval_demo_report import adherence_table, load, paired_table, sync_table
from harmony_core.train.eval_inputs import AUDIO_KINDS, VIDEO_KINDS, driving_audio, driving_video

FAMILY_OF_INPUT = {"clicks": "impact", "tone_bursts": "flash", "syllables": "speaker", "speech": "speaker",
                   "flashing": "flash", "jumping": "impact", "bouncing": "impact", "talking_face": "speaker"}


def _impulses(events: tuple[float, ...], frames: int = 81, fps: float = 25.0) -> torch.Tensor:
    """[F] 1 on the frame whose interval ((k-1)/fps, k/fps] holds an event (the metrics' timing)."""
    x = torch.zeros(frames)
    for e in events:
        k = math.ceil(e * fps - 1e-9)
        if 1 <= k < frames:
            x[k] = 1.0
    return x


@pytest.mark.parametrize("kind", AUDIO_KINDS)
def test_driving_sounds_start_at_their_events(kind: str) -> None:
    for seed in range(3):
        item = driving_audio(kind, seed)
        assert item.wave.shape == (51840,) and float(item.wave.abs().max()) <= 1.0
        onset = onset_strength(item.wave, 16000, 25, 81)
        lc = lag_correlation(_impulses(item.events), onset, 3)
        assert lc.best_lag == 0 and lc.lag0 > 0.5, (kind, seed, lc.corr)
        assert classify.family_of_caption(item.prompt) == FAMILY_OF_INPUT[kind]
    assert torch.equal(driving_audio(kind, 1).wave, driving_audio(kind, 1).wave)


@pytest.mark.parametrize("kind", VIDEO_KINDS)
def test_driving_pictures_change_at_their_events(kind: str) -> None:
    for seed in range(3):
        item = driving_video(kind, seed)
        assert item.frames.shape == (81, 64, 64, 3)
        lc = lag_correlation(motion_energy(item.frames), _impulses(item.events), 3)
        assert lc.within_one > 0.45, (kind, seed, lc.corr)   # a landing's squash shows on frames k and k+1
        assert classify.family_of_caption(item.prompt) == FAMILY_OF_INPUT[kind]
    with pytest.raises(ValueError, match="accepted"):
        driving_video("dancing", 0)


def test_task_weights_parse_and_refuse_nonsense() -> None:
    assert parse_task_weights("1,0.7,0.7") == (1.0, 0.7, 0.7)
    for bad in ("1,0.7", "0,1,1", "1,-1,0", "a,b,c", "1,inf,0"):
        with pytest.raises(ValueError, match="task-weights"):
            parse_task_weights(bad)


@pytest.fixture(scope="module")
def pipe() -> HarmonyPipeline:
    torch.manual_seed(0)
    base = load_pipeline(allow_untrained=True)
    return HarmonyPipeline(HarmonyModel(preset("demo")).eval(), base.video_codec, base.audio_codec)


def test_guidance_overrides_replace_only_what_they_name() -> None:
    d = preset("demo").defaults
    kept = GuidanceOverride().apply(d, "video_driven")
    assert (kept.sync.audio_scale, kept.rescale.audio, kept.text.video_scale) == (
        d.driven_sync_audio_scale, d.driven_rescale_audio, d.text_video_scale)
    g = GuidanceOverride(sync_audio=5.0, text_video=2.0, text_audio=1.5).apply(d, "video_driven")
    assert (g.sync.audio_scale, g.text.video_scale, g.text.audio_scale) == (5.0, 2.0, 1.5)
    assert (g.sync.video_scale, g.rescale.audio) == (kept.sync.video_scale, kept.rescale.audio)


def test_the_whole_evaluation_runs_and_writes_what_it_reports(pipe, tmp_path) -> None:
    plan = EvalPlan(clips=2, still=2, batch=2, steps=2, guidance=GuidanceOverride(rescale_audio=0.5))
    result = evaluate_demo(pipe, tmp_path, plan)
    for folder, n in (("joint", 2), ("still", 2), ("a2v", 2), ("v2a", 2)):
        assert len(list((tmp_path / folder).glob("*.mp4"))) == n
    assert load(tmp_path) == result
    for direction in ("joint", "a2v", "v2a"):
        rows = result[direction]["sync"]["rows"]
        assert len(rows) == 2 and all(-1.0 <= r["lag0"] <= r["within_one"] <= 1.0 for r in rows)
    joint_rows = result["joint"]["rows"]
    assert [r["prompt"] for r in joint_rows] == [c.video_caption for c in joint_prompts(2, EVAL_SEED)]
    assert all(r["family"] in ("impact", "speaker", "drum", "flash", "none") for r in joint_rows)
    assert 0.0 <= result["joint"]["family"][0] <= 1.0 and result["still"]["silence"]["rms"]["ratio"][3] == 2
    assert "| still |" in adherence_table(result) and "audio-driven video" in sync_table(result)
    assert "0.000 [0.000, 0.000]" in paired_table(result, result, ("a", "b"))   # a clip against itself


def test_prompt_sheet_has_a_row_per_prompt(pipe, tmp_path) -> None:
    from harmony_core.train.eval_demo_report import SHEET_PROMPTS, prompt_sheet
    out = prompt_sheet(pipe, tmp_path / "sheet.png", prompts=SHEET_PROMPTS[:2], steps=1, frames_per_clip=3)
    data = out.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (3 * 128 + 2 * 2, 2 * 128 + 2)    # 3 frames x 2 rows of 64 px at 2x, 2 px gaps
    assert all(classify.family_of_caption(v) for v, _ in SHEET_PROMPTS)   # every prompt names a family
