"""UniAVGen's guidance on our sampler: schedule, task flags per mode, MA-CFG range, calls and arithmetic."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harmony_core.passes import PassFlags
from harmony_core.sampling import (
    AV,
    MACFG,
    Guidance,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    audio_driven,
    guidance_for,
    guided_velocity,
    joint,
    plan_flags,
    plan_passes,
    sample,
    uniavgen_sigmas,
    uniavgen_task,
    uniavgen_timesteps,
    video_driven,
)

B, CV, TV, H, W, CA, TA = 2, 3, 4, 2, 3, 5, 8
OFF = PassFlags(a2v=False, v2a=False)
SLG = (11,)


def _reference_timesteps(steps, shift):
    """The reference's arithmetic written out: numpy float32 linspace + [0], shifted in float32 tensors."""
    out = []
    for t in list(np.linspace(1000, 1, steps, dtype=np.float32)) + [0.0]:
        u = torch.tensor([t], dtype=torch.float32) / 1000
        out.append(shift * u / (1 + (shift - 1) * u) * 1000)
    return torch.cat(out)


@pytest.mark.parametrize("steps", [1, 2, 4, 30, 50, 51])
@pytest.mark.parametrize("shift", [1.0, 3.0, 5.0])
def test_timesteps_are_the_references_bit_for_bit(steps, shift):
    ts = uniavgen_timesteps(steps, shift)
    assert ts.dtype == torch.float32 and ts.shape == (steps + 1,)
    assert torch.equal(ts, _reference_timesteps(steps, shift))


def test_timesteps_default_and_param_dtype():
    ts = uniavgen_timesteps()
    assert ts.shape == (51,) and ts[0] == 1000 and ts[-1] == 0 and abs(float(ts[1]) - 995.85) < 0.01
    assert float(uniavgen_timesteps(dtype=torch.bfloat16)[1]) == 996.0  # the released bf16 pipeline's value


def test_sigmas_are_the_timesteps_over_1000():
    ts, sig = uniavgen_timesteps(50, 5.0), uniavgen_sigmas(50, 5.0)
    assert sig.dtype == torch.float32 and sig[0] == 1 and sig[-1] == 0
    assert bool((sig[1:] <= sig[:-1]).all())
    assert torch.equal(sig * 1000, ts)  # a model adapter recovers the reference's t exactly (fp32 default)


@pytest.mark.parametrize("steps", [0, -1, 2.0])
def test_bad_steps_are_rejected(steps):
    with pytest.raises(ValueError, match="steps"):
        uniavgen_timesteps(steps)


# mode, reference audio -> task, cond flags, uncond flags in the MA-CFG steps, uncond flags afterwards
TASKS = [
    ("joint", False, "avg", PassFlags(), PassFlags(False, False, SLG), PassFlags(True, True, SLG)),
    ("joint", True, "ravg", PassFlags(v2a=False), PassFlags(False, False, SLG), PassFlags(True, True, SLG)),
    ("audio_driven", False, "a2v", PassFlags(v2a=False), PassFlags(False, False, SLG), PassFlags(True, False, SLG)),
    ("audio_driven", True, "a2v", PassFlags(v2a=False), PassFlags(False, False, SLG), PassFlags(True, False, SLG)),
    ("video_driven", False, "v2a", PassFlags(a2v=False), PassFlags(False, False, SLG), PassFlags(False, True, SLG)),
    ("video_driven", True, "v2a", PassFlags(a2v=False), PassFlags(False, False, SLG), PassFlags(False, True, SLG)),
]
MODES = {
    "joint": lambda: joint(TV, TA, reference=torch.randn(1, CV, 1, H, W)),
    "audio_driven": lambda: audio_driven(torch.randn(1, CA, TA), TV, reference=torch.randn(1, CV, 1, H, W)),
    "video_driven": lambda: video_driven(torch.randn(1, CV, TV, H, W), TA),
}


