"""HarmonyModel with UniAVGen's weights reproduces UniAVGen's `WanModel.forward` (shared/parity/uniavgen_joint):
every pass of the five forward cases (joint, ravg, a2v, v2a, cont), the intermediate pieces (transcript
embedding, face mask, A2V / V2A outputs, window and RoPE tables), and the four sampler traces run through our
sampler on the real model. The weights go through our loader (`load_model`: key map, config detection).

Call convention (ours <- the reference's): video = the noisy latent with the cond frames in place, t_video =
t / 1000 on generated frames and 0 on held ones (`video_cond`), audio [1, 80, T] with the cond mel in place and
t_audio 0 on held frames (`audio_cond`), `cond.ref_image` the prepended frame, transcript ids + lens, and
`PassFlags.from_reference(**flags)`; our video output drops the reference frame (reference output [:, 1:]).

Tolerance: the README's atol = rtol = 1e-4 (float32). From the arithmetic: outputs are O(5); each of ~40
float32 operations in series (4 layers; sums of <= 256 terms) rounds at ~6e-8 relative, and sums grow that by
~sqrt(terms): a bound of ~1e-5, measured 2.7e-6 (sdpa instead of the reference's explicit softmax moves
outputs by <= 7e-6, README). 1e-4 sits 10x above the bound; every negative control moves outputs by > 1e-2.
"""
from __future__ import annotations

import functools
import json

import pytest
import torch
from safetensors.torch import load_file
from uniavgen_trace import CASES as SAMPLER_CASES
from uniavgen_trace import FIXTURE, TraceDenoiser, load_trace, run_trace

from harmony_core.model.conditioning import Conditioning, HarmonyDenoiser
from harmony_core.model.embeddings import rope_angles_1d, wan_axis_dims
from harmony_core.model.load import load_model
from harmony_core.model.uniavgen_audio import f5_sinusoid
from harmony_core.model.uniavgen_interaction import UniAVGenPlan, a2v_window_index
from harmony_core.passes import PassFlags

TOL = {"atol": 1e-4, "rtol": 1e-4}
BROKEN = 1e-2   # a negative control must move the output at least this much
PASSES = {   # fixture README table; checked against cases_meta.json below
    "joint": ["cond", "uncond_macfg", "uncond_late", "cond_no_interaction"],
    "ravg": ["cond", "cond_full", "uncond_macfg", "uncond_late"],
    "a2v": ["cond", "cond_full", "uncond_macfg", "uncond_late"],
    "v2a": ["cond", "uncond_macfg", "uncond_late"],
    "cont": ["cond"],
}


@pytest.fixture
def folder(parity_dir):
    path = parity_dir / FIXTURE
    if not path.is_dir():
        pytest.skip(f"UniAVGen parity fixtures not found at {path}")
    return path


@functools.lru_cache(maxsize=1)
def _load(path: str):
    model, report = load_model(path)
    assert report.format == "uniavgen" and report.ok and report.config.name == "uniavgen-tiny"
    return model


@pytest.fixture
def model(folder):
    return _load(str(folder / "weights.safetensors"))


@pytest.fixture
def meta(folder):
    return json.loads((folder / "cases_meta.json").read_text())


def case_inputs(c: dict, neg: bool = False):
    """The reference's forward inputs of a case in our layout: (video, audio, t_video, t_audio, cond)."""
    vc, ac = int(c["video_cond"]), int(c["audio_cond"])
    video = c["video"].clone()
    video[:, :, : c["cond_video"].shape[2]] = c["cond_video"]
    audio = c["audio"].clone()                                        # [T, 80]
    if ac:
        audio[:ac] = c["cond_audio"][:ac]
    sigma = c["t"] / 1000
    t_video = sigma.expand(1, video.shape[2]).clone()
    t_video[:, :vc] = 0
    t_audio = sigma.expand(1, audio.shape[0]).clone()
    t_audio[:, :ac] = 0
    pre = "neg_" if neg else ""
    cond = Conditioning(c[pre + "context_video"], None, c[pre + "text_ids"],
                        ref_audio=c["ref_audio"].transpose(1, 2) if "ref_audio" in c else None,
                        ref_image=c["ref_image"], transcript_lens=c[pre + "text_lens"])
    return video, audio.T[None], t_video, t_audio, cond


