"""Sampling loop and solvers: one call per step, exact recovery, convergence, held frames bit-exact."""
from __future__ import annotations

import pytest
import torch

from harmony_core.sampling import (
    AV,
    Guidance,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    audio_driven,
    dpmpp_2m,
    euler,
    flow_sigmas,
    joint,
    plan_passes,
    sample,
    video_driven,
)

B, CV, TV, H, W, CA, TA = 2, 3, 4, 2, 3, 5, 8
SOLVER_NAMES = ["euler", "dpmpp_2m"]
NO_GUIDANCE = Guidance(sync=SyncCFG(1.0, 1.0))


def _per_frame(t, x):
    return t.reshape(t.shape[0], 1, t.shape[1], *([1] * (x.ndim - 3))).double()


class FixedX0:
    """Exact velocity (x - x0) / sigma of a point mass at x0 (per row: rows repeat every B items)."""

    def __init__(self, x0: AV):
        self.x0 = x0
        self.calls = []

    def __call__(self, video, audio, t_video, t_audio, cond):
        self.calls.append(video.shape[0])
        reps = video.shape[0] // self.x0.video.shape[0]

        def vel(x, t, x0):
            t = _per_frame(t, x)
            x0 = x0.repeat(reps, *([1] * (x.ndim - 1))).double()
            return torch.where(t > 0, (x.double() - x0) / t.clamp_min(1e-30), 0).to(x.dtype)
        return vel(video, t_video, self.x0.video), vel(audio, t_audio, self.x0.audio)


MU_V, MU_A, STD = 0.3, -0.5, 0.5


def gaussian_denoiser(video, audio, t_video, t_audio, cond):
    """Exact velocity for data ~ N(mu, STD^2) per element; its ODE maps noise z to mu + STD * z."""
    def vel(x, t, mu):
        t, x = _per_frame(t, x), x.double()
        x0 = mu + (1 - t) * STD ** 2 / ((1 - t) ** 2 * STD ** 2 + t ** 2) * (x - (1 - t) * mu)
        return torch.where(t > 0, (x - x0) / t.clamp_min(1e-30), 0).float()
    return vel(video, t_video, MU_V), vel(audio, t_audio, MU_A)


class Counting:
    """Wraps a denoiser, counting calls and rows; outputs random-ish but finite values."""

    def __init__(self):
        self.rows = []

    def __call__(self, video, audio, t_video, t_audio, cond):
        self.rows.append(video.shape[0])
        return torch.tanh(video) + t_video.mean(), torch.cos(audio) - cond.float().mean()


def _noise(b=B):
    return torch.randn(b, CV, TV, H, W), torch.randn(b, CA, TA)


def _anchors():
    return SyncAnchors(mute_audio=torch.zeros(1, CA, TA), static_video=torch.zeros(1, CV, TV, H, W))


@pytest.mark.parametrize("solver", SOLVER_NAMES)
@pytest.mark.parametrize("guidance", [
    Guidance(anchors=_anchors()),
    NO_GUIDANCE,
    Guidance(sync=SyncCFG(start=0.3, end=0.6), text=TextCFG(4.0, 1.0), anchors=_anchors()),
    Guidance(sync=SyncCFG(3.0, 1.0), text=TextCFG(1.0, 2.0, start=0.5), anchors=_anchors()),
])
@pytest.mark.parametrize("mode_name", ["joint", "audio_driven", "video_driven"])
def test_exactly_one_call_per_step(solver, guidance, mode_name):
    mode = {"joint": joint(TV, TA), "audio_driven": audio_driven(torch.randn(1, CA, TA), TV),
            "video_driven": video_driven(torch.randn(1, CV, TV, H, W), TA)}[mode_name]
    stub = Counting()
    sample(stub, *_noise(), mode, guidance, flow_sigmas(10), solver)
    plan = plan_passes(guidance, mode, 10)
    assert len(stub.rows) == 10
    assert stub.rows == [len(p) * B for p in plan]


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_exact_recovery_of_a_fixed_x0(solver):
    x0 = AV(torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA))
    video, audio = sample(FixedX0(x0), *_noise(), joint(TV, TA), NO_GUIDANCE, flow_sigmas(8), solver)
    torch.testing.assert_close(video, x0.video, rtol=0, atol=1e-5)
    torch.testing.assert_close(audio, x0.audio, rtol=0, atol=1e-5)


