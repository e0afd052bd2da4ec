"""Synthetic audio-visual data: determinism, layout, captions without timing, events that match the render."""
from __future__ import annotations

import math
import re
import sys
from dataclasses import replace
from fractions import Fraction

import pytest
import torch

from harmony_core.metrics.events import audio_onsets, motion_energy, visual_events
from harmony_core.train.synthetic import (KINDS, SceneSpec, SyntheticClips, clip_seed, make_clip, stream_clip,
                                          synthetic_batches)
from harmony_core.train.synthetic_audio import NOISE_FLOOR
from harmony_core.train.synthetic_captions import BOUNCE_VERBS, SHAPE_NOUNS
from harmony_core.train.synthetic_scenes import FACE_COLOURS, OBJECT_COLOURS

TIMING_WORDS = {"when", "while", "time", "times", "once", "twice", "thrice", "first", "second", "seconds",
                "third", "last", "then", "after", "before", "later", "early", "earlier", "start", "starts",
                "begin", "beginning", "end", "ends", "until", "frame", "frames", "ms", "sec", "s", "moment",
                "at", "during", "beat", "every", "each"}


@pytest.fixture(scope="module")
def clips() -> dict[str, list]:
    return {kind: [make_clip(clip_seed(11, i), SceneSpec(kind=kind)) for i in range(12)] for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_clip_and_different_seed_differs(kind: str) -> None:
    spec = SceneSpec(kind=kind)
    a, b, c = make_clip(5, spec), make_clip(5, spec), make_clip(6, spec)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.wave, b.wave)
    assert (a.video_caption, a.audio_caption, a.transcript, a.event_times) == (
        b.video_caption, b.audio_caption, b.transcript, b.event_times)
    assert not torch.equal(a.wave, c.wave) and not torch.equal(a.frames, c.frames)


@pytest.mark.parametrize("kind", KINDS)
def test_default_layout_and_ranges(kind: str) -> None:
    clip = make_clip(3, SceneSpec(kind=kind))
    assert clip.frames.shape == (81, 64, 64, 3) and clip.frames.dtype == torch.float32
    assert clip.wave.shape == (51840,) and clip.wave.dtype == torch.float32  # 3.24 s at 16 kHz
    assert clip.fps == Fraction(25) and clip.sample_rate == 16000 and clip.kind == kind
    assert 0.0 <= float(clip.frames.min()) and float(clip.frames.max()) <= 1.0
    assert float(clip.wave.abs().max()) <= 1.0
    assert (len(clip.event_times) >= 1) == (kind != "still")
    assert list(clip.event_times) == sorted(clip.event_times)
    assert all(0.0 < t < 3.24 for t in clip.event_times)
    if kind == "speaker":
        assert clip.mouth is not None
    elif kind != "still":
        assert clip.mouth is None


def test_other_sizes_and_rates() -> None:
    spec = SceneSpec(kind="speaker", num_frames=97, height=48, width=80, fps=24, sample_rate=22050)
    clip = make_clip(0, spec)
    assert clip.frames.shape == (97, 48, 80, 3) and clip.fps == Fraction(24)
    assert clip.wave.shape == (round(Fraction(97, 24) * 22050),)
    impact = make_clip(0, SceneSpec(num_frames=97, height=48, width=80, fps=24, sample_rate=22050))
    assert impact.frames.shape == (97, 48, 80, 3)


@pytest.mark.parametrize("bad", [dict(num_frames=80), dict(kind="dance"), dict(height=16),
                                 dict(max_objects=3), dict(fps=0), dict(num_frames=21)])
def test_bad_spec_is_refused_with_a_clear_error(bad: dict) -> None:
    with pytest.raises(ValueError, match="accepted|must|need"):
        SceneSpec(**bad)


