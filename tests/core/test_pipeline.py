"""The generation pipeline on the (untrained) demo preset: modes, held modalities, validation, the CLI."""
from __future__ import annotations

import av
import pytest
import torch

from harmony_core.cli import main
from harmony_core.codecs.registry import build_audio_codec, build_video_codec
from harmony_core.config import preset
from harmony_core.model.harmony import HarmonyModel
from harmony_core.pipeline import Captions, HarmonyPipeline, Media, Request, Sampling
from harmony_core.sampling import Guidance, SyncCFG, TextCFG

SMALL = dict(num_frames=17, width=32, height=32, sampling=Sampling(steps=2))


def _untrained(cfg):
    torch.manual_seed(0)
    return HarmonyPipeline(HarmonyModel(cfg).eval(), build_video_codec(cfg.codecs["video"]),
                           build_audio_codec(cfg.codecs["audio"]))


@pytest.fixture(scope="module")
def pipe():
    return _untrained(preset("demo"))


def test_joint_shapes_and_duration(pipe):
    res = pipe.generate(Request(prompt="a red circle", **{**SMALL, "sampling": Sampling(steps=2, seed=3, batch=2)}))
    assert res.frames.shape == (2, 17, 32, 32, 3)
    assert res.wave.shape == (2, 17 * 16000 // 25)                      # exactly the video's duration
    assert 0 <= float(res.frames.min()) and float(res.frames.max()) <= 1
    again = pipe.generate(Request(prompt="a red circle", **{**SMALL, "sampling": Sampling(steps=2, seed=3, batch=2)}))
    assert torch.equal(res.video_latent, again.video_latent)           # deterministic by seed


def test_guidance_defaults_follow_the_mode(pipe):
    d = pipe.model.cfg.defaults                                         # demo: joint 1 / 1 (off), driven 2 / 3
    audio = torch.zeros(17 * 16000 // 25)
    video = torch.zeros(3, 17, 32, 32)
    joint = pipe.resolve(Request(**SMALL))
    by_audio = pipe.resolve(Request(mode="audio_driven", media=Media(audio=audio), **SMALL))
    by_video = pipe.resolve(Request(mode="video_driven", media=Media(video=video), **SMALL))
    sync = joint.guidance.sync
    assert (sync.video_scale, sync.audio_scale) == (d.sync_video_scale, d.sync_audio_scale) == (1.0, 1.0)
    assert by_audio.guidance.sync.video_scale == d.driven_sync_video_scale == 2.0
    assert by_video.guidance.sync.audio_scale == d.driven_sync_audio_scale == 3.0
    # CFG-rescale: joint 0.7 / 1 (for a user who raises the joint scales: guided loudness held to the
    # unguided one); video-driven audio keeps the loudness guidance gives it (its own default, 0),
    # audio-driven video the joint video factor
    assert (joint.guidance.rescale.video, joint.guidance.rescale.audio) == (0.7, 1.0)
    assert by_audio.guidance.rescale.video == d.driven_rescale_video == 0.7
    assert by_video.guidance.rescale.audio == d.driven_rescale_audio == 0.0
    given = Guidance(sync=SyncCFG(1.25, 1.0))
    assert pipe.resolve(Request(mode="audio_driven", media=Media(audio=audio), guidance=given, **SMALL)).guidance is given


def test_audio_driven_keeps_the_audio_latent_exact(pipe):
    lay = pipe.layout(pipe.resolve(Request(**SMALL)))
    clean = torch.randn(1, pipe.audio_codec.latent_channels, lay.audio_frames)
    video, audio, _, _ = pipe.sample(Request(mode="audio_driven", media=Media(audio_latent=clean), **SMALL))
    assert torch.equal(audio, clean)


def test_video_driven_keeps_the_video_latent_exact(pipe):
    clean = torch.randn(1, pipe.video_codec.latent_channels, 5, 4, 4)
    video, _, lay, _ = pipe.sample(Request(mode="video_driven", media=Media(video_latent=clean), sampling=Sampling(steps=2)))
    assert torch.equal(video, clean) and lay.num_frames == 17


def test_reference_image_is_held_on_frame_zero(pipe):
    image = torch.rand(3, 32, 32) * 2 - 1
    video, _, _, _ = pipe.sample(Request(media=Media(image=image), **SMALL))
    expected = pipe.video_codec.encode(image[None, :, None])
    assert torch.equal(video[:, :, :1], expected)


def test_raw_media_inputs(pipe):
    res = pipe.generate(Request(mode="audio_driven", media=Media(audio=torch.randn(8000) * 0.1,
                                                                 ref_audio=torch.randn(4000) * 0.1), **SMALL))
    assert res.wave.shape[1] == 17 * 640 and any("padded" in n for n in res.notes)
    res = pipe.generate(Request(mode="video_driven", media=Media(video=torch.rand(3, 9, 32, 32) * 2 - 1),
                                sampling=Sampling(steps=2), guidance=Guidance(text=TextCFG(audio_scale=2.0))))
    assert res.frames.shape[1] == 9


@pytest.mark.parametrize("change,match", [
    (dict(mode="audio_driven"), "needs a driving audio"),
    (dict(mode="video_driven"), "needs driving video"),
    (dict(mode="sideways"), "is not one of"),
    (dict(width=40), "width: 40 is not a multiple of 16.*use e.g. 32"),
    (dict(num_frames=18), r"frames: 18 is not 4\*k\+1.*use e.g. 17"),
    (dict(num_frames=4001), "last more than 60 s; at most 1497 frames"),
    (dict(sampling=Sampling(steps=2, batch=0)), "batch 0"),
])
def test_bad_requests_fail_before_work(pipe, change, match):
    with pytest.raises(ValueError, match=match):
        pipe.resolve(Request(**{**SMALL, **change}))


def test_model_without_text_encoder_needs_embeddings():
    cfg = preset("demo").replace(text_encoder=None)
    pipe = _untrained(cfg)
    with pytest.raises(ValueError, match="no text encoder"):
        pipe.sample(Request(**SMALL))
    ctx = torch.randn(1, 5, cfg.video.text_dim)
    video, _, _, _ = pipe.sample(Request(captions=Captions(video=ctx, audio=ctx), **SMALL))
    assert torch.isfinite(video).all()


def test_cli_generate_writes_an_mp4_with_both_streams(tmp_path, monkeypatch):
    import harmony_core.build as build
    monkeypatch.setattr(build, "DEMO_CHECKPOINT", tmp_path / "missing.safetensors")
    out = tmp_path / "clips"
    out.mkdir()  # an existing folder: the clip is written inside it (a path without suffix gets ".mp4")
    code = main(["generate", "--out", str(out), "--steps", "2", "--frames", "17", "--width", "32", "--height",
                 "32", "--allow-untrained", "--quiet", "--seed", "1"])
    assert code == 0
    (clip,) = out.glob("*.mp4")
    with av.open(str(clip)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"] or sorted(s.type for s in c.streams) == [
            "audio", "video"]
        assert c.streams.video[0].frames == 17
    assert main(["generate", "--out", str(out), "--steps", "2", "--mode", "audio_driven",
                 "--allow-untrained", "--quiet"]) == 2                     # clear error, no traceback


def test_cli_info(parity_dir, capsys):
    assert main(["info", str(parity_dir / "wan22_dit" / "weights.safetensors")]) == 0
    assert '"video": 368480' in capsys.readouterr().out
