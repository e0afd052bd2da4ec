"""HarmonySampler on the demo model: the three modes, takes, progress/preview, interrupt, wiring errors."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import comfy_api.latest as comfy_latest
import pytest
import torch
from comfy.cli_args import LatentPreviewMethod, args
from comfy_api.latest import io

from node_harness import SAMPLER_WIDGETS as WIDGETS
from node_harness import pack_module, run_node

sampling = pack_module("nodes.sampling")
cond = pack_module("nodes.conditioning")
media = pack_module("nodes.media")
types = pack_module("nodes.types")
adapter = pack_module("nodes.adapters.model_patcher")
harmony = pack_module("harmony_core.model.harmony")
config = pack_module("harmony_core.config")


def sample(model, codecs, positive, **over):
    inputs = {**WIDGETS, **over}
    return run_node(
        sampling.HarmonySampler,
        hidden={io.Hidden.unique_id: "12"},
        model=model,
        codecs=codecs,
        positive=positive,
        **inputs,
    )[0]


@pytest.fixture
def positive(demo_text):
    return demo_text[0]


def record_progress(monkeypatch, interrupt_after: int | None = None) -> list:
    """A ProgressBar hook like the server's, except that it never throws itself (so the node's own check is
    what honours the interrupt); it raises the interrupt flag after step `interrupt_after`."""
    seen = []

    def hook(value, total, preview, node_id=None):
        seen.append((value, total, node_id))
        if value == interrupt_after:
            mm.interrupt_current_processing()

    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", hook)
    monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL", 0.0)  # steps here take milliseconds
    return seen


def test_joint_gives_video_and_audio_latents_and_reports_every_step(
    demo_model, demo_codecs, positive, monkeypatch
):
    seen = record_progress(monkeypatch)
    latent = sample(demo_model, demo_codecs, positive, steps=3)
    assert latent["samples"].shape == (1, demo_codecs.video.latent_channels, 3, 8, 8)  # 9 frames -> 3 of 8x8
    assert latent[types.LATENT_AUDIO].shape == (1, demo_codecs.audio.latent_channels, 12)  # 0.36 s x 31.25/s
    assert latent[types.LATENT_FPS] == "25"
    assert seen == [(1, 3, "12"), (2, 3, "12"), (3, 3, "12")]
    assert mm.current_loaded_models[:2] == [demo_model, demo_codecs.patcher]
    assert comfy_latest.progress_updates == []  # previews are off by default


def test_batch_gives_several_different_takes(demo_model, demo_codecs, positive):
    latent = sample(demo_model, demo_codecs, positive, batch=2)
    video, audio = latent["samples"], latent[types.LATENT_AUDIO]
    assert video.shape[0] == audio.shape[0] == 2
    assert not torch.allclose(video[0], video[1]) and not torch.allclose(audio[0], audio[1])
    again = sample(demo_model, demo_codecs, positive, batch=2)
    assert torch.equal(again["samples"], video)  # same seed, same takes


def test_asks_comfy_to_free_room_for_the_activations(demo_model, demo_codecs, positive):
    """memory_required grows with takes and guidance passes (3 with SyncCFG on both sides, 1 without), on top of
    the fixed bytes ComfyUI cannot count (adapter.extra_bytes: weights installed for direct reads, non-ops tensors)."""
    asked = {}
    fixed = adapter.extra_bytes(demo_model)
    for batch, scale in ((1, 1.5), (2, 1.5), (1, 1.0)):
        mm.memory_requests.clear()
        sample(demo_model, demo_codecs, positive, batch=batch, sync_video_scale=scale, sync_audio_scale=scale)
        asked[batch, scale] = mm.memory_requests[-1] - fixed
    assert asked[1, 1.5] > 0
    assert asked[2, 1.5] == pytest.approx(2 * asked[1, 1.5], rel=1e-6)
    assert asked[1, 1.5] == pytest.approx(3 * asked[1, 1.0], rel=1e-6)


def test_previews_when_enabled(demo_model, demo_codecs, positive, monkeypatch):
    monkeypatch.setattr(args, "preview_method", LatentPreviewMethod.Auto)
    sample(demo_model, demo_codecs, positive)
    updates = comfy_latest.progress_updates
    assert [(u["value"], u["max"], u["node_id"]) for u in updates] == [(1, 2, "12"), (2, 2, "12")]
    image = updates[-1]["image"]
    assert image.shape == (1, 64, 64, 3) and 0 <= image.min() and image.max() <= 1


def test_interrupt_mid_sampling_propagates_and_nothing_is_written(
    demo_model, demo_codecs, positive, monkeypatch, comfy_env
):
    seen = record_progress(monkeypatch, interrupt_after=1)
    with pytest.raises(mm.InterruptProcessingException) as caught:
        latent = sample(demo_model, demo_codecs, positive, steps=4)
        images, audio, fps = run_node(media.HarmonyDecode, codecs=demo_codecs, latent=latent).args
        run_node(media.HarmonySaveAV, images=images[0], audio=audio[0], fps=fps[0], filename_prefix="x")
    assert not isinstance(caught.value, Exception)  # a BaseException, as in ComfyUI
    assert [v for v, _, _ in seen] == [1]  # stopped at the next step
    assert not mm.processing_interrupted()  # the flag is consumed
    assert not (comfy_env / "output").exists()


def test_audio_driven_keeps_the_driving_audio(demo_model, demo_codecs, positive):
    wave = {"waveform": torch.randn(1, 1, 16000) * 0.1, "sample_rate": 16000}
    drive = run_node(
        cond.HarmonyAudioCondition,
        codecs=demo_codecs,
        audio=wave,
        role="drive",
        start_seconds=0.0,
        max_seconds=0.0,
    )[0]
    latent = sample(demo_model, demo_codecs, positive, mode="audio_driven", audio_cond=drive)
    audio = latent[types.LATENT_AUDIO]
    assert torch.allclose(audio[0], drive.latent[0, :, : audio.shape[-1]], atol=1e-6)  # trimmed to the video


def test_video_driven_keeps_the_frames_and_takes_their_size(demo_model, demo_codecs, positive):
    images = torch.rand(9, 32, 48, 3)
    video = run_node(cond.HarmonyVideoCondition, codecs=demo_codecs, images=images, fps=12.5)[0]
    latent = sample(
        demo_model, demo_codecs, positive, mode="video_driven", video_cond=video, width=999, frames=80
    )  # ignored in this mode
    assert torch.allclose(latent["samples"], video.latent, atol=1e-6)
    assert latent[types.LATENT_FPS] == "25/2" and latent[types.LATENT_AUDIO].shape[::2] == (1, 23)


def test_reference_image_and_voice_in_joint_mode(demo_model, demo_codecs, positive):
    ref = run_node(
        cond.HarmonyReferenceImage,
        codecs=demo_codecs,
        image=torch.rand(1, 64, 64, 3),
        width=64,
        height=64,
        crop="center",
    )[0]
    voice = run_node(
        cond.HarmonyAudioCondition,
        codecs=demo_codecs,
        audio={"waveform": torch.randn(1, 2, 8000) * 0.1, "sample_rate": 8000},
        role="reference_voice",
        start_seconds=0.0,
        max_seconds=0.0,
    )[0]
    latent = sample(demo_model, demo_codecs, positive, reference=ref, audio_cond=voice)
    assert torch.allclose(latent["samples"][:, :, :1], ref.latent, atol=1e-6)  # the first frame is the image


def other_codec_condition():
    return types.AudioCondition("drive", torch.zeros(1, 64, 8), 0.25, ("mmaudio", 64, 16000, 512))


@pytest.mark.parametrize(
    "over, message",
    [
        ({"mode": "audio_driven"}, "audio_cond: mode 'audio_driven' needs a driving soundtrack"),
        ({"mode": "video_driven"}, "video_cond: mode 'video_driven' needs driving frames"),
        ({"width": 72}, "width: 72 is not a multiple of 16.*use e.g. 64"),
        ({"height": 8}, "height = 8 is outside its range 16..4096"),  # below the widget minimum
        ({"height": 40}, "height: 40 is not a multiple of 16.*use e.g. 32"),
        ({"frames": 80}, r"frames: 80 is not 4\*k\+1.*use e.g. 81"),
        ({"frames": 1601}, "frames: 1601 frames at 25 fps last more than 60 s; at most 1497 frames"),
        ({"rescale_audio": 1.5}, r"rescale_audio = 1\.5 is outside its range 0\.\.1"),
    ],
)
def test_wrong_values_name_the_input_before_any_heavy_work(demo_model, demo_codecs, positive, over, message):
    with pytest.raises(ValueError, match=message):
        sample(demo_model, demo_codecs, positive, **over)
    assert mm.current_loaded_models == []  # nothing was loaded


def test_rescale_widgets_reach_the_guidance_and_rescale_the_guided_stream(demo_model, demo_codecs, positive):
    """CFG-rescale widgets: optional (a prompt without them gets the widget defaults) and carried into the
    Guidance of either kind; rescale_audio changes the audio that SyncCFG (audio scale 1.5) guides."""
    rescale = pack_module("harmony_core.sampling").Rescale
    w = sampling.Widgets(**WIDGETS, rescale_video=0.5, rescale_audio=0.25)
    assert sampling.guidance_of(w, demo_model.model.diffusion_model.cfg).rescale == rescale(0.5, 0.25)
    d = types.DEFAULTS
    without = sample(demo_model, demo_codecs, positive)
    default = sample(demo_model, demo_codecs, positive, rescale_video=d.rescale_video, rescale_audio=d.rescale_audio)
    assert torch.equal(without[types.LATENT_AUDIO], default[types.LATENT_AUDIO])
    off = sample(demo_model, demo_codecs, positive, rescale_video=0.0, rescale_audio=0.0)
    on = sample(demo_model, demo_codecs, positive, rescale_audio=1.0)
    assert not torch.allclose(on[types.LATENT_AUDIO], off[types.LATENT_AUDIO])


def test_wrong_wiring_names_the_input(demo_model, demo_codecs, positive):
    voice = types.AudioCondition(
        "reference_voice", torch.zeros(1, 64, 8), 0.25, types.audio_signature(demo_codecs.audio)
    )
    with pytest.raises(ValueError, match="audio_cond: mode 'audio_driven' needs a driving soundtrack"):
        sample(demo_model, demo_codecs, positive, mode="audio_driven", audio_cond=voice)
    with pytest.raises(ValueError, match="audio_cond: it was encoded with another codec \\(mmaudio\\)"):
        sample(demo_model, demo_codecs, positive, mode="audio_driven", audio_cond=other_codec_condition())
    ref = types.ReferenceImage(
        torch.zeros(3, 32, 32), torch.zeros(1, 16, 1, 4, 4), 32, 32, types.video_signature(demo_codecs.video)
    )
    with pytest.raises(ValueError, match="reference: it is 32x32 but the clip is 64x64"):
        sample(demo_model, demo_codecs, positive, reference=ref)
    umt5 = [[torch.zeros(1, 5, 4096), {}]]
    with pytest.raises(ValueError, match=r"positive: video caption embedding has shape \(1, 5, 4096\).*64\]"):
        sample(demo_model, demo_codecs, umt5)
    foreign = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), "cpu", "cpu")
    with pytest.raises(ValueError, match="model: this MODEL is a Linear, not a Harmony model"):
        sample(foreign, demo_codecs, positive)
    assert mm.current_loaded_models == []


def test_model_without_encoder_needs_negative_and_fitting_codecs(demo_codecs):
    tiny = adapter.model_patcher(harmony.HarmonyModel(config.preset("tiny")), "tiny")
    positive = [[torch.zeros(1, 4, 32), {}]]
    with pytest.raises(ValueError, match="negative: text CFG above 1 needs a negative conditioning"):
        sample(tiny, demo_codecs, positive, text_video_scale=3.0)
    with pytest.raises(ValueError, match="codecs: codecs do not fit the model.*same MODEL"):
        sample(tiny, demo_codecs, positive, negative=positive)
    assert mm.current_loaded_models == []


def test_conditions_the_mode_does_not_use_are_ignored_with_a_warning(
    demo_model, demo_codecs, positive, caplog
):
    video = run_node(
        cond.HarmonyVideoCondition, codecs=demo_codecs, images=torch.rand(5, 64, 64, 3), fps=25.0
    )[0]
    latent = sample(demo_model, demo_codecs, positive, video_cond=video)
    assert latent["samples"].shape[2:] == (3, 8, 8)
    assert "video_cond is ignored in mode 'joint'" in caplog.text