def run_pass(model, c: dict, spec: dict, **changes):
    video, audio, t_video, t_audio, cond = case_inputs(c, spec["negative_text"])
    args = {"video": video, "audio": audio, "t_video": t_video, "t_audio": t_audio, "cond": cond,
            "flags": PassFlags.from_reference(**spec["flags"]), **changes}
    with torch.no_grad():
        out_v, out_a = model(**args)
    return out_v[0], out_a[0].T[None]                  # [48, F, H, W], [1, T, 80] (reference layout)


def _case(folder, name: str) -> dict:
    return load_file(str(folder / f"case_{name}.safetensors"))


@pytest.mark.parity
def test_uniavgen_passes_are_the_fixture_passes(meta):
    assert {k: list(v["passes"]) for k, v in meta.items() if "passes" in v} == PASSES


@pytest.mark.parity
@pytest.mark.parametrize("case,name", [(c, p) for c, ps in PASSES.items() for p in ps])
def test_uniavgen_forward_parity(folder, model, meta, case, name):
    c = _case(folder, case)
    out_v, out_a = run_pass(model, c, meta[case]["passes"][name])
    torch.testing.assert_close(out_v, c[f"out_video.{name}"][:, 1:], **TOL)   # reference frame dropped
    torch.testing.assert_close(out_a, c[f"out_audio.{name}"], **TOL)


def _drop_ref_audio(c):
    return {k: v for k, v in c.items() if k != "ref_audio"}


def _one_held_frame(c):
    return {**c, "video_cond": torch.tensor(1), "cond_video": c["cond_video"][:, :, :1]}


def _no_fillers(c):
    keep = int((c["neg_text_ids"] != -1).sum())
    return {**c, "neg_text_ids": c["neg_text_ids"][:, :keep], "neg_text_lens": torch.tensor([keep])}


NEGATIVE = {   # case -> (what is broken, how): each must move the cond pass's output
    "joint": ("A2V weight", "weight", "interaction.0.a2v.o.weight"),
    "ravg": ("reference mel dropped", "inputs", _drop_ref_audio),
    "a2v": ("V2A switched on", "flags", PassFlags()),
    "v2a": ("face-mask head", "weight", "interaction.2.a2v.mask_head.head.weight"),
    "cont": ("1 held frame instead of 2", "inputs", _one_held_frame),
}


@pytest.mark.parity
@pytest.mark.parametrize("case", list(PASSES))
def test_uniavgen_forward_parity_negative_control(folder, model, meta, case):
    """Each case's comparison can fail: a wrong weight, input or flag moves the output far beyond TOL."""
    c = _case(folder, case)
    spec = meta[case]["passes"]["cond"]
    what, kind, how = NEGATIVE[case]
    if kind == "weight":
        param = model.get_parameter(how)
        saved = param.detach().clone()
        with torch.no_grad():
            param.add_(0.1 * torch.randn_like(param))
        try:
            out_v, out_a = run_pass(model, c, spec)
        finally:
            with torch.no_grad():
                param.copy_(saved)
    elif kind == "inputs":
        out_v, out_a = run_pass(model, how(c), spec)
    else:
        out_v, out_a = run_pass(model, c, spec, flags=how)
    err = max((out_v - c["out_video.cond"][:, 1:]).abs().max(), (out_a - c["out_audio.cond"]).abs().max())
    assert err > BROKEN, f"{case}: {what} left the output within {err:.2e}"


@pytest.mark.parity
def test_uniavgen_transcript_fillers_are_attended(folder, model, meta):
    """The -1 fillers up to the padded length are part of the numbers (zero rows in the ConvNeXt blocks and
    attended keys): the negative transcript [0, -1 x 9] trimmed to [0] changes the audio beyond TOL."""
    c = _case(folder, "joint")
    out_v, out_a = run_pass(model, _no_fillers(c), meta["joint"]["passes"]["uncond_late"])
    assert (out_a - c["out_audio.uncond_late"]).abs().max() > BROKEN


