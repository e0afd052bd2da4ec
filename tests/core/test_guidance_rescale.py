"""CFG-rescale (`Rescale`, arXiv 2305.08891 §3.4, Eq. 15-16) in `combine`, and its plumbing: checkpoint defaults
(`GenerationDefaults.rescale_*`), request resolution and the CLI flags `--rescale-video` / `--rescale-audio`.

Tolerances: the rescaled output's std is compared in float64 with std(J). The float32 path computes two stds
(pairwise sums over N values: relative error about log2(N) ulp each), one ratio, one multiply-add and one
product, so the error stays below (2 * ceil(log2 N) + 4) float32 ulp; the bound is that, not a guess.
"""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from harmony_core.cli import _guidance, build_parser, main
from harmony_core.config import GenerationDefaults
from harmony_core.pipeline import HarmonyPipeline, Result
from harmony_core.request import Request, default_guidance, resolve_defaults
from harmony_core.sampling import (
    AUDIO_DRIVEN,
    AV,
    JOINT,
    MACFG,
    UNCOND,
    VIDEO_DRIVEN,
    Guidance,
    Rescale,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    combine,
    guided_velocity,
)

B, CV, TV, H, W, CA, TA = 3, 4, 5, 6, 6, 8, 40
EPS32 = torch.finfo(torch.float32).eps


def _rtol(x: torch.Tensor) -> float:
    """The float32 bound of the module docstring for a per-sample std over x's non-batch dims."""
    return (2 * math.ceil(math.log2(x[0].numel())) + 4) * EPS32


def _av(scale: float = 1.0, offset: float = 0.0) -> AV:
    return AV(scale * torch.randn(B, CV, TV, H, W) + offset, scale * torch.randn(B, CA, TA) + offset)


def _outputs(seed: int = 0) -> dict[str, AV]:
    """Pass outputs where guidance inflates the energy: the negatives differ from J by a large component."""
    torch.manual_seed(seed)
    j = _av()
    return {JOINT: j, UNCOND: AV(j.video - 0.5 * torch.randn_like(j.video), j.audio - 0.5 * torch.randn_like(j.audio)),
            AUDIO_DRIVEN: AV(j.video - torch.randn_like(j.video), j.audio),
            VIDEO_DRIVEN: AV(j.video, j.audio - torch.randn_like(j.audio))}


def _std(x: torch.Tensor) -> torch.Tensor:
    """Per-sample std in float64: [B]."""
    return x.double().flatten(1).std(dim=1)


SYNC = SyncCFG(3.0, 2.0)
TEXT = TextCFG(2.0, 1.5)


# ------------------------------------------------------------------------------------------------
# combine
# ------------------------------------------------------------------------------------------------
def test_phi_zero_leaves_combine_bit_identical():
    out = _outputs()
    j = out[JOINT]
    # the combination as written before CFG-rescale existed (same operations, same order)
    video = j.video + (3.0 - 1.0) * (j.video - out[AUDIO_DRIVEN].video) + (2.0 - 1.0) * (j.video - out[UNCOND].video)
    audio = j.audio + (2.0 - 1.0) * (j.audio - out[VIDEO_DRIVEN].audio) + (1.5 - 1.0) * (j.audio - out[UNCOND].audio)
    for guidance in (Guidance(sync=SYNC, text=TEXT), Guidance(sync=SYNC, text=TEXT, rescale=Rescale(0.0, 0.0))):
        got = combine(out, guidance)
        assert torch.equal(got.video, video) and torch.equal(got.audio, audio)


@pytest.mark.parametrize("text", [TextCFG(), TEXT], ids=["sync_only", "sync_and_text"])
def test_phi_one_gives_the_joint_std_per_sample(text):
    out = _outputs(1)
    guided = combine(out, Guidance(sync=SYNC, text=text))
    rescaled = combine(out, Guidance(sync=SYNC, text=text, rescale=Rescale(1.0, 1.0)))
    for name in ("video", "audio"):
        before, after, j = getattr(guided, name), getattr(rescaled, name), getattr(out[JOINT], name)
        assert (_std(before) > 1.3 * _std(j)).all(), "the fixture must inflate the energy, else nothing is tested"
        torch.testing.assert_close(_std(after), _std(j), rtol=_rtol(after), atol=0.0)
        # the direction is kept: per sample, the rescaled velocity is one positive multiple of the guided one
        ratio = (after.double() / before.double()).flatten(1)  # [B, N]
        assert (ratio > 0).all()
        torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio), rtol=2 * EPS32, atol=0.0)


