"""The dual-tower model on the tiny preset: shapes, determinism, conditioning paths, driven semantics."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harmony_core.config import preset
from harmony_core.model.conditioning import Conditioning, HarmonyDenoiser
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.transcript import FILLER_ID, encode_transcripts, fit_to_length


def _inputs(batch=2, tv=5, ta=31, ref=7):
    g = torch.Generator().manual_seed(3)
    video = torch.randn(batch, 48, tv, 8, 12, generator=g)
    audio = torch.randn(batch, 20, ta, generator=g)
    cond = Conditioning(torch.randn(batch, 6, 32, generator=g), torch.randn(batch, 4, 32, generator=g),
                        encode_transcripts(["hello", "harmony"][:batch]),
                        torch.randn(batch, 20, ref, generator=g) if ref else None)
    return video, audio, torch.rand(batch, tv, generator=g), torch.rand(batch, ta, generator=g), cond


def _trained_like(model):
    """Random non-zero interaction weights so cross-modal paths are live."""
    with torch.no_grad():
        for p in model.interaction.parameters():
            p.normal_(0, 0.2)
    return model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return _trained_like(HarmonyModel(preset("tiny"))).eval()


def test_shapes_and_determinism(model):
    video, audio, tv, ta, cond = _inputs()
    with torch.no_grad():
        out_v, out_a = model(video, audio, tv, ta, cond)
        again_v, again_a = model(video, audio, tv, ta, cond)
    assert out_v.shape == video.shape and out_a.shape == audio.shape
    assert torch.equal(out_v, again_v) and torch.equal(out_a, again_a)
    assert torch.isfinite(out_v).all() and torch.isfinite(out_a).all()


def test_tiny_forward_is_cheap(model):
    """The tiny preset exists so that CPU tests run many forwards: one batch-1 forward must stay under 1e9
    FLOPs (counted by torch, so the same on every machine), i.e. under a second even at a pessimistic
    1 GFLOP/s on one core. It is 5.2e7 now; a preset or forward that grew 20x fails. Its seconds are a
    figure of harmony_core/bench/cpu.py."""
    video, audio, tv, ta, cond = _inputs(batch=1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(video, audio, tv, ta, cond)
    assert 0 < counter.get_total_flops() < 1e9, counter.get_total_flops()


def test_batch_items_are_independent(model):
    video, audio, tv, ta, cond = _inputs()
    with torch.no_grad():
        both_v, both_a = model(video, audio, tv, ta, cond)
        one_v, one_a = model(video[:1], audio[:1], tv[:1], ta[:1], cond.select(torch.tensor([0])))
    torch.testing.assert_close(both_v[:1], one_v, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both_a[:1], one_a, atol=1e-5, rtol=1e-5)


def test_every_condition_reaches_the_output(model):
    video, audio, tv, ta, cond = _inputs(batch=1)
    with torch.no_grad():
        base_v, base_a = model(video, audio, tv, ta, cond)
        changes = {
            "video caption -> video": (Conditioning(cond.video_context + 1, cond.audio_context, cond.transcript,
                                                    cond.ref_audio), 0),
            "audio caption -> audio": (Conditioning(cond.video_context, cond.audio_context + 1, cond.transcript,
                                                    cond.ref_audio), 1),
            "transcript -> audio": (Conditioning(cond.video_context, cond.audio_context,
                                                 encode_transcripts(["other words"]), cond.ref_audio), 1),
            "reference audio -> audio": (Conditioning(cond.video_context, cond.audio_context, cond.transcript,
                                                      cond.ref_audio + 1), 1),
        }
        for name, (changed, which) in changes.items():
            out = model(video, audio, tv, ta, changed)
            assert (out[which] - (base_v, base_a)[which]).abs().max() > 1e-4, name


def test_cross_modal_paths_are_live(model):
    """Audio changes the video prediction and vice versa (through the interaction)."""
    video, audio, tv, ta, cond = _inputs(batch=1)
    with torch.no_grad():
        base_v, base_a = model(video, audio, tv, ta, cond)
        v2, _ = model(video, audio + 1, tv, ta, cond)
        _, a2 = model(video + 1, audio, tv, ta, cond)
    assert (v2 - base_v).abs().max() > 1e-4 and (a2 - base_a).abs().max() > 1e-4


def test_no_interaction_means_independent_towers():
    torch.manual_seed(0)
    model = HarmonyModel(preset("tiny").replace(**{"interaction.kind": "none"})).eval()
    assert len(model.interaction) == 0
    video, audio, tv, ta, cond = _inputs(batch=1)
    with torch.no_grad():
        base_v, _ = model(video, audio, tv, ta, cond)
        v2, _ = model(video, audio + 1, tv, ta, cond)
    assert torch.equal(base_v, v2)


def test_global_baseline_runs_and_has_no_style_module():
    model = HarmonyModel(preset("tiny").replace(**{"interaction.kind": "global"})).eval()
    assert all(block.global_style is None for block in model.interaction.values())
    video, audio, tv, ta, cond = _inputs(batch=1)
    with torch.no_grad():
        out_v, out_a = model(video, audio, tv, ta, cond)
    assert out_v.shape == video.shape and out_a.shape == audio.shape


def test_without_reference_audio(model):
    video, audio, tv, ta, cond = _inputs(batch=1, ref=0)
    with torch.no_grad():
        out_v, out_a = model(video, audio, tv, ta, cond)
    assert out_a.shape == audio.shape


def test_bad_shapes_name_the_input(model):
    video, audio, tv, ta, cond = _inputs(batch=1)
    with pytest.raises(ValueError, match="t_audio"):
        model(video, audio, tv, ta[:, :-1], cond)
    with pytest.raises(ValueError, match="audio latent must be"):
        model(video, audio[:, :10], tv, ta, cond)


def test_denoiser_selects_conditioning_rows(model):
    video, audio, tv, ta, cond = _inputs(batch=2)
    negative = Conditioning(torch.zeros_like(cond.video_context), torch.zeros_like(cond.audio_context),
                            torch.full_like(cond.transcript, FILLER_ID), cond.ref_audio)
    den = HarmonyDenoiser(model, cond, negative)
    rows = torch.tensor([0, 0, 1, 1])
    with torch.no_grad():
        v, a = den(video.repeat(2, 1, 1, 1, 1), audio.repeat(2, 1, 1), tv.repeat(2, 1), ta.repeat(2, 1), rows)
        pos_v, _ = model(video, audio, tv, ta, cond)
        neg_v, _ = model(video, audio, tv, ta, negative)
    torch.testing.assert_close(v[:2], pos_v, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v[2:], neg_v, atol=1e-5, rtol=1e-5)


def test_transcript_fit_pads_and_truncates():
    ids = encode_transcripts(["ab", "abcd"])
    assert ids.tolist() == [[97, 98, FILLER_ID, FILLER_ID], [97, 98, 99, 100]]
    assert fit_to_length(ids, 6)[:, 4:].eq(FILLER_ID).all()
    assert fit_to_length(ids, 3).shape == (2, 3)
    assert encode_transcripts(["你好"]).shape[1] == 6   # UTF-8 bytes: language agnostic


def test_x0_prediction_returns_the_velocity_of_the_towers_output(model):
    """prediction = "x0": the same towers' output is read as clean latents; forward returns (x_t - out) / s
    (s floored at X0_SIGMA_FLOOR), so one Euler step to sigma 0 lands exactly on the towers' output."""
    from harmony_core.model.harmony import X0_SIGMA_FLOOR, velocity_from_x0
    x0_model = HarmonyModel(model.cfg.replace(prediction="x0")).eval()
    x0_model.load_state_dict(model.state_dict())
    video, audio, tv, ta, cond = _inputs()
    tv[:, 1:] = tv[:, 1:].clamp_min(0.1)
    tv[0, 0] = 0.0                                                      # a clean (held) frame: the floor
    with torch.no_grad():
        raw_v, raw_a = model(video, audio, tv, ta, cond)                # velocity model = the towers' output
        vel_v, vel_a = x0_model(video, audio, tv, ta, cond)
    s_v = tv.clamp_min(X0_SIGMA_FLOOR)[:, None, :, None, None]
    torch.testing.assert_close(vel_v, (video - raw_v) / s_v)
    torch.testing.assert_close(vel_a, velocity_from_x0(audio, raw_a, ta[:, None, :]))
    torch.testing.assert_close(video[:, :, 1:] - tv[:, None, 1:, None, None] * vel_v[:, :, 1:], raw_v[:, :, 1:])


def test_prediction_is_stored_and_defaults_to_velocity():
    from harmony_core.config import HarmonyConfig
    cfg = preset("tiny")
    assert cfg.prediction == "velocity" and preset("demo").prediction == "x0"
    assert HarmonyConfig.from_json(cfg.replace(prediction="x0").to_json()).prediction == "x0"
    old = cfg.to_dict()
    del old["prediction"]                                               # files written before the field
    assert HarmonyConfig.from_dict(old).prediction == "velocity"
    with pytest.raises(ValueError, match="prediction"):
        cfg.replace(prediction="eps")