@pytest.mark.parity
def test_uniavgen_tables(folder):
    """Window gather indices, RoPE tables and the transcript sinusoid equal the reference's own tables."""
    tables = load_file(str(folder / "tables.safetensors"))
    assert torch.equal(a2v_window_index(131, 6, 5), tables["a2v_window_idx"])
    assert torch.equal(a2v_window_index(506, 21, 5), tables["a2v_window_idx_fullsize_506x21"])
    torch.testing.assert_close(f5_sinusoid(32, torch.arange(64)), tables["speech_text_freqs_cis"], atol=0, rtol=0)
    audio = rope_angles_1d(torch.arange(160), 32)                                         # [160, 16]
    torch.testing.assert_close(torch.stack([audio.cos(), audio.sin()], -1), tables["rope_freqs_audio_real"])
    dims = wan_axis_dims(32)
    video = torch.cat([rope_angles_1d(torch.arange(64), d) for d in dims], dim=1)         # [64, 16]
    torch.testing.assert_close(torch.stack([video.cos(), video.sin()], -1), tables["rope_freqs_video_real"])
    assert not torch.equal(a2v_window_index(131, 6, 7), tables["a2v_window_idx"])         # negative control


@pytest.mark.parity
def test_uniavgen_intermediates(folder, model):
    """Pieces against the reference's intermediates of `case_cont` (cond pass): the transcript context, the
    time embeddings, and layer 0's face mask, A2V and V2A outputs from the recorded block outputs."""
    c = _case(folder, "cont")
    video, audio, t_video, t_audio, cond = case_inputs(c)
    m, inter = model, {k[6:]: v for k, v in c.items() if k.startswith("inter.")}
    with torch.no_grad():
        aud = m.audio.prepare(audio, t_audio, cond)
        vs = m._video_stream(video, t_video, cond)
        plan = m._plan(vs, t_video, t_audio)
        block = m.interaction["0"]
        vx = inter["video_block0.out"][:, 12:].view(1, 6, 12, -1)
        target = inter["audio_block0.out"]
        mask = block.a2v.mask_head(vx, plan.e)
        a2v = block.a2v(vx, target, mask, plan).flatten(1, 2)
        v2a = block.v2a(target, vx, mask, plan)
    torch.testing.assert_close(aud.text, inter["speech_text"], **TOL)
    torch.testing.assert_close(aud.x, inter["audio_tokens_in"], **TOL)
    torch.testing.assert_close(vs.e.repeat_interleave(12, 1), inter["e_video"], **TOL)
    torch.testing.assert_close(aud.e, inter["e_audio"], **TOL)
    torch.testing.assert_close(mask.flatten(1, 2), inter["a2v0.face_mask"], **TOL)
    torch.testing.assert_close(a2v, inter["a2v0.out"], **TOL)
    torch.testing.assert_close(v2a, inter["v2a0.out"], **TOL)
    assert isinstance(plan, UniAVGenPlan)


def _denoiser(model, trace):
    def cond(pre: str) -> Conditioning:
        return Conditioning(trace.tensors[pre + "context_video"], None, trace.tensors[pre + "text_ids"],
                            ref_audio=trace.ref_audio.transpose(1, 2) if "ref_audio" in trace.tensors else None,
                            ref_image=trace.ref_image, transcript_lens=trace.tensors[pre + "text_lens"])
    return HarmonyDenoiser(model, cond(""), cond("neg_"))


@pytest.mark.parity
@pytest.mark.parametrize("case", SAMPLER_CASES)
def test_uniavgen_sampler_on_the_model(folder, model, case):
    """The reference sampler's traces (4 Euler steps, MA-CFG, SLG) with our sampler AND our model: every call's
    inputs and outputs and the finals match (outputs at TOL; the trace checks them call by call)."""
    trace = load_trace(folder.parent, case)
    denoiser = TraceDenoiser(trace, inner=_denoiser(model, trace))
    with torch.no_grad():
        video, audio = run_trace(trace, denoiser)
    denoiser.finish()
    errors = trace.check_final(video, audio)
    assert max(denoiser.output_errors.values()) < TOL["atol"] and max(errors.values()) < 1e-3, errors
