"""Held-out evaluation: batched generation equals the pipeline's own, report tables are well formed."""
from __future__ import annotations

import pytest
import torch

from harmony_core.config import preset
from harmony_core.build import load_pipeline
from harmony_core.model.harmony import HarmonyModel
from harmony_core.pipeline import HarmonyPipeline, Request, Sampling
from harmony_core.sampling import Guidance, SyncCFG, TextCFG
from harmony_core.train.ablate import (HELDOUT_SEED, SWEEP_SEED, EvalSettings, generate_pairs, heldout_clips,
                                       sample_latents)
from harmony_core.train.ablate_report import SYNC_COLUMNS, markdown, steps_table, sweep_table, table3


@pytest.fixture(scope="module")
def pipe() -> HarmonyPipeline:
    torch.manual_seed(0)
    base = load_pipeline(allow_untrained=True)
    return HarmonyPipeline(HarmonyModel(preset("demo")).eval(), base.video_codec, base.audio_codec)


@pytest.mark.parametrize("guidance", ["sync", "text"])
def test_batched_generation_equals_one_request_per_clip(pipe, guidance):
    clips = heldout_clips(2)
    settings = EvalSettings(clips=2, steps=2, guidance=guidance, scale=(1.5, 2.0))
    video, audio, _ = sample_latents(pipe, clips, settings, first_seed=5)
    for i, clip in enumerate(clips):
        scales = (Guidance(sync=SyncCFG(1.5, 2.0), text=TextCFG(1.0, 1.0)) if guidance == "sync"
                  else Guidance(sync=SyncCFG(1.0, 1.0), text=TextCFG(1.5, 2.0)))
        one_v, one_a, _, _ = pipe.sample(Request(prompt=clip.video_caption, audio_prompt=clip.audio_caption,
                                                 transcript=clip.transcript, sampling=Sampling(steps=2, seed=5 + i),
                                                 guidance=scales))
        torch.testing.assert_close(video[i], one_v[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(audio[i], one_a[0], atol=1e-4, rtol=1e-4)


def test_generated_pairs_have_the_clip_layout(pipe):
    clips = heldout_clips(2)
    pairs = generate_pairs(pipe, clips, EvalSettings(clips=2, steps=1, scale=(1.0, 1.0)))
    for pair, clip in zip(pairs, clips):
        assert pair.kind == clip.kind and pair.frames.shape == clip.frames.shape
        assert pair.wave.shape == clip.wave.shape and pair.sample_rate == clip.sample_rate


def test_heldout_streams_are_not_the_training_stream():
    held = {c.seed for c in heldout_clips(8)}
    sweep = {c.seed for c in heldout_clips(8, SWEEP_SEED)}
    train = {c.seed for c in heldout_clips(8, 0)}
    assert HELDOUT_SEED != SWEEP_SEED and not (held & sweep) and not (held & train)


def _report(lag0: float) -> dict:
    stat = {"mean": lag0, "lo": lag0 - 0.1, "hi": lag0 + 0.1, "n": 4}
    group = {m: stat for m in ("lag0", "best_is_zero", "confidence", "mean_abs_offset", "hit_rate")}
    return {"summary": {"all": group, "speaker": group, "impact": group},
            "shuffled_summary": {"all": {**group, "lag0": {**stat, "mean": 0.05}}}}


def test_report_tables_have_one_cell_per_column():
    rows = table3([("baseline", "", "", "", _report(0.2)), ("missing", "x", "", "", None)])
    assert len(rows) == 4 and all(r.count("|") == len(SYNC_COLUMNS) + 5 for r in rows)
    assert "0.200 [0.100, 0.300]" in rows[2] and "+0.150" in rows[2] and "(not run)" in rows[3]
    curve = steps_table([10, 20], {"cts": {10: _report(0.3)}, "joint": {}})
    assert curve[2].startswith("| 10 | 0.300") and curve[3].count("-") >= 8
    sweep = sweep_table([1.0, 2.0], {2.0: _report(0.1)}, {1.0: _report(0.2), 2.0: _report(0.4)})
    assert [r.split("|")[2].strip() for r in sweep[2:]] == ["none", "plain CFG", "SyncCFG"]
    assert markdown([("T", rows)], ["pre"]).startswith("pre\n\n### T\n")
