"""Guidance: which passes run, how they are batched, and the combination arithmetic (Eq. 9/10 + text CFG)."""
from __future__ import annotations

import itertools

import pytest
import torch

from harmony_core.sampling import (
    AV,
    Guidance,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    audio_driven,
    guided_velocity,
    joint,
    plan_passes,
    video_driven,
)
from harmony_core.sampling.guidance import check_anchors

B, CV, TV, H, W, CA, TA = 2, 3, 4, 2, 3, 5, 8


class RowStub:
    """Row-wise nonlinear denoiser: each row's output depends only on that row's inputs; records calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, video, audio, t_video, t_audio, cond):
        self.calls.append((video.clone(), audio.clone(), t_video.clone(), t_audio.clone(), cond.clone()))
        n = video.shape[0]
        a_mean = audio.mean(dim=(1, 2)).view(n, 1, 1, 1, 1)
        v_mean = video.mean(dim=(1, 2, 3, 4)).view(n, 1, 1)
        out_v = (torch.tanh(video) + 0.3 * a_mean + 0.7 * t_video.view(n, 1, TV, 1, 1)
                 + 1.1 * cond.view(n, 1, 1, 1, 1))
        out_a = torch.sin(audio) - 0.2 * v_mean + 0.5 * t_audio.view(n, 1, TA) - 1.3 * cond.view(n, 1, 1)
        return out_v, out_a


def _latents():
    return AV(torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA))


def _anchors():
    return SyncAnchors(mute_audio=torch.full((1, CA, TA), -0.4),
                       static_video=torch.full((1, CV, TV, H, W), 0.6))


MODES = {
    "joint": lambda: joint(TV, TA),
    "joint_ref": lambda: joint(TV, TA, reference=torch.randn(B, CV, 1, H, W)),
    "audio_driven": lambda: audio_driven(torch.randn(B, CA, TA), TV),
    "video_driven": lambda: video_driven(torch.randn(B, CV, TV, H, W), TA),
}


def _reference(stub, x, t, anchors, s_v, s_a, g_v, g_a):
    """Expected guided velocity, from one stub call per pass and the printed formulas."""
    cond0, cond1 = torch.zeros(B, dtype=torch.long), torch.ones(B, dtype=torch.long)
    j = stub(x.video, x.audio, t.video, t.audio, cond0)
    u = stub(x.video, x.audio, t.video, t.audio, cond1)
    ad = stub(x.video, anchors.mute_audio.expand(B, -1, -1), t.video, torch.zeros_like(t.audio), cond0)
    static = anchors.static_video.expand(B, -1, -1, -1, -1)
    vd = stub(static, x.audio, torch.zeros_like(t.video), t.audio, cond0)
    # Eq. 9 / 10 as printed: AD + s (J - AD), then text CFG on top
    video = ad[0] + s_v * (j[0] - ad[0]) + (g_v - 1) * (j[0] - u[0])
    audio = vd[1] + s_a * (j[1] - vd[1]) + (g_a - 1) * (j[1] - u[1])
    return AV(video, audio)


@pytest.mark.parametrize("mode_name", list(MODES))
@pytest.mark.parametrize("s_v,s_a,g_v,g_a",
                         list(itertools.product([1.0, 3.0], [1.0, 2.0], [1.0, 4.0], [1.0, 2.5])))
def test_passes_and_arithmetic(mode_name, s_v, s_a, g_v, g_a):
    mode = MODES[mode_name]()
    guidance = Guidance(sync=SyncCFG(s_v, s_a), text=TextCFG(g_v, g_a), anchors=_anchors())
    x = mode.impose(_latents())
    t = mode.token_sigmas(0.7, x)
    gen_v, gen_a = mode.generates_video, mode.generates_audio
    expected_passes = ("J",) + (("U",) if (g_v != 1 and gen_v) or (g_a != 1 and gen_a) else ()) \
        + (("AD",) if s_v != 1 and gen_v else ()) + (("VD",) if s_a != 1 and gen_a else ())
    passes = guidance.passes(0.5, gen_v, gen_a)
    assert passes == expected_passes

    stub = RowStub()
    out = guided_velocity(stub, x, t, guidance, passes)
    assert len(stub.calls) == 1 and stub.calls[0][0].shape[0] == len(passes) * B
    ref = _reference(RowStub(), x, t, guidance.anchors, s_v, s_a, g_v, g_a)
    if gen_v:
        torch.testing.assert_close(out.video, ref.video, rtol=1e-5, atol=1e-5)
    if gen_a:
        torch.testing.assert_close(out.audio, ref.audio, rtol=1e-5, atol=1e-5)


def test_batch_rows_are_pass_major():
    mode = joint(TV, TA)
    guidance = Guidance(sync=SyncCFG(3.0, 2.0), text=TextCFG(5.0, 1.0), anchors=_anchors())
    x = _latents()
    t = mode.token_sigmas(0.4, x)
    stub = RowStub()
    guided_velocity(stub, x, t, guidance, ("J", "U", "AD", "VD"))
    video, audio, t_v, t_a, cond = stub.calls[0]
    assert cond.tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    assert torch.equal(video[:6], torch.cat([x.video] * 3)) and bool((video[6:] == 0.6).all())
    assert torch.equal(audio[:4], torch.cat([x.audio] * 2)) and bool((audio[4:6] == -0.4).all())
    assert torch.equal(audio[6:], x.audio)
    assert bool((t_v[:6] == 0.4).all()) and bool((t_v[6:] == 0).all())
    assert bool((t_a[:4] == 0.4).all()) and bool((t_a[4:6] == 0).all()) and bool((t_a[6:] == 0.4).all())


def test_defaults_are_the_papers():
    g = Guidance()
    assert (g.sync.video_scale, g.sync.audio_scale, g.sync.start, g.sync.end) == (3.0, 2.0, 0.0, 1.0)
    assert (g.text.video_scale, g.text.audio_scale) == (1.0, 1.0)
    assert g.passes(0.0, True, True) == ("J", "AD", "VD")


def test_sync_range_limits_extra_passes():
    guidance = Guidance(sync=SyncCFG(start=0.25, end=0.5), text=TextCFG(2.0, 2.0, start=0.5, end=1.0))
    plan = plan_passes(guidance, joint(TV, TA), 8)
    assert plan == [("J",)] * 2 + [("J", "AD", "VD")] * 2 + [("J", "U")] * 4


@pytest.mark.parametrize("start,end", [(0.0, 0.0), (0.5, 0.5), (0.7, 0.3), (1.0, 1.0)])
def test_empty_range_runs_no_extra_pass(start, end):
    guidance = Guidance(sync=SyncCFG(start=start, end=end), text=TextCFG(3.0, 3.0, start=start, end=end))
    assert plan_passes(guidance, joint(TV, TA), 10) == [("J",)] * 10


def test_whole_range_covers_every_step():
    plan = plan_passes(Guidance(), joint(TV, TA), 40)
    assert plan == [("J", "AD", "VD")] * 40


def test_enabled_is_half_open():
    g = SyncCFG(start=0.25, end=0.75)
    assert [g.enabled(f) for f in (0.0, 0.25, 0.5, 0.75, 0.9)] == [False, True, True, False, False]


def test_driven_modes_skip_the_held_modalitys_negative():
    assert plan_passes(Guidance(), audio_driven(torch.zeros(1, CA, TA), TV), 2) == [("J", "AD")] * 2
    assert plan_passes(Guidance(), video_driven(torch.zeros(1, CV, TV, H, W), TA), 2) == [("J", "VD")] * 2


def test_missing_anchor_is_a_clear_error():
    x = _latents()
    plan = plan_passes(Guidance(), joint(TV, TA), 3)
    with pytest.raises(ValueError, match="mute_audio"):
        check_anchors(Guidance(anchors=SyncAnchors(static_video=torch.zeros(1, CV, TV, H, W))), plan, x)
    with pytest.raises(ValueError, match="static_video"):
        check_anchors(Guidance(anchors=SyncAnchors(mute_audio=torch.zeros(1, CA, TA))), plan, x)
    with pytest.raises(ValueError, match="must match"):
        bad = SyncAnchors(torch.zeros(1, CA, TA + 1), torch.zeros(1, CV, TV, H, W))
        check_anchors(Guidance(anchors=bad), plan, x)
    off = Guidance(sync=SyncCFG(1.0, 1.0))
    check_anchors(off, plan_passes(off, joint(TV, TA), 3), x)  # no SyncCFG pass: no anchor needed


@pytest.mark.parametrize("kwargs", [{"video_scale": float("nan")}, {"start": -0.1}, {"end": 1.5},
                                    {"audio_scale": float("inf")}])
def test_bad_guider_values_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SyncCFG(**kwargs)
    with pytest.raises(ValueError):
        TextCFG(**kwargs)


def test_guided_velocity_rejects_a_plan_without_joint_pass():
    x = _latents()
    with pytest.raises(ValueError, match="joint"):
        t = joint(TV, TA).token_sigmas(0.5, x)
        guided_velocity(RowStub(), x, t, Guidance(anchors=_anchors()), ("AD",))