def test_fixed_x0_survives_guidance():
    # every pass predicts the same x0 => all guidance deltas vanish
    x0 = AV(torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA))
    guidance = Guidance(text=TextCFG(5.0, 3.0), anchors=_anchors())
    video, audio = sample(FixedX0(x0), *_noise(), joint(TV, TA), guidance, flow_sigmas(6), "euler")
    torch.testing.assert_close(video, x0.video, rtol=0, atol=1e-5)
    torch.testing.assert_close(audio, x0.audio, rtol=0, atol=1e-5)


def _error(steps, solver, noise):
    video, audio = sample(gaussian_denoiser, *noise, joint(TV, TA), NO_GUIDANCE, flow_sigmas(steps, 5.0),
                          solver)
    return max((video - (MU_V + STD * noise[0])).abs().max().item(),
               (audio - (MU_A + STD * noise[1])).abs().max().item())


def test_dpmpp_2m_reaches_the_ode_solution_with_fewer_steps():
    noise = _noise()
    dpm_40, euler_40 = _error(40, "dpmpp_2m", noise), _error(40, "euler", noise)
    euler_160 = _error(160, "euler", noise)
    assert dpm_40 < 0.03
    assert dpm_40 < euler_160 < euler_40
    assert _error(80, "dpmpp_2m", noise) < dpm_40