@pytest.mark.parametrize("phi", [0.3, 0.7])
def test_partial_phi_mixes_as_eq_16(phi):
    out = _outputs(2)
    guided = combine(out, Guidance(sync=SYNC, text=TEXT))
    got = combine(out, Guidance(sync=SYNC, text=TEXT, rescale=Rescale(phi, phi)))
    for name in ("video", "audio"):
        g, j = getattr(guided, name).double(), getattr(out[JOINT], name).double()
        shape = (-1,) + (1,) * (g.ndim - 1)
        r = g * (_std(j) / _std(g)).view(shape)               # Eq. 15
        want = phi * r + (1 - phi) * g                          # Eq. 16
        # phi * ratio + 1 - phi > 0 scales g: got = want (1 + d), |d| within the float32 bound of _rtol
        torch.testing.assert_close(getattr(got, name).double(), want, rtol=_rtol(g), atol=0.0)


def test_each_modality_has_its_own_phi():
    out = _outputs(3)
    plain = combine(out, Guidance(sync=SYNC, text=TEXT))
    video_only = combine(out, Guidance(sync=SYNC, text=TEXT, rescale=Rescale(video=1.0)))
    audio_only = combine(out, Guidance(sync=SYNC, text=TEXT, rescale=Rescale(audio=1.0)))
    assert torch.equal(video_only.audio, plain.audio) and not torch.allclose(video_only.video, plain.video)
    assert torch.equal(audio_only.video, plain.video) and not torch.allclose(audio_only.audio, plain.audio)


def test_each_batch_item_is_rescaled_by_its_own_std():
    out = _outputs(4)
    # item b's negatives sit (b + 1) times further from J: each item has another guided energy
    far = torch.arange(1, B + 1, dtype=torch.float32)
    j = out[JOINT]
    out[AUDIO_DRIVEN] = AV(j.video - far.view(B, 1, 1, 1, 1) * (j.video - out[AUDIO_DRIVEN].video), j.audio)
    out[VIDEO_DRIVEN] = AV(j.video, j.audio - far.view(B, 1, 1) * (j.audio - out[VIDEO_DRIVEN].audio))
    guidance = Guidance(sync=SYNC, rescale=Rescale(1.0, 1.0))
    got = combine(out, guidance)
    for name in ("video", "audio"):
        torch.testing.assert_close(_std(getattr(got, name)), _std(getattr(j, name)),
                                   rtol=_rtol(getattr(got, name)), atol=0.0)
    # and an item's result does not depend on the others in the batch
    for b in range(B):
        alone = combine({p: AV(v.video[b:b + 1], v.audio[b:b + 1]) for p, v in out.items()}, guidance)
        torch.testing.assert_close(alone.video, got.video[b:b + 1], rtol=_rtol(got.video), atol=0.0)
        torch.testing.assert_close(alone.audio, got.audio[b:b + 1], rtol=_rtol(got.audio), atol=0.0)


def test_without_any_guidance_delta_the_output_is_j_whatever_phi():
    out = _outputs(5)
    j = out[JOINT]
    got = combine({JOINT: j}, Guidance(sync=SyncCFG(1.0, 1.0), rescale=Rescale(1.0, 1.0)))
    assert torch.equal(got.video, j.video) and torch.equal(got.audio, j.audio)
    # only the video got a delta (SyncCFG video): the audio stays J even with rescale_audio = 1
    got = combine({JOINT: j, AUDIO_DRIVEN: out[AUDIO_DRIVEN]}, Guidance(sync=SyncCFG(3.0, 1.0),
                                                                         rescale=Rescale(1.0, 1.0)))
    assert torch.equal(got.audio, j.audio) and not torch.equal(got.video, j.video)
    # U present for the video's text CFG only: the audio (text scale 1) gets no delta and no rescale
    got = combine({JOINT: j, UNCOND: out[UNCOND]}, Guidance(sync=SyncCFG(1.0, 1.0), text=TextCFG(2.0, 1.0),
                                                           rescale=Rescale(1.0, 1.0)))
    assert torch.equal(got.audio, j.audio)


def test_outside_the_sync_range_the_sampler_step_gives_j():
    """Through guided_velocity: SyncCFG off at this step (range [0.5, 1)), so no pass but J runs."""
    torch.manual_seed(6)
    x, sigma = _av(), AV(torch.rand(B, TV), torch.rand(B, TA))

    def denoiser(video, audio, t_video, t_audio, cond):
        return torch.tanh(video) * 3.0, torch.sin(audio) * 2.0

    guidance = Guidance(sync=SyncCFG(3.0, 2.0, start=0.5), rescale=Rescale(1.0, 1.0),
                        anchors=SyncAnchors(torch.zeros(1, CA, TA), torch.zeros(1, CV, TV, H, W)))
    passes = guidance.passes(0.0, True, True)
    assert passes == (JOINT,)
    got = guided_velocity(denoiser, x, sigma, guidance, passes)
    want = denoiser(x.video, x.audio, sigma.video, sigma.audio, None)
    assert torch.equal(got.video, want[0]) and torch.equal(got.audio, want[1])


