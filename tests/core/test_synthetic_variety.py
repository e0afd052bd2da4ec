"""Training-only scene variety: the standard stream is untouched, and each departure does what it says."""
from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from harmony_core.metrics.events import motion_energy
from harmony_core.train.cli import add_train_arguments, train_config
from harmony_core.train.synthetic import SceneSpec, clip_seed, make_clip
from harmony_core.train.synthetic_audio import Syllable, voice_sound
from harmony_core.train.synthetic_families import BEEP_PITCH_HZ, beep_sound, light_intensity, render_light
from harmony_core.train.synthetic_scenes import (BACKGROUNDS, FLOORS, OBJECT_COLOURS, BouncingObject,
                                                 render_impact)
from harmony_core.train.synthetic_variety import (FREE_BEEP_HZ, JITTER, PLAIN_VOICE_F0, STANDARD, draw_variation,
                                                  pitch_word)

FLAGS = ("plain_landing", "bare_lamp", "free_beep", "plain_voice", "jitter")


def _same(a, b) -> bool:
    return (torch.equal(a.frames, b.frames) and torch.equal(a.wave, b.wave)
            and (a.video_caption, a.audio_caption, a.transcript, a.event_times)
            == (b.video_caption, b.audio_caption, b.transcript, b.event_times))


def test_no_variety_is_the_standard_clip_and_bad_values_are_refused() -> None:
    assert draw_variation(123, 0.0) is STANDARD
    for kind in ("impact", "speaker", "drum", "flash", "still"):
        seeds = [clip_seed(5, i) for i in range(40)]
        plain = [s for s in seeds if not any(getattr(draw_variation(s, 0.35), f) for f in FLAGS)][:2]
        assert plain, "p = 0.35 leaves about 12 % of clips standard"
        for seed in plain:  # the departures draw from a generator of their own
            assert _same(make_clip(seed, SceneSpec(kind=kind, variety=0.35)), make_clip(seed, SceneSpec(kind=kind)))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="variety"):
            SceneSpec(variety=bad)


def test_each_departure_is_drawn_with_its_probability() -> None:
    draws = [draw_variation(clip_seed(9, i), 0.3) for i in range(2000)]
    for flag in FLAGS:  # binomial(2000, 0.3): sd 0.010, so +-0.04 is 4 sd
        share = sum(getattr(v, flag) for v in draws) / len(draws)
        assert abs(share - 0.3) < 0.04, (flag, share)
    assert all(getattr(draw_variation(1, 1.0), f) for f in FLAGS)


def _extent(frames: torch.Tensor, rgb: tuple[float, float, float]) -> torch.Tensor:
    """[F] number of rows showing the colour `rgb`."""
    mask = (frames - torch.tensor(rgb)).abs().sum(-1) < 0.05          # [F, H, W]
    return mask.any(-1).sum(-1)


def test_a_plain_landing_squashes_without_splash_or_brightening() -> None:
    ball = BouncingObject("circle", "red", 32.0, 11.0, (0.5, 1.3, 2.1), 0.6, 0.6)
    plain = render_impact([ball], "grey", "brown", 61, 64, 64, 25.0, plain=True)
    standard = render_impact([ball], "grey", "brown", 61, 64, 64, 25.0)
    palette = torch.tensor([BACKGROUNDS["grey"], FLOORS["brown"], OBJECT_COLOURS["red"]])
    assert bool((plain.amax(dim=(0, 1, 2)) <= palette.amax(0) + 1e-6).all())     # nothing brighter
    assert not bool((standard.amax(dim=(0, 1, 2)) <= palette.amax(0) + 1e-6).all())  # splash and flash
    floor_rows = plain[:, 58:]
    assert torch.equal(floor_rows, floor_rows[:1].expand_as(floor_rows))         # the floor never changes
    extent = _extent(plain, OBJECT_COLOURS["red"])
    for t_e in ball.impacts:                                                      # squashed on frame k
        k = math.ceil(t_e * 25)
        assert extent[k] < extent[k - 1] and extent[k] <= extent[k + 1], (k, extent[k - 1:k + 2])