def test_captions_never_say_when(clips: dict[str, list]) -> None:
    for clip in [c for kind in KINDS for c in clips[kind]]:
        for text in (clip.video_caption, clip.audio_caption, clip.transcript):
            assert not re.search(r"\d", text), text
            plain = text.lower().replace("'s ", " ").replace("at all", "")  # "man's" / "no sound at all": no time
            words = set(re.findall(r"[a-z]+", plain))
            assert not words & TIMING_WORDS, (text, words & TIMING_WORDS)
        assert clip.video_caption and clip.audio_caption
    assert all(c.transcript == "" for kind in KINDS if kind != "speaker" for c in clips[kind])
    assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", c.transcript) for c in clips["speaker"])


def test_impact_captions_name_what_is_seen_and_heard() -> None:
    for seed in range(12):
        clip = make_clip(seed, SceneSpec(kind="impact", max_objects=1))
        colour = clip.video_caption.split()[1]
        shape = next(s for s, nouns in SHAPE_NOUNS.items()
                     if any(f"{colour} {n} " in clip.video_caption for n in nouns))
        assert f"the {colour} {SHAPE_NOUNS[shape][0]} lands with a" in clip.audio_caption
        assert any(f" {v}" in clip.video_caption for v in BOUNCE_VERBS)


FAMILY_WORDS = {"impact": {"ball", "circle", "sphere", "box", "square", "block", "cube", "triangle", "pyramid",
                           "triangular"},
                "speaker": {"face", "head"}, "drum": {"drum"}, "flash": {"light", "lamp", "bulb"}}
STILL_WORDS = {"still", "silent", "silence", "quiet", "motionless", "resting", "untouched", "nothing", "closed"}


def test_every_caption_names_its_family_and_colour_and_only_still_ones_say_still(clips: dict[str, list]) -> None:
    colours = set(OBJECT_COLOURS) | set(FACE_COLOURS)
    for kind in KINDS:
        for clip in clips[kind]:
            words = set(re.findall(r"[a-z]+", clip.video_caption.lower()))
            families = [f for f, fw in FAMILY_WORDS.items() if words & fw]
            assert len(families) == 1 and (kind == "still" or families == [kind]), clip.video_caption
            assert words & colours, clip.video_caption
            assert bool(words & STILL_WORDS) == (kind == "still"), clip.video_caption


def test_still_scenes_are_silent_and_motionless(clips: dict[str, list]) -> None:
    shown = set()
    for clip in clips["still"] + [make_clip(clip_seed(12, i), SceneSpec(kind="still")) for i in range(12)]:
        assert clip.event_times == () and float(motion_energy(clip.frames).max()) == 0.0
        level = float(clip.wave.pow(2).mean().sqrt())
        assert level < 2 * NOISE_FLOOR, level     # the noise floor alone (a drawn clip is ~0.1 RMS)
        shown.add(next(f for f, fw in FAMILY_WORDS.items() if set(clip.video_caption.split()) & fw))
    assert shown == set(FAMILY_WORDS)             # every family appears at rest


def _recall_precision(found: list[float], truth: list[float]) -> tuple[int, int]:
    """(true events found at exactly their time, detections that are no true event)."""
    hits = sum(any(abs(f - t) < 1e-6 for f in found) for t in truth)
    return hits, sum(not any(abs(f - t) < 1e-6 for t in truth) for f in found)


