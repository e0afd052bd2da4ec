"""Conditioning nodes: captions, native CONDITIONING, audio/video/image conditions and their input errors."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
from comfy_api.latest import InputImpl, Types

from node_harness import pack_module, run_node

cond = pack_module("nodes.conditioning")
types = pack_module("nodes.types")
adapter = pack_module("nodes.adapters.model_patcher")
harmony = pack_module("harmony_core.model.harmony")
config = pack_module("harmony_core.config")


def test_text_encode_gives_video_and_audio_captions_and_transcript(demo_text):
    positive, negative = demo_text.args
    ((video, extra),) = positive
    assert video.shape == (1, 24, 64) and extra[types.AUDIO_CONTEXT].shape == (1, 24, 64)
    assert not torch.equal(video, extra[types.AUDIO_CONTEXT])
    assert negative[0][0].abs().sum() == 0  # empty negative caption = all-zero context, as Wan pads


def test_text_encode_empty_audio_caption_reuses_the_video_caption(demo_model):
    positive, _ = run_node(
        cond.HarmonyTextEncode,
        model=demo_model,
        video_caption="a bell",
        audio_caption="",
        transcript="ding",
        negative="",
    ).args
    assert torch.equal(positive[0][0], positive[0][1][types.AUDIO_CONTEXT])
    assert positive[0][1][types.TRANSCRIPT] == "ding"


def test_text_encode_on_a_model_without_its_own_encoder_points_to_clip_loader():
    model = adapter.model_patcher(harmony.HarmonyModel(config.preset("tiny")), "tiny")
    with pytest.raises(
        ValueError, match="model: this model has no caption encoder.*CLIPLoader \\(type 'wan'\\)"
    ):
        run_node(
            cond.HarmonyTextEncode,
            model=model,
            video_caption="x",
            audio_caption="",
            transcript="",
            negative="",
        )


def test_conditioning_combines_native_embeddings():
    video = [[torch.randn(1, 7, 4096), {"pooled_output": None}]]
    audio = [[torch.randn(1, 5, 4096), {}]]
    ((ctx, extra),) = run_node(cond.HarmonyConditioning, video=video, audio=audio, transcript="hello")[0]
    assert ctx is video[0][0] and extra[types.AUDIO_CONTEXT] is audio[0][0]
    assert extra[types.TRANSCRIPT] == "hello" and "pooled_output" in extra
    ((ctx, extra),) = run_node(cond.HarmonyConditioning, video=video, transcript="")[0]
    assert extra[types.AUDIO_CONTEXT] is ctx
    with pytest.raises(ValueError, match="video: expected the output of one CLIPTextEncode, got 2"):
        run_node(cond.HarmonyConditioning, video=video + video, transcript="")


def tone(seconds: float, rate: int = 44100, channels: int = 2) -> dict:
    t = torch.arange(int(seconds * rate)) / rate
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * t)
    return {"waveform": wave.expand(1, channels, -1).clone(), "sample_rate": rate}


def test_audio_condition_encodes_clean_latents_at_the_codec_rate(demo_codecs):
    out = run_node(
        cond.HarmonyAudioCondition,
        codecs=demo_codecs,
        audio=tone(1.0),
        role="drive",
        start_seconds=0.25,
        max_seconds=0.5,
    )[0]
    assert out.role == "drive" and out.seconds == pytest.approx(0.5)
    assert out.latent.shape[::2] == (1, 16)  # 0.5 s at 16 kHz = 8000 samples -> 16 latents of 512
    assert out.signature == types.audio_signature(demo_codecs.audio)
    whole = run_node(
        cond.HarmonyAudioCondition,
        codecs=demo_codecs,
        audio=tone(1.0),
        role="reference_voice",
        start_seconds=0.0,
        max_seconds=0.0,
    )[0]
    assert whole.role == "reference_voice" and whole.latent.shape[-1] == 32  # 16000 samples -> 32 latents


def test_audio_condition_start_past_the_end_names_start_seconds(demo_codecs):
    with pytest.raises(ValueError, match="start_seconds: 2.0 s is past the end of the audio"):
        run_node(
            cond.HarmonyAudioCondition,
            codecs=demo_codecs,
            audio=tone(1.0),
            role="drive",
            start_seconds=2.0,
            max_seconds=0.0,
        )


def frames(count: int, height: int = 64, width: int = 64) -> torch.Tensor:
    return torch.rand(count, height, width, 3, generator=torch.Generator().manual_seed(count))


def test_video_condition_from_images_trims_to_4k_plus_1(demo_codecs):
    out = run_node(cond.HarmonyVideoCondition, codecs=demo_codecs, images=frames(11), fps=29.97)[0]
    assert out.num_frames == 9 and out.latent.shape == (1, demo_codecs.video.latent_channels, 3, 8, 8)
    assert out.fps == Fraction(30000, 1001) and (out.width, out.height) == (64, 64)


def test_video_condition_from_a_native_video_uses_its_rate(demo_codecs):
    video = InputImpl.VideoFromComponents(Types.VideoComponents(images=frames(5), frame_rate=Fraction(24)))
    out = run_node(cond.HarmonyVideoCondition, codecs=demo_codecs, video=video, fps=25.0)[0]
    assert out.fps == 24 and out.num_frames == 5 and out.latent.shape[2:] == (2, 8, 8)


def test_video_condition_wiring_and_grid_errors(demo_codecs):
    with pytest.raises(ValueError, match="images / video: connect exactly one"):
        run_node(cond.HarmonyVideoCondition, codecs=demo_codecs, fps=25.0)
    video = InputImpl.VideoFromComponents(Types.VideoComponents(images=frames(5), frame_rate=Fraction(24)))
    with pytest.raises(ValueError, match="images / video: connect exactly one"):
        run_node(cond.HarmonyVideoCondition, codecs=demo_codecs, images=frames(5), video=video, fps=25.0)
    with pytest.raises(ValueError, match=r"images \(width\): 72 is not a multiple of 16.*use e.g. 64"):
        run_node(cond.HarmonyVideoCondition, codecs=demo_codecs, images=frames(5, 64, 72), fps=25.0)


def test_reference_image_crops_or_resizes_to_the_size(demo_codecs):
    image = torch.rand(2, 48, 96, 3)
    out = run_node(
        cond.HarmonyReferenceImage, codecs=demo_codecs, image=image, width=64, height=32, crop="center"
    )[0]
    assert out.image.shape == (3, 32, 64) and out.latent.shape[2:] == (1, 4, 8)
    assert out.image.min() >= -1 and out.image.max() <= 1
    stretched = run_node(
        cond.HarmonyReferenceImage, codecs=demo_codecs, image=image, width=32, height=32, crop="resize"
    )[0]
    assert stretched.image.shape == (3, 32, 32) and (stretched.width, stretched.height) == (32, 32)
    with pytest.raises(ValueError, match="height: 40 is not a multiple of 16"):
        run_node(
            cond.HarmonyReferenceImage, codecs=demo_codecs, image=image, width=64, height=40, crop="center"
        )