def test_macfg_is_rescaled_toward_its_cond_pass():
    out = _outputs(7)
    j, u = out[JOINT], out[UNCOND]
    macfg = MACFG(3.0, 1.0)
    got = combine({JOINT: j, UNCOND: u}, Guidance(macfg=macfg, rescale=Rescale(1.0, 1.0)))
    torch.testing.assert_close(_std(got.video), _std(j.video), rtol=_rtol(got.video), atol=0.0)
    # the audio scale is 1: U + 1 (J - U) is J up to rounding and gets no rescale
    assert torch.equal(got.audio, macfg.combine(j, u).audio)


def test_a_flat_guided_velocity_is_left_as_is():
    """Guided video 3 J - 2 AD = 1.1 up to float32 rounding (std ~1e-7, not 0), guided audio exactly 0."""
    torch.manual_seed(9)
    j = AV(torch.randn(B, CV, TV, H, W), torch.zeros(B, CA, TA))
    out = {JOINT: j, AUDIO_DRIVEN: AV((3.0 * j.video - 1.1) / 2.0, j.audio),
           VIDEO_DRIVEN: AV(j.video, torch.zeros_like(j.audio))}
    plain = combine(out, Guidance(sync=SYNC))
    got = combine(out, Guidance(sync=SYNC, rescale=Rescale(1.0, 1.0)))
    assert torch.isfinite(got.video).all() and torch.isfinite(got.audio).all()
    assert torch.equal(got.video, plain.video) and torch.equal(got.audio, plain.audio)


def test_half_precision_keeps_its_dtype_and_the_joint_std():
    out = {p: AV(v.video.to(torch.bfloat16), v.audio.to(torch.bfloat16)) for p, v in _outputs(8).items()}
    got = combine(out, Guidance(sync=SYNC, rescale=Rescale(1.0, 1.0)))
    assert got.video.dtype == got.audio.dtype == torch.bfloat16
    bf16 = torch.finfo(torch.bfloat16).eps  # the product is rounded once to bf16: one ulp per value
    torch.testing.assert_close(_std(got.video), _std(out[JOINT].video), rtol=2 * bf16, atol=0.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf])
@pytest.mark.parametrize("key", ["video", "audio"])
def test_invalid_phi_is_refused(key, bad):
    with pytest.raises(ValueError, match=rf"--rescale-{key} / rescale_{key}\) must be a finite number in \[0, 1\]"):
        Rescale(**{key: bad})


# ------------------------------------------------------------------------------------------------
# plumbing: checkpoint defaults -> request, CLI flags -> Guidance
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["joint", "audio_driven", "video_driven"])
def test_a_request_without_guidance_takes_the_checkpoint_rescale(mode):
    d = GenerationDefaults(rescale_video=0.6, rescale_audio=0.25)
    assert resolve_defaults(Request(mode=mode), d).guidance.rescale == Rescale(0.6, 0.25)
    assert resolve_defaults(Request(mode=mode), GenerationDefaults()).guidance.rescale == Rescale(0.0, 0.0)
    uniavgen = resolve_defaults(Request(mode=mode), replace(d, guidance="uniavgen")).guidance
    assert uniavgen.macfg is not None and uniavgen.rescale == Rescale(0.6, 0.25)
    given = Guidance(rescale=Rescale(0.1, 0.2))
    assert resolve_defaults(Request(mode=mode, guidance=given), d).guidance is given


def test_checkpoint_metadata_with_and_without_rescale():
    assert GenerationDefaults.from_dict({"steps": 8}).rescale_video == 0.0  # written before CFG-rescale existed
    d = GenerationDefaults.from_dict({"rescale_video": 0.5, "rescale_audio": 0.7})
    assert (d.rescale_video, d.rescale_audio) == (0.5, 0.7)
    with pytest.raises(ValueError, match="rescale_audio"):
        default_guidance(replace(d, rescale_audio=2.0), "joint")


def _parse(*flags: str):
    return build_parser().parse_args(["generate", *flags])


def test_cli_flags_reach_the_guidance():
    base = default_guidance(GenerationDefaults(rescale_video=0.4), "joint")
    assert _guidance(_parse(), base).rescale == Rescale(0.4, 0.0)  # unset: the checkpoint's
    got = _guidance(_parse("--rescale-audio", "0.7", "--sync-audio-scale", "2.5"), base)
    assert got.rescale == Rescale(0.4, 0.7) and got.sync.audio_scale == 2.5
    uniavgen = _guidance(_parse("--rescale-video", "1", "--text-video-scale", "4"),
                         default_guidance(GenerationDefaults(guidance="uniavgen"), "joint"))
    assert uniavgen.rescale == Rescale(1.0, 0.0) and uniavgen.macfg.video_scale == 4.0
    with pytest.raises(ValueError, match="--rescale-video"):
        _guidance(_parse("--rescale-video", "1.2"), base)


