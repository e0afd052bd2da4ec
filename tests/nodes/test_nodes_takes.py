"""HarmonySyncScore (any clip) and HarmonyBestOfTakes (takes one after another, best first) on the demo model."""

from __future__ import annotations

from fractions import Fraction

import comfy.model_management as mm
import comfy.utils
import pytest
import torch
from comfy_api.latest import InputImpl, Types, io

from node_harness import SAMPLER_WIDGETS, pack_module, run_node

takes_nodes = pack_module("nodes.takes")
sampling = pack_module("nodes.sampling")
media = pack_module("nodes.media")
synthetic = pack_module("harmony_core.train.synthetic")

WIDGETS = {k: v for k, v in SAMPLER_WIDGETS.items() if k != "batch"}
HIDDEN = {io.Hidden.unique_id: "9"}


@pytest.fixture
def positive(demo_text):
    return demo_text[0]


def impact_clip(seed: int = 3, shift_frames: int = 0) -> tuple[torch.Tensor, dict, Fraction]:
    """(IMAGE [F, H, W, 3], AUDIO, fps) of a synthetic impact scene, its sound moved by `shift_frames`."""
    clip = synthetic.make_clip(seed, synthetic.SceneSpec(kind="impact"))
    wave = clip.wave.float().flatten()
    shift = round(shift_frames * clip.sample_rate / float(clip.fps))
    if shift > 0:
        wave = torch.cat([wave.new_zeros(shift), wave[:-shift]])
    audio = {"waveform": wave.reshape(1, 1, -1), "sample_rate": clip.sample_rate}
    return clip.frames.float(), audio, clip.fps


def score(**inputs):
    return run_node(takes_nodes.HarmonySyncScore, **{"fps": 25.0, "max_lag": 8, **inputs}).args


def test_sync_score_ranks_a_clip_above_its_late_sound_and_finds_the_lag():
    images, audio, fps = impact_clip()
    in_sync, lag0, report, plot = score(images=images, audio=audio, fps=float(fps))
    late = score(images=images, **{"audio": impact_clip(shift_frames=3)[1]}, fps=float(fps))
    assert in_sync > late[0]
    assert lag0 == 0.0 and late[1] == pytest.approx(3 / float(fps))  # positive: the sound comes late
    assert "in sync" in report.lower() or "lag" in report.lower()
    assert plot.shape[0] == 1 and plot.shape[-1] == 3 and 0 <= plot.min() and plot.max() <= 1


def test_sync_score_reads_a_video_and_refuses_one_without_sound():
    images, audio, fps = impact_clip()
    video = InputImpl.VideoFromComponents(Types.VideoComponents(images=images, frame_rate=fps, audio=audio))
    assert score(video=video)[0] == pytest.approx(score(images=images, audio=audio)[0], abs=1e-6)
    silent = InputImpl.VideoFromComponents(Types.VideoComponents(images=images, frame_rate=fps, audio=None))
    with pytest.raises(ValueError, match="no sound"):
        score(video=silent)
    with pytest.raises(ValueError, match="images and audio"):
        score(images=images)


def test_sync_score_names_non_finite_samples():
    images, audio, _ = impact_clip()
    bad = audio["waveform"].clone()
    bad[0, 0, :5] = float("nan")
    with pytest.raises(ValueError, match="HarmonySyncScore: .*5"):
        score(images=images, audio={**audio, "waveform": bad})


def best_of(model, codecs, positive, takes: int, **over):
    return run_node(takes_nodes.HarmonyBestOfTakes, hidden=HIDDEN, model=model, codecs=codecs, positive=positive,
                    takes=takes, **{**WIDGETS, **over}).args


def sampler_take(model, codecs, positive, seed: int):
    latent = run_node(sampling.HarmonySampler, hidden=HIDDEN, model=model, codecs=codecs, positive=positive,
                      **{**SAMPLER_WIDGETS, "seed": seed})[0]
    images, audio, _ = run_node(media.HarmonyDecode, codecs=codecs, latent=latent).args
    return images[0], audio[0]


def test_best_of_takes_ranks_takes_of_consecutive_seeds(demo_model, demo_codecs, positive, monkeypatch):
    seen = []
    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", lambda v, t, p, node_id=None: seen.append((v, t)))
    monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL", 0.0)
    best_images, best_audio, fps, all_images, all_audio, report, plot = best_of(
        demo_model, demo_codecs, positive, 3, steps=2, seed=40)
    bar = list(seen)
    rows = [line.split() for line in report.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    assert sorted(int(r[2]) for r in rows) == [40, 41, 42]
    scores = [float(r[3]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert len(all_images) == len(all_audio) == 3 and fps == 25.0
    assert torch.equal(best_images, all_images[0]) and plot.shape[0] == 1
    # each take is exactly what HarmonySampler + HarmonyDecode make with that seed
    for rank, row in enumerate(rows):
        images, audio = sampler_take(demo_model, demo_codecs, positive, int(row[2]))
        assert torch.equal(all_images[rank], images) and torch.equal(all_audio[rank]["waveform"], audio["waveform"])
    # one bar over takes x steps, each take starting where the last one ended (repeats are throttled away)
    assert bar == [(v, 6) for v in range(7)]


def test_best_of_takes_stops_between_takes_when_interrupted(demo_model, demo_codecs, positive, monkeypatch):
    steps = []

    def hook(value, total, preview, node_id=None):
        steps.append(value)
        if value == 2:  # the last step of take 1
            mm.interrupt_current_processing()

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL", 0.0)
    with pytest.raises(mm.InterruptProcessingException):
        best_of(demo_model, demo_codecs, positive, 4, steps=2)
    assert max(steps) == 2  # take 2 never started
    assert not mm.processing_interrupted()


def test_best_of_takes_checks_its_inputs_before_any_take(demo_model, demo_codecs, positive):
    with pytest.raises(ValueError, match="takes = 21 is outside its range 1..20"):
        best_of(demo_model, demo_codecs, positive, 21)
    with pytest.raises(ValueError, match="audio_cond: mode 'audio_driven'"):
        best_of(demo_model, demo_codecs, positive, 2, mode="audio_driven")