def test_a_bare_lamp_is_the_shape_alone() -> None:
    intensity = light_intensity((0.3, 1.1), (0.1, 0.1), 41, 25.0)
    frames = render_light(intensity, "green", "circle", "beige", 64, 64, bare=True)
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    outside = (xs - 32).pow(2) + (ys - 64 * 0.42).pow(2) > (13.0 + 1.0) ** 2       # beyond the lamp's edge
    wall = torch.tensor(BACKGROUNDS["beige"])
    assert bool(((frames[:, outside] - wall).abs() < 1e-6).all())                  # no stand, no halo
    standard = render_light(intensity, "green", "circle", "beige", 64, 64)
    assert not bool(((standard[:, outside] - wall).abs() < 1e-6).all())
    brightness = frames[:, ~outside].mean((1, 2))                                  # [F] the lamp itself
    assert float(brightness.max() - brightness.min()) > 0.2                       # lights up when on,
    assert float(torch.corrcoef(torch.stack([brightness, intensity]))[0, 1]) > 1 - 1e-5  # affine in intensity


def _peak_hz(wave: torch.Tensor, sample_rate: int) -> float:
    spectrum = torch.fft.rfft(wave).abs()
    return float(spectrum.argmax()) * sample_rate / wave.shape[0]


def test_a_free_beep_sounds_at_its_own_pitch_and_the_caption_names_it() -> None:
    wave = beep_sound([0.2, 1.0], [0.5, 0.5], "red", 16000, 32000, pitch_hz=777.0)
    assert abs(_peak_hz(wave, 16000) - 777.0) <= 0.5                              # bin width 0.5 Hz
    assert abs(_peak_hz(beep_sound([0.2, 1.0], [0.5, 0.5], "red", 16000, 32000), 16000)
               - BEEP_PITCH_HZ["red"]) <= 0.5
    seen = 0
    for i in range(30):
        seed = clip_seed(2, i)
        if not draw_variation(seed, 0.5).free_beep:
            continue
        clip = make_clip(seed, SceneSpec(kind="flash", variety=0.5))
        pitch = _peak_hz(clip.wave, 16000)
        assert FREE_BEEP_HZ[0] - 5 <= pitch <= FREE_BEEP_HZ[1] + 5
        assert clip.audio_caption.startswith(pitch_word(pitch) + " "), (pitch, clip.audio_caption)
        seen += 1
    assert seen >= 5


def test_a_plain_voice_has_no_consonant_bursts_and_its_own_pitch_range() -> None:
    syllables = [Syllable(0.2 + 0.4 * i, 0.02, 0.06, 0.15, 0.9, "a") for i in range(4)]

    def burst_ratio(plain: bool) -> float:
        wave = voice_sound(syllables, 120.0, 16000, 32000, np.random.default_rng(0), plain=plain)
        starts = [round(s.onset * 16000) for s in syllables]
        early = sum(float(wave[s:s + 48].pow(2).mean()) for s in starts)          # first 3 ms
        held = sum(float(wave[s + 480:s + 800].pow(2).mean()) for s in starts)    # 30-50 ms in
        return early / held

    # the attack ramp reaches 3/20 of full level at 3 ms: a buzz alone keeps early/held below (0.15)^2
    assert burst_ratio(True) < 0.15 ** 2 < 1.0 < burst_ratio(False)
    var = draw_variation(4, 1.0)
    assert all(PLAIN_VOICE_F0[0] <= var.voice_f0(200.0) <= PLAIN_VOICE_F0[1] for _ in range(20))
    assert STANDARD.voice_f0(200.0) == 200.0


def test_jittered_events_stay_inside_their_frame_and_still_show_there() -> None:
    offsets = []
    for i in range(6):
        clip = make_clip(clip_seed(8, i), SceneSpec(kind="drum", variety=1.0))
        energy = motion_energy(clip.frames)
        for t_e in clip.event_times:
            k = math.ceil(t_e * 25)
            offsets.append(k - t_e * 25)
            assert energy[k] > energy[k - 1], (clip.seed, t_e)                    # the hit shows on frame k
            s = round(t_e * 16000)
            assert clip.wave[s:s + 160].pow(2).mean() > 1.5 * clip.wave[s - 160:s].pow(2).mean()
    assert all(JITTER[0] <= o <= JITTER[1] for o in offsets)
    assert max(offsets) - min(offsets) > 0.4                                       # not all half-way


def test_train_cli_passes_both_varieties_to_the_data() -> None:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--out", "x", "--variety", "0.35", "--cond-variety", "0.5"])
    assert train_config(args).data.spec.variety == 0.35 and train_config(args).data.cond_variety == 0.5
    default = train_config(parser.parse_args(["--out", "x"])).data
    assert default.spec.variety == 0.0 and default.cond_variety == 0.0