@pytest.mark.parametrize("kind", ["impact", "drum", "flash"])
def test_events_match_the_flash_and_the_strike(clips: dict[str, list], kind: str) -> None:
    counts = {"truth": 0, "visual": [0, 0], "audio": [0, 0]}
    for clip in clips[kind]:
        energy = motion_energy(clip.frames)
        for t_e in clip.event_times:
            k = math.ceil(t_e * 25)  # first frame showing the impact
            assert energy[k] > energy[k - 1] and (k == 80 or energy[k] > energy[k + 1]), (clip.seed, t_e)
            s = round(t_e * 16000)
            before, after = clip.wave[s - 160:s].pow(2).mean(), clip.wave[s:s + 160].pow(2).mean()
            assert after > 1.5 * before, (clip.seed, t_e)
        truth = list(clip.event_times)
        counts["truth"] += len(truth)
        for key, found in (("visual", visual_events(clip.frames, clip.fps)),
                           ("audio", audio_onsets(clip.wave, 16000, clip.fps, 81))):
            hits, false = _recall_precision(found, truth)
            counts[key][0] += hits
            counts[key][1] += false
    for key in ("visual", "audio"):  # detectors see the planted events at the exact frame
        hits, false = counts[key]
        # a lamp switching off is a visible change with no sound onset: one extra visual event per beep
        extra = 1.05 if (kind, key) == ("flash", "visual") else 0.05
        assert hits >= 0.95 * counts["truth"] and false <= extra * counts["truth"], (key, counts)


def test_speaker_mouth_and_voice_open_at_syllable_onsets(clips: dict[str, list]) -> None:
    for clip in clips["speaker"]:
        for t_s in clip.event_times:
            k = math.ceil(t_s * 25)
            assert clip.mouth[min(k + 1, 80)] > clip.mouth[k - 1] + 0.2, (clip.seed, t_s)
            s = round(t_s * 16000)
            before, after = clip.wave[s - 800:s].pow(2).mean(), clip.wave[s:s + 800].pow(2).mean()
            assert after > 3.0 * before, (clip.seed, t_s)
        opening = clip.frames[:, 40:52, 24:40].mean(dim=(1, 2, 3))  # mouth region gets darker as it opens
        assert torch.corrcoef(torch.stack([opening, clip.mouth]))[0, 1] < -0.95


def test_batches_and_dataset_agree_and_alternate_kinds() -> None:
    spec = SceneSpec()
    batches = list(synthetic_batches(4, batch_size=3, spec=spec, num_batches=2))
    assert [len(b) for b in batches] == [3, 3]
    flat = [c for b in batches for c in b]
    assert [c.kind for c in flat] == list(KINDS) + list(KINDS[:1])
    dataset = SyntheticClips(4, 6, spec)
    assert len(dataset) == 6
    for i, clip in enumerate(flat):
        assert torch.equal(clip.wave, dataset[i].wave) and clip.seed == clip_seed(4, i)
    only = stream_clip(4, 1, spec, kinds=("impact",))
    assert only.kind == "impact"
    with pytest.raises(IndexError):
        dataset[6]


def _python_calls(seed: int, spec: SceneSpec) -> int:
    """Python and C function calls (torch and numpy ops included) made by one make_clip: a machine-independent
    operation count (its cost in seconds is a figure of harmony_core/bench/cpu.py)."""
    count = 0

    def profile(frame, event, arg) -> None:
        nonlocal count
        count += event in ("call", "c_call")

    sys.setprofile(profile)
    try:
        make_clip(seed, spec)
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize("kind", KINDS)
def test_generation_is_vectorised(kind: str) -> None:
    """Clips are drawn on the fly during training, so rendering must be whole-frame tensor work: the number
    of calls does not grow with the pixel count (equal by construction; 8 calls of slack for size-dependent
    branches, where a loop over the 64 extra rows adds >= 64), at most linearly with the duration (events per
    second are fixed), and stays below one call per pixel row of the clip (5184: a loop over rows or audio
    samples makes at least that many; seeds 0-2 make 440-900)."""
    make_clip(0, SceneSpec(kind=kind))  # imports and caches out of the count
    for seed in range(3):
        spec = SceneSpec(kind=kind)
        base = _python_calls(seed, spec)
        assert _python_calls(seed, replace(spec, height=128, width=128)) <= base + 8, (seed, base)  # 4x px
        longer = replace(spec, num_frames=2 * spec.num_frames - 1)
        assert _python_calls(seed, longer) <= 2.2 * base, (seed, base)
        assert base < spec.num_frames * spec.height, (seed, base)
