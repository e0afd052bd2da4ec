"""UniAVGen through the whole pipeline (Request -> conditioning -> MA-CFG sampling), against the reference's own
sampler traces: the parity fixture's weights loaded by our loader, the traces' inputs given as a user would
(reference image latent, captions, transcript text, driving latents, seed 2025), every model call checked
against the recorded one and the final latents against the reference's. Plus the task rules of §6: a reference
image is required, driving media are never cut, SyncCFG runs on the same weights."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from uniavgen_trace import TraceDenoiser, TraceMismatch, load_trace

import harmony_core.pipeline as pipeline_module
from harmony_core import families
from harmony_core.codecs.uniavgen.codec import UniAVGenAudioCodec
from harmony_core.codecs.wan.codec import WanVideoCodec
from harmony_core.codecs.wan.vae import WanVAEConfig
from harmony_core.model.load import load_model
from harmony_core.pipeline import Captions, HarmonyPipeline, Media, Request, Sampling
from harmony_core.sampling import Guidance, SyncCFG

PARITY = Path(__file__).resolve().parents[2] / ".." / "shared" / "parity"
FIXTURE = PARITY / "uniavgen_joint"
needs_fixture = pytest.mark.skipif(not FIXTURE.is_dir(), reason=f"parity fixtures not found at {FIXTURE}")
REAL_DENOISER = pipeline_module.HarmonyDenoiser
TEXT = "Over the past week, it rained."     # the fixture README's transcript for text_ids
# 48 latent channels, 4x16x16 strides (the Wan2.2 VAE's layout) at toy widths: only its shapes are used here
TOY_VAE = WanVAEConfig(dim=4, dec_dim=4, z_dim=48, dim_mult=(1, 2, 2, 2), num_res_blocks=1,
                       temperal_downsample=(False, True, True))


@pytest.fixture(scope="module")
def pipe() -> HarmonyPipeline:
    model, report = load_model(FIXTURE / "weights.safetensors")
    assert report.format == "uniavgen"
    return HarmonyPipeline(model, WanVideoCodec.random(TOY_VAE), UniAVGenAudioCodec.random())


def _request(trace, mode: str, **media) -> Request:
    frames = 4 * (trace.noise_video.shape[2] - 1) + 1
    h, w = trace.noise_video.shape[3:]
    return Request(mode=mode, transcript=TEXT, num_frames=frames, width=16 * w, height=16 * h, fps="16",
                   media=Media(**media),
                   captions=Captions(video=trace.context_video, negative_video=trace.neg_context_video),
                   sampling=Sampling(steps=trace.steps, seed=int(trace.meta["seed"])))


REF_TEXT = "Selected forms are propagated."   # the RAVG case's reference-voice transcript


def _ravg(trace) -> Request:
    req = _request(trace, "joint", image_latent=trace.ref_image, ref_audio_latent=trace.ref_audio.transpose(1, 2))
    return Request(**{**req.__dict__, "ref_transcript": REF_TEXT})


CASES = {
    "joint": lambda t: _request(t, "joint", image_latent=t.ref_image),
    "ravg": _ravg,
    "a2v": lambda t: _request(t, "audio_driven", image_latent=t.ref_image, audio_latent=t.cond_audio.T[None]),
    "v2a": lambda t: _request(t, "video_driven", image_latent=t.ref_image, video_latent=t.cond_video),
}


def _run(pipe: HarmonyPipeline, trace, req: Request, monkeypatch: pytest.MonkeyPatch) -> TraceDenoiser:
    made = []

    def checked(model, positive, negative=None):  # the pipeline's denoiser, every call checked against the trace
        made.append(TraceDenoiser(trace, inner=REAL_DENOISER(model, positive, negative)))
        return made[-1]

    monkeypatch.setattr(pipeline_module, "HarmonyDenoiser", checked)
    video, audio, _, _ = pipe.sample(req)
    made[0].finish()
    trace.check_final(video, audio)
    return made[0]


@needs_fixture
@pytest.mark.parity
@pytest.mark.parametrize("case", sorted(CASES))
def test_uniavgen_pipeline_reproduces_the_reference_trace(pipe, case, monkeypatch):
    # the fixture's reference mel is the whole prepended span; the 0.3 s of silence the reference's data loader
    # appends to a voice clip is the pipeline's job for real clips (tested below), not part of this trace
    monkeypatch.setattr(families, "REF_SILENCE_SECONDS", 0.0)
    trace = load_trace(PARITY, case)
    denoiser = _run(pipe, trace, CASES[case](trace), monkeypatch)
    assert len(denoiser.output_errors) == trace.steps


@needs_fixture
@pytest.mark.parity
def test_uniavgen_pipeline_trace_negative_control(pipe, monkeypatch):
    """Another transcript changes the audio tower's context: the first cond output leaves the tolerance."""
    trace = load_trace(PARITY, "joint")
    req = CASES["joint"](trace)
    with pytest.raises(TraceMismatch, match="output"):
        _run(pipe, trace, Request(**{**req.__dict__, "transcript": "Selected forms are propagated."}), monkeypatch)