def test_generate_passes_the_flags_to_the_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    seen = []

    def generate(self, req, callback=None):
        seen.append(req.guidance)
        f, rate = 9, 16000
        return Result(torch.zeros(1, f, 64, 64, 3), torch.zeros(1, f * rate // 25), Fraction(25), rate,
                      torch.zeros(1), torch.zeros(1))

    monkeypatch.setattr(HarmonyPipeline, "generate", generate)
    argv = ["generate", "--steps", "2", "--frames", "9", "--quiet", "--out", str(tmp_path / "a.mp4")]
    assert main([*argv, "--rescale-video", "0.5", "--rescale-audio", "0.75"]) == 0
    assert seen[-1].rescale == Rescale(0.5, 0.75)
    assert main([*argv[:-1], str(tmp_path / "b.mp4"), "--rescale-audio", "3"]) == 2


# -- x0 space: what the sampler uses (combine with the current latents and their sigmas) ---------------------
def _state(seed: int = 1, held: bool = True) -> tuple[AV, AV]:
    """Latents and per-frame sigmas in [0.1, 1]; with `held` the first video frame is clean (sigma 0), as in
    i2v (its x0 is x whatever the velocity, so it keeps the guided velocity and is not rescaled)."""
    g = torch.Generator().manual_seed(seed)
    x = AV(torch.randn(B, CV, TV, H, W, generator=g), torch.randn(B, CA, TA, generator=g))
    sv = torch.rand(B, TV, generator=g) * 0.9 + 0.1
    if held:
        sv[:, 0] = 0.0
    return x, AV(sv, torch.rand(B, TA, generator=g) * 0.9 + 0.1)


def _x0(v: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    s = sigma[:, None, :, None, None] if v.ndim == 5 else sigma[:, None, :]
    return x.double() - s.double() * v.double()


def test_x0_rescale_phi_one_gives_the_joint_x0_energy_per_sample() -> None:
    outputs, (x, sigma) = _outputs(), _state(held=False)
    g = Guidance(sync=SyncCFG(3.0, 3.0), rescale=Rescale(1.0, 1.0))
    out = combine(outputs, g, x, sigma)
    for m in ("video", "audio"):
        got = _x0(getattr(out, m), getattr(x, m), getattr(sigma, m))
        want = _x0(getattr(outputs[JOINT], m), getattr(x, m), getattr(sigma, m))
        plain = _x0(getattr(combine(outputs, Guidance(sync=SyncCFG(3.0, 3.0))), m), getattr(x, m),
                    getattr(sigma, m))
        assert (_std(plain) > 1.2 * _std(want)).all()          # guidance inflated the x0 energy
        # x0 -> v -> x0 adds a division and a multiply-add per value (a few ulp of |x0| / sigma_min)
        tol = _rtol(got) + 8 * EPS32 * float(getattr(x, m).abs().max()) / float(_std(want).min()) / 0.1
        torch.testing.assert_close(_std(got), _std(want), rtol=tol, atol=0.0)


def test_x0_rescale_keeps_clean_tokens_and_lands_the_last_euler_step_on_the_rescaled_x0() -> None:
    outputs, (x, sigma) = _outputs(), _state()
    g = Guidance(sync=SyncCFG(3.0, 3.0), rescale=Rescale(0.7, 0.7))
    out, plain = combine(outputs, g, x, sigma), combine(outputs, Guidance(sync=SyncCFG(3.0, 3.0)))
    assert torch.equal(out.video[:, :, 0], plain.video[:, :, 0])     # sigma 0: the guided velocity as is
    assert not torch.allclose(out.video[:, :, 1:], plain.video[:, :, 1:])
    s = sigma.audio[:, None, :]
    landed = x.audio - s * out.audio                                  # Euler from sigma to 0
    x0_g, x0_j = x.audio - s * plain.audio, x.audio - s * outputs[JOINT].audio
    dims = (1, 2)
    ratio = x0_j.std(dim=dims, keepdim=True) / x0_g.std(dim=dims, keepdim=True)
    torch.testing.assert_close(landed, x0_g * (0.7 * ratio + 0.3), rtol=1e-5, atol=1e-5)


def test_x0_rescale_off_is_bit_identical_with_or_without_latents() -> None:
    outputs, (x, sigma) = _outputs(), _state()
    g = Guidance(sync=SyncCFG(3.0, 2.0))
    a, b = combine(outputs, g, x, sigma), combine(outputs, g)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