@pytest.mark.parametrize("mode_name,ref_audio,task,cond,early,late", TASKS)
def test_task_flags_per_mode(mode_name, ref_audio, task, cond, early, late):
    assert uniavgen_task(mode_name, ref_audio) == task
    macfg = MACFG(reference_audio=ref_audio)
    assert macfg.flags(mode_name, 24, 50) == (cond, early)
    assert macfg.flags(mode_name, 25, 50) == (cond, late)
    plan = plan_flags(Guidance(macfg=MACFG(reference_audio=ref_audio)), MODES[mode_name](), 4)
    assert plan == [{"J": cond, "U": early}] * 2 + [{"J": cond, "U": late}] * 2


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="joint, audio_driven, video_driven"):
        uniavgen_task("continuation")


@pytest.mark.parametrize("fraction,steps,expected", [(0.5, 50, 25), (0.5, 4, 2), (0.5, 5, 2), (0.0, 10, 0),
                                                     (1e4, 10, 10), (0.29, 100, 28)])
def test_macfg_range_is_int_of_fraction_times_steps(fraction, steps, expected):
    """Step i runs the interaction-free uncond pass iff i < int(macfg_prop * steps), the reference's test
    (0.29 * 100 = 28.999999999999996 -> 28 steps, where k / steps < 0.29 would give 29)."""
    plan = plan_flags(Guidance(macfg=MACFG(macfg_fraction=fraction)), MODES["joint"](), steps)
    assert [k for k, f in enumerate(plan) if f["U"] == PassFlags(False, False, SLG)] == list(range(expected))


def test_guidance_kinds_and_passes():
    assert Guidance().kind == "synccfg" and Guidance(macfg=MACFG()).kind == "uniavgen"
    assert plan_passes(Guidance(macfg=MACFG()), MODES["joint"](), 3) == [("J", "U")] * 3
    assert plan_passes(Guidance(macfg=MACFG(1.0, 1.0)), MODES["joint"](), 2) == [("J",)] * 2
    # v2a: the video is held, so only the audio scale asks for the uncond pass
    assert plan_passes(Guidance(macfg=MACFG(3.0, 1.0)), MODES["video_driven"](), 2) == [("J",)] * 2
    assert plan_passes(Guidance(macfg=MACFG(1.0, 2.0)), MODES["video_driven"](), 2) == [("J", "U")] * 2
    assert plan_flags(Guidance(), MODES["joint"](), 2) == [{"J": PassFlags(), "AD": PassFlags(),
                                                             "VD": PassFlags()}] * 2


def test_guidance_for_names_a_kind():
    assert guidance_for("uniavgen").macfg == MACFG()
    assert guidance_for("uniavgen", macfg=MACFG(macfg_fraction=1.0)).macfg.macfg_fraction == 1.0
    g = guidance_for("synccfg", sync=SyncCFG(2.0, 2.0))
    assert g.macfg is None and g.sync.video_scale == 2.0
    with pytest.raises(ValueError, match="accepted: synccfg, uniavgen"):
        guidance_for("macfg")
    with pytest.raises(ValueError, match="takes only MACFG"):
        guidance_for("uniavgen", sync=SyncCFG())
    with pytest.raises(ValueError, match="takes no MACFG"):
        guidance_for("synccfg", macfg=MACFG())


def test_text_cfg_with_macfg_is_refused():
    with pytest.raises(ValueError, match="TextCFG scales to 1"):
        Guidance(macfg=MACFG(), text=TextCFG(2.0, 1.0))


@pytest.mark.parametrize("kwargs,match", [({"video_scale": float("nan")}, "video_scale"),
                                          ({"macfg_fraction": -0.1}, "macfg_fraction"),
                                          ({"skip_blocks": [11]}, "skip_blocks"),
                                          ({"skip_blocks": (-1,)}, "skip_blocks")])
def test_bad_macfg_values_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MACFG(**kwargs)


class FlagStub:
    """Row-wise denoiser with the `flags` keyword; records (rows, cond, flags or None when not passed)."""

    def __init__(self):
        self.calls = []

    def __call__(self, video, audio, t_video, t_audio, cond, **kw):
        flags = kw.get("flags")
        self.calls.append((video.shape[0], cond.tolist(), flags))
        n = video.shape[0]
        off = 0.0 if flags is None else 0.3 * (not flags.a2v) + 0.2 * (not flags.v2a) + 0.1 * len(flags.skip_blocks)
        out_v = torch.tanh(video) + 1.1 * cond.view(n, 1, 1, 1, 1) + off + t_video.view(n, 1, -1, 1, 1)
        out_a = torch.sin(audio) - 1.3 * cond.view(n, 1, 1) - off + t_audio.view(n, 1, -1)
        return out_v, out_a


