"""Our sampler with UniAVGen's guidance (MA-CFG + SLG, Euler, shift 5) reproduces UniAVGen's reference
sampler traces step by step: every model call's inputs (latents, timesteps, flags, positive/negative texts) and
the final latents, for the four released tasks. The replay denoiser (uniavgen_trace.py) returns the recorded
model outputs, so only the sampler is under test here.

Tolerance: every comparison uses the fixture README's atol = rtol = 1e-4 (float32). The finals are also held to
a bound derived from the arithmetic: our Euler step uses dt = fl(s_next - s) with s = fl(t / 1000) where the
reference uses fl(fl(t_i - t_next) / 1000), <= 2 ulp(dt) apart (ulp(0.71) = 6e-8); with the guided |v| <= 13
and |x| <= 14 (ulp 9.5e-7) in these traces a step differs by <= 9.5e-7 + 13 * 1.2e-7 = 2.5e-6, and 4 steps
by <= 1e-5 (the replayed velocities do not feed the error back). Measured: <= 9.6e-7. The timesteps match
within 2 float32 roundings (sigma = t / 1000, times 1000 again).
"""
from __future__ import annotations

import pytest
import torch
from uniavgen_trace import CASES, FIXTURE, TraceDenoiser, TraceMismatch, load_trace, run_trace

from harmony_core.sampling import uniavgen_task, uniavgen_timesteps
from harmony_core.sampling.uniavgen import TASK_IDS


FINAL_BOUND = 1e-5  # derived in the module docstring


@pytest.fixture
def traces(parity_dir):
    if not (parity_dir / FIXTURE).is_dir():
        pytest.skip(f"UniAVGen parity fixtures not found at {parity_dir / FIXTURE}")
    return lambda case: load_trace(parity_dir, case)


def _replay(trace, guidance=None, sigmas=None):
    denoiser = TraceDenoiser(trace)
    video, audio = run_trace(trace, denoiser, guidance, sigmas)
    denoiser.finish()
    return denoiser, video, audio


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_sampler_trace(traces, case):
    trace = traces(case)
    denoiser, video, audio = _replay(trace)
    assert sorted(denoiser.errors) == list(range(trace.steps))  # every step's inputs were checked
    errors = trace.check_final(video, audio)
    assert max(errors.values()) <= FINAL_BOUND, errors


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_task_of_our_mode_is_the_traces(traces, case):
    trace = traces(case)
    guidance = trace.guidance()
    assert TASK_IDS[uniavgen_task(trace.mode().name, guidance.macfg.reference_audio)] == trace.meta["task"]


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_schedule_is_the_traces(traces, case):
    trace = traces(case)
    recorded = torch.cat([trace.tensors[f"step{i}.cond.t"] for i in range(trace.steps)])  # [S]
    assert torch.equal(uniavgen_timesteps(trace.steps, trace.meta["shift"])[:-1], recorded)


CONTROLS = {  # what is changed -> the message the replay must fail with
    "macfg_fraction": ({"macfg_fraction": 0.25}, "flags"),
    "scales_swapped": ({"video_scale": 2.0, "audio_scale": 3.0}, "max abs error"),
    "no_slg": ({"skip_blocks": ()}, "flags"),
}


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("control", list(CONTROLS))
def test_uniavgen_sampler_trace_negative_controls(traces, case, control):
    """Each wrong setting is caught by the replay (the parity test can fail)."""
    trace = traces(case)
    changes, match = CONTROLS[control]
    with pytest.raises(TraceMismatch, match=match):
        _replay(trace, guidance=trace.guidance(**changes))


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_sampler_trace_catches_a_wrong_shift(traces, case):
    trace = traces(case)
    with pytest.raises(TraceMismatch, match="t_(video|audio)"):
        _replay(trace, sigmas=trace.sigmas(shift=4.0))


@pytest.mark.parity
@pytest.mark.parametrize("case", ["joint", "ravg"])
def test_uniavgen_sampler_trace_catches_the_wrong_joint_task(traces, case):
    """AVG and RAVG differ only in the cond pass's V2A flag: swapping them must fail at step 0."""
    trace = traces(case)
    with pytest.raises(TraceMismatch, match="step 0 cond pass: flags"):
        _replay(trace, guidance=trace.guidance(reference_audio=case == "joint"))


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES)
def test_uniavgen_final_check_can_fail(traces, case):
    trace = traces(case)
    _, video, audio = _replay(trace)
    bad = audio.clone()
    bad[0, 0, -1] += 1e-3
    with pytest.raises(TraceMismatch, match="final audio"):
        trace.check_final(video, bad)


@pytest.mark.parity
@pytest.mark.parametrize("perturb", [0.0, 1e-3])
def test_uniavgen_trace_checks_an_inner_denoiser(traces, perturb):
    """The path the real-model test takes: `inner` is called (flags as a keyword) and its outputs are
    compared to the recorded ones. A second replay stands in for the model here."""
    trace = traces("a2v")
    model = TraceDenoiser(trace)

    def inner(video, audio, t_video, t_audio, cond, *, flags):
        out_v, out_a = model(video, audio, t_video, t_audio, cond, flags=flags)
        return out_v, out_a + perturb

    checked = TraceDenoiser(trace, inner=inner)
    if perturb:
        with pytest.raises(TraceMismatch, match="step 0 cond output audio"):
            run_trace(trace, checked)
        return
    video, audio = run_trace(trace, checked)
    checked.finish()
    assert max(checked.output_errors.values()) == 0.0
    assert max(trace.check_final(video, audio).values()) <= FINAL_BOUND