def test_dpmpp_2m_matches_the_log_snr_form():
    """Independent float64 reference: DPM-Solver++(2M) midpoint in lambda = log(alpha / sigma) (Lu et al. 2022,
    as written in diffusers / Wan FlowDPMSolver), first order on the first and the final (sigma -> 0) step."""
    noise = _noise()
    sig = flow_sigmas(12, 3.0).double()
    lam = torch.log1p(-sig) - torch.log(sig)  # -inf at sigma 1, +inf at sigma 0
    x, x0s = noise[0].double(), []
    for i in range(12):
        t = torch.full((B, TV), sig[i].item())
        v, _ = gaussian_denoiser(x.float(), noise[1], t, torch.full((B, TA), sig[i].item()), None)
        x0s.append(x - sig[i] * v.double())
        h = lam[i + 1] - lam[i]
        d = x0s[-1]
        if 0 < i < 11:
            d = d + 0.5 * (h / (lam[i] - lam[i - 1])) * (x0s[-1] - x0s[-2])
        x = (sig[i + 1] / sig[i]) * x - (1 - sig[i + 1]) * torch.expm1(-h) * d
    video, _ = sample(gaussian_denoiser, *noise, joint(TV, TA), NO_GUIDANCE, flow_sigmas(12, 3.0), "dpmpp_2m")
    torch.testing.assert_close(video, x.float(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_audio_driven_keeps_audio_bit_exact(solver):
    clean = torch.randn(B, CA, TA)
    video, audio = sample(Counting(), *_noise(), audio_driven(clean, TV), Guidance(anchors=_anchors()),
                          flow_sigmas(5), solver)
    assert torch.equal(audio, clean)
    assert torch.isfinite(video).all()


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_video_driven_keeps_video_bit_exact(solver):
    clean = torch.randn(1, CV, TV, H, W)
    video, _ = sample(Counting(), *_noise(), video_driven(clean, TA), Guidance(anchors=_anchors()),
                      flow_sigmas(5), solver)
    assert torch.equal(video, clean.expand(B, -1, -1, -1, -1))


@pytest.mark.parametrize("solver", SOLVER_NAMES)
def test_reference_frame_is_held_bit_exact(solver):
    ref = torch.randn(B, CV, 1, H, W)
    video, _ = sample(Counting(), *_noise(), joint(TV, TA, reference=ref), Guidance(anchors=_anchors()),
                      flow_sigmas(5), solver)
    assert torch.equal(video[:, :, :1], ref)
    assert not torch.equal(video[:, :, 1:], torch.zeros_like(video[:, :, 1:]))


def test_driven_mode_feeds_the_model_sigma_zero_for_the_held_modality():
    seen = []

    def stub(video, audio, t_video, t_audio, cond):
        seen.append((t_video.clone(), t_audio.clone()))
        return torch.zeros_like(video), torch.zeros_like(audio)

    sigmas = flow_sigmas(4)
    sample(stub, *_noise(), video_driven(torch.randn(1, CV, TV, H, W), TA), NO_GUIDANCE, sigmas)
    for k, (t_v, t_a) in enumerate(seen):
        assert t_v.shape == (B, TV) and bool((t_v == 0).all())
        assert t_a.shape == (B, TA) and bool((t_a == sigmas[k]).all())


@pytest.mark.parametrize("step", [euler, dpmpp_2m])
def test_solver_step_is_a_noop_on_a_held_modality(step):
    x, v = AV(*_noise()), AV(*_noise())
    sigma = AV(torch.full((B, TV), 0.5), torch.zeros(B, TA))
    nxt = AV(torch.full((B, TV), 0.3), torch.zeros(B, TA))
    out, history = step(x, v, sigma, nxt, None)
    assert torch.equal(out.audio, x.audio) and not torch.equal(out.video, x.video)
    out2, _ = step(out, v, nxt, AV(torch.full((B, TV), 0.1), torch.zeros(B, TA)), history)
    assert torch.equal(out2.audio, x.audio)


def test_batch_of_takes_matches_single_runs():
    noise = _noise(2)
    guidance = Guidance(text=TextCFG(2.0, 1.5), anchors=_anchors())
    mode = joint(TV, TA)
    both = sample(Counting(), *noise, mode, guidance, flow_sigmas(6), "dpmpp_2m")
    for b in range(2):
        one = sample(Counting(), noise[0][b:b + 1], noise[1][b:b + 1], mode, guidance, flow_sigmas(6),
                     "dpmpp_2m")
        torch.testing.assert_close(both[0][b:b + 1], one[0])
        torch.testing.assert_close(both[1][b:b + 1], one[1])


def test_callback_gets_steps_and_previews():
    got = []
    x0 = AV(torch.randn(B, CV, TV, H, W), torch.randn(B, CA, TA))
    sample(FixedX0(x0), *_noise(), joint(TV, TA), NO_GUIDANCE, flow_sigmas(3),
           callback=lambda k, n, pv, pa: got.append((k, n, pv, pa)))
    assert [(k, n) for k, n, _, _ in got] == [(0, 3), (1, 3), (2, 3)]
    for _, _, pv, pa in got:
        torch.testing.assert_close(pv, x0.video, rtol=0, atol=1e-5)
        torch.testing.assert_close(pa, x0.audio, rtol=0, atol=1e-5)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_callback_exceptions_propagate(exc):
    stub = Counting()

    def cancel(k, n, pv, pa):
        if k == 1:
            raise exc("cancelled")

    with pytest.raises(exc):
        sample(stub, *_noise(), joint(TV, TA), NO_GUIDANCE, flow_sigmas(10), callback=cancel)
    assert len(stub.rows) == 2


@pytest.mark.parametrize("sigmas,match", [([1.0], "at least 2"), ([1.0, 1.5, 0.0], r"\[0, 1\]"),
                                          ([0.5, 0.7, 0.0], "non-increasing")])
def test_bad_sigmas_are_rejected(sigmas, match):
    with pytest.raises(ValueError, match=match):
        sample(Counting(), *_noise(), joint(TV, TA), NO_GUIDANCE, sigmas)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="unknown solver"):
        sample(Counting(), *_noise(), joint(TV, TA), NO_GUIDANCE, flow_sigmas(2), "heun")
    with pytest.raises(ValueError, match="does not fit"):
        sample(Counting(), *_noise(), joint(TV + 1, TA), NO_GUIDANCE, flow_sigmas(2))
    with pytest.raises(ValueError, match="mute_audio"):
        sample(Counting(), *_noise(), joint(TV, TA), Guidance(), flow_sigmas(2))
    with pytest.raises(ValueError, match="only 0"):
        joint(TV, TA).__class__("custom", torch.full((1, TV), 0.5), torch.ones(1, TA))
    with pytest.raises(ValueError, match="video_clean is None"):
        joint(TV, TA).__class__("custom", torch.zeros(1, TV), torch.ones(1, TA))