def test_passes_with_different_flags_are_separate_calls():
    stub = FlagStub()
    mode = MODES["joint"]()
    noise = (torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA))
    sample(stub, *noise, mode, Guidance(macfg=MACFG()), uniavgen_sigmas(4))
    flags = [c[2] for c in stub.calls]
    assert [c[0] for c in stub.calls] == [B] * 8 and [c[1] for c in stub.calls] == [[0] * B, [1] * B] * 4
    assert flags == [None, PassFlags(False, False, SLG)] * 2 + [None, PassFlags(True, True, SLG)] * 2


def test_equal_flags_share_one_call():
    """Without SLG the late uncond pass has the cond pass's flags: one call of 2B rows, no flags keyword."""
    stub = FlagStub()
    noise = (torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA))
    sample(stub, *noise, MODES["joint"](), Guidance(macfg=MACFG(skip_blocks=())), uniavgen_sigmas(4))
    assert [(c[0], c[2]) for c in stub.calls] == [(B, None), (B, OFF)] * 2 + [(2 * B, None)] * 2


def test_harmony_guidance_stays_one_call_without_flags():
    """A denoiser written before `flags` existed (no keyword) still serves SyncCFG: one call per step."""
    calls = []

    def legacy(video, audio, t_video, t_audio, cond):
        calls.append(video.shape[0])
        return torch.tanh(video), torch.cos(audio)

    guidance = Guidance(anchors=SyncAnchors(torch.zeros(1, CA, TA), torch.zeros(1, CV, TV, H, W)))
    sample(legacy, torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA), joint(TV, TA), guidance,
           uniavgen_sigmas(3))
    assert calls == [3 * B] * 3


@pytest.mark.parametrize("mode_name", list(MODES))
def test_combination_is_uncond_plus_scale_times_difference(mode_name):
    mode = MODES[mode_name]()
    x = mode.impose(AV(torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA)))
    sigma = mode.token_sigmas(0.6, x)
    guidance = Guidance(macfg=MACFG(3.0, 2.0))
    flags = plan_flags(guidance, mode, 4)[1]
    out = guided_velocity(FlagStub(), x, sigma, guidance, ("J", "U"), flags)
    stub = FlagStub()
    cond = stub(x.video, x.audio, sigma.video, sigma.audio, torch.zeros(B, dtype=torch.long), flags=flags["J"])
    unc = stub(x.video, x.audio, sigma.video, sigma.audio, torch.ones(B, dtype=torch.long), flags=flags["U"])
    assert torch.equal(out.video, unc[0] + 3.0 * (cond[0] - unc[0]))
    assert torch.equal(out.audio, unc[1] + 2.0 * (cond[1] - unc[1]))


def test_audio_driven_with_a_generated_tail():
    """UniAVGen's A2V: a driving mel shorter than the clip; the tail frames are generated."""
    audio = torch.randn(1, CA, TA - 3)
    mode = audio_driven(audio, TV, audio_frames=TA)
    assert mode.audio_mask.tolist() == [[0.0] * (TA - 3) + [1.0] * 3] and mode.generates_audio
    assert torch.equal(mode.audio_clean[:, :, : TA - 3], audio) and mode.audio_clean.shape == (1, CA, TA)
    assert mode.token_sigmas(0.5, AV(torch.zeros(1, CV, TV, H, W), torch.zeros(1, CA, TA))).audio.tolist() \
        == [[0.0] * (TA - 3) + [0.5] * 3]
    plain = audio_driven(audio, TV)
    assert plain.audio_clean is audio and not plain.generates_audio
    with pytest.raises(ValueError, match="audio_frames"):
        audio_driven(audio, TV, audio_frames=TA - 4)