@needs_fixture
def test_uniavgen_needs_a_reference_image_and_never_cuts_driving_media(pipe):
    trace = load_trace(PARITY, "a2v")
    with pytest.raises(ValueError, match="reference image: UniAVGen starts every clip"):
        pipe.resolve(_request(trace, "joint"))
    long_audio = torch.zeros(1, 80, 140)                  # 1.40 s against a 1.31 s clip
    req = _request(trace, "audio_driven", image_latent=trace.ref_image, audio_latent=long_audio)
    with pytest.raises(ValueError, match=r"driving audio: 1.40 s is longer than the clip \(1.31 s\)"):
        pipe.sample(req)
    too_long = _request(trace, "joint", image_latent=trace.ref_image)
    with pytest.raises(ValueError, match="85 frames is more than the 81 this model was trained on"):
        pipe.resolve(Request(**{**too_long.__dict__, "num_frames": 85}))


@needs_fixture
def test_uniavgen_layout_and_defaults(pipe):
    trace = load_trace(PARITY, "joint")
    req = pipe.resolve(CASES["joint"](trace))
    lay = pipe.layout(req)
    assert (lay.video_frames, lay.audio_frames) == (6, 131)          # floor(21 / 16 * 100), as the reference
    assert req.guidance.kind == "uniavgen" and req.sampling.schedule == "uniavgen"
    assert req.guidance.macfg.skip_blocks == (1,) and not req.guidance.macfg.reference_audio
    voiced = pipe.resolve(Request(**{**req.__dict__, "guidance": None,
                                     "media": Media(image_latent=trace.ref_image, ref_audio=torch.zeros(2400))}))
    assert voiced.guidance.macfg.reference_audio                    # RAVG: V2A off in the cond pass


@needs_fixture
def test_synccfg_runs_on_uniavgen_weights(pipe):
    """The same checkpoint under Harmony's SyncCFG: anchors from the codecs, finite latents, held frame kept."""
    trace = load_trace(PARITY, "joint")
    req = Request(**{**CASES["joint"](trace).__dict__, "guidance": Guidance(sync=SyncCFG(3.0, 2.0)),
                     "sampling": Sampling(steps=2, seed=1)})
    video, audio, _, _ = pipe.sample(req)
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()
    assert torch.equal(video[:, :, :1], trace.ref_image)


@needs_fixture
def test_reference_voice_gets_its_silence(pipe):
    """0.3 s of silence after a reference voice: zeros before the mel for a wave, the codec's silence latent
    after an encoded voice (30 latents at 100 per second)."""
    codec = pipe.audio_codec
    wave = torch.sin(torch.arange(4800) * 0.05) * 0.5                       # 0.2 s at 24 kHz
    from_wave = families.reference_voice(Media(ref_audio=wave), codec, torch.device("cpu"))
    assert from_wave.shape[-1] == 20 + 30
    latent = codec.encode(wave[None])
    from_latent = families.reference_voice(Media(ref_audio_latent=latent), codec, torch.device("cpu"))
    assert torch.equal(from_latent[..., :20], latent)
    assert torch.equal(from_latent[..., 20:], codec.silence_latent(30).expand(1, -1, -1))


@needs_fixture
def test_macfg_memory_counts_one_pass_per_call(pipe):
    """MA-CFG's cond and uncond differ in flags (skip-layer guidance), so they run as two calls of B rows: the
    activation budget is that of one pass, where SyncCFG's three passes share one call."""
    trace = load_trace(PARITY, "joint")
    req = CASES["joint"](trace)
    macfg = pipe.memory_required(req, 4)
    sync = pipe.memory_required(Request(**{**req.__dict__, "guidance": Guidance(sync=SyncCFG(3.0, 2.0))}), 4)
    one = pipe.memory_required(Request(**{**req.__dict__, "guidance": Guidance(sync=SyncCFG(1.0, 1.0))}), 4)
    assert macfg == one < sync
