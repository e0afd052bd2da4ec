"""Conditioning nodes: captions (own encoder or native umT5 CONDITIONING), driving/reference audio, driving
video, reference image. Media become clean latents here, with the codecs of HarmonyCodecLoader."""

from __future__ import annotations

import logging
from fractions import Fraction

import torch
import torch.nn.functional as F

from comfy_api.latest import io

from ..harmony_core import timeline
from ..harmony_core.model.transcript_ids import LANGUAGES
from ..harmony_core.pipeline import MAX_SECONDS, check_grid
from .adapters import media, model_patcher
from .types import (
    AUDIO_ROLES,
    DEFAULT_FPS,
    DEFAULTS,
    AudioCondition,
    HarmonyAudioType,
    HarmonyCodecs,
    HarmonyCodecsType,
    HarmonyImageType,
    HarmonyVideoType,
    ReferenceImage,
    VideoCondition,
    audio_signature,
    conditioning,
    video_signature,
)
from .validation import checked

log = logging.getLogger(__name__)


class HarmonyTextEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        text = "Leave empty to reuse the video caption."
        return io.Schema(
            node_id="HarmonyTextEncode",
            display_name="Harmony Text Encode",
            category="Harmony/conditioning",
            description="Encodes captions with the model's own text encoder (the demo model). Real models "
            "take umT5 CONDITIONING through HarmonyConditioning.",
            inputs=[
                io.Model.Input(
                    "model", tooltip="A Harmony model with its own caption encoder (the demo model)."
                ),
                io.String.Input(
                    "video_caption",
                    multiline=True,
                    default="a red ball bounces on a blue floor",
                    tooltip="What is seen: scene, subjects, motion.",
                ),
                io.String.Input(
                    "audio_caption",
                    multiline=True,
                    default="",
                    tooltip=f"What is heard: sounds, music, voice. {text}",
                ),
                io.String.Input(
                    "transcript", multiline=True, default="", tooltip="Words to be spoken (speech), or empty."
                ),
                io.String.Input(
                    "negative",
                    multiline=True,
                    default="",
                    tooltip="What to avoid; used when text CFG scales are above 1.",
                ),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="Video + audio caption, transcript."),
                io.Conditioning.Output(display_name="negative", tooltip="The negative caption."),
            ],
        )

    @classmethod
    @checked
    def execute(
        cls, model: object, video_caption: str, audio_caption: str, transcript: str, negative: str
    ) -> io.NodeOutput:
        encoder = model_patcher.harmony_model(model).text_encoder
        if encoder is None:
            raise ValueError(
                "model: this model has no caption encoder of its own; encode the captions with "
                "CLIPLoader (type 'wan') + CLIPTextEncode and combine them with HarmonyConditioning"
            )
        with torch.no_grad():
            ctx = (
                encoder.encode([video_caption, audio_caption or video_caption, negative]).float().cpu()
            )  # [3, L, D]
        return io.NodeOutput(
            conditioning(ctx[0:1], ctx[1:2], transcript), conditioning(ctx[2:3], ctx[2:3], "")
        )


class HarmonyConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyConditioning",
            display_name="Harmony Conditioning",
            category="Harmony/conditioning",
            description="Combines native caption embeddings (umT5 from CLIPLoader type 'wan' + "
            "CLIPTextEncode) into one Harmony conditioning: video caption, audio caption, transcript and its "
            "language. UniAVGen reads the video caption and the transcript (it has no audio caption).",
            inputs=[
                io.Conditioning.Input(
                    "video", tooltip="Video caption (CLIPTextEncode with the umT5 encoder)."
                ),
                io.Conditioning.Input(
                    "audio", optional=True, tooltip="Audio caption; unconnected = the video caption."
                ),
                io.String.Input(
                    "transcript",
                    multiline=True,
                    default="",
                    tooltip="Words to be spoken (speech), or empty. Lip-sync (audio_driven): what the "
                    "driving speech says.",
                ),
                io.Combo.Input(
                    "language",
                    options=list(LANGUAGES),
                    default="en",
                    optional=True,
                    tooltip="Language of the transcripts (this one and a reference voice's). en: read as "
                    "characters. zh: UniAVGen converts Chinese to pinyin with jieba + pypinyin "
                    "(pip install jieba pypinyin in ComfyUI's Python).",
                ),
            ],
            outputs=[
                io.Conditioning.Output(
                    display_name="conditioning", tooltip="For HarmonySampler's positive input."
                )
            ],
        )

    @classmethod
    @checked
    def execute(
        cls, video: list, transcript: str, audio: list | None = None, language: str = "en"
    ) -> io.NodeOutput:
        for name, cond in (("video", video), ("audio", audio)):
            if cond is not None and (not isinstance(cond, list) or len(cond) != 1):
                raise ValueError(
                    f"{name}: expected the output of one CLIPTextEncode, got {len(cond)} conditionings"
                )
        audio_ctx = video[0][0] if audio is None else audio[0][0]
        return io.NodeOutput(
            conditioning(video[0][0], audio_ctx, transcript, extra=dict(video[0][1]), language=language)
        )


def encode_audio(codecs: HarmonyCodecs, wave: torch.Tensor) -> torch.Tensor:
    """Mono wave [L] at the codec rate -> clean latent [1, Ca, Ta] (zero-padded to whole latents)."""
    spl = codecs.audio.samples_per_latent
    n = timeline.audio_latents_for_samples(wave.shape[-1], spl)
    wave = F.pad(wave, (0, n * spl - wave.shape[-1]))  # [n * spl]
    device = model_patcher.load(codecs.patcher)
    with torch.no_grad():
        return codecs.audio.encode(wave[None].to(device)).float().cpu()  # [1, Ca, n]


class HarmonyAudioCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyAudioCondition",
            display_name="Harmony Audio Condition",
            category="Harmony/conditioning",
            description="Encodes an audio clip: a soundtrack that drives the video (mode audio_driven: "
            "lip-sync to a given speech), or a voice sample the generated speech should sound like (with "
            "what it says, for UniAVGen).",
            inputs=[
                HarmonyCodecsType.Input("codecs", tooltip="Codecs from HarmonyCodecLoader."),
                io.Audio.Input("audio", tooltip="Audio, e.g. from Load Audio; mixed to mono and resampled."),
                io.Combo.Input(
                    "role",
                    options=list(AUDIO_ROLES),
                    default="drive",
                    tooltip="drive: the video is generated to this audio (mode audio_driven). "
                    "reference_voice: timbre of the voice to generate (any mode).",
                ),
                io.Float.Input(
                    "start_seconds",
                    default=0.0,
                    min=0.0,
                    max=3600.0,
                    step=0.1,
                    tooltip="Skip this much of the clip first.",
                ),
                io.Float.Input(
                    "max_seconds",
                    default=0.0,
                    min=0.0,
                    max=MAX_SECONDS,
                    step=0.1,
                    tooltip="Use at most this much after start_seconds; 0 = to the end. A driving clip "
                    "is trimmed or padded with silence to the video's length when sampling (UniAVGen never "
                    "trims: a longer clip is an error, a shorter one gets its tail generated).",
                ),
                io.String.Input(
                    "transcript",
                    multiline=True,
                    default="",
                    optional=True,
                    tooltip="reference_voice: what the voice sample says (UniAVGen reads it in front of the "
                    "clip's transcript; same language). Ignored for drive.",
                ),
            ],
            outputs=[HarmonyAudioType.Output(display_name="audio_cond", tooltip="For HarmonySampler.")],
        )

    @classmethod
    @checked
    def execute(
        cls,
        codecs: HarmonyCodecs,
        audio: dict,
        role: str,
        start_seconds: float,
        max_seconds: float,
        transcript: str = "",
    ) -> io.NodeOutput:
        rate = codecs.audio.sample_rate
        wave = media.audio_to_mono(audio, rate)  # [L]
        start = timeline.samples_for_duration(start_seconds, rate)
        if start >= wave.shape[-1]:
            raise ValueError(
                f"start_seconds: {start_seconds} s is past the end of the audio "
                f"({wave.shape[-1] / rate:.2f} s); lower it"
            )
        stop = (
            wave.shape[-1] if max_seconds <= 0 else start + timeline.samples_for_duration(max_seconds, rate)
        )
        wave = wave[start:stop]  # [L']
        if wave.shape[-1] > timeline.samples_for_duration(MAX_SECONDS, rate):
            raise ValueError(
                f"audio: {wave.shape[-1] / rate:.1f} s is longer than {MAX_SECONDS:.0f} s; set max_seconds"
            )
        latent = encode_audio(codecs, wave)
        return io.NodeOutput(
            AudioCondition(role, latent, wave.shape[-1] / rate, audio_signature(codecs.audio), transcript)
        )


class HarmonyVideoCondition(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyVideoCondition",
            display_name="Harmony Video Condition",
            category="Harmony/conditioning",
            description="Encodes a video that drives the audio (mode video_driven): frames or a VIDEO.",
            inputs=[
                HarmonyCodecsType.Input("codecs", tooltip="Codecs from HarmonyCodecLoader."),
                io.Image.Input(
                    "images",
                    optional=True,
                    tooltip="Frames (e.g. from Load Video's images); width and height must be "
                    "multiples of the model grid. Connect images OR video.",
                ),
                io.Video.Input(
                    "video", optional=True, tooltip="A VIDEO (e.g. Load Video); its frame rate is used."
                ),
                io.Float.Input(
                    "fps",
                    default=DEFAULT_FPS,
                    min=1.0,
                    max=120.0,
                    step=1.0,
                    round=0.001,
                    tooltip="Frame rate of images (29.97 is read as 30000/1001). Ignored for video.",
                ),
            ],
            outputs=[HarmonyVideoType.Output(display_name="video_cond", tooltip="For HarmonySampler.")],
        )

    @classmethod
    @checked
    def execute(
        cls,
        codecs: HarmonyCodecs,
        fps: float,
        images: torch.Tensor | None = None,
        video: object | None = None,
    ) -> io.NodeOutput:
        if (images is None) == (video is None):
            raise ValueError("images / video: connect exactly one of them (frames with fps, or a VIDEO)")
        name = "images" if video is None else "video"
        frames, rate = (images, timeline.as_rate(fps, "fps")) if video is None else media.video_images(video)
        count, height, width = int(frames.shape[0]), int(frames.shape[1]), int(frames.shape[2])
        check_grid(width, codecs.grid, f"{name} (width)")
        check_grid(height, codecs.grid, f"{name} (height)")
        stride = codecs.video.temporal_stride
        used = timeline.causal_frames_within(count, stride)
        if used != count:
            log.warning(
                "%s: %d frames trimmed to %d (the video codec takes %d*k+1 frames)", name, count, used, stride
            )
        if timeline.frames_duration(used, rate) > MAX_SECONDS:
            raise ValueError(
                f"{name}: {used} frames at {rate} fps last more than {MAX_SECONDS:.0f} s; trim it"
            )
        pixels = media.image_frames(frames[:used], name)  # [3, F, H, W]
        device = model_patcher.load(codecs.patcher)
        with torch.no_grad():
            latent = codecs.video.encode(pixels[None].to(device)).float().cpu()  # [1, Cv, Tv, h, w]
        return io.NodeOutput(
            VideoCondition(latent, Fraction(rate), used, height, width, video_signature(codecs.video))
        )


class HarmonyReferenceImage(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyReferenceImage",
            display_name="Harmony Reference Image",
            category="Harmony/conditioning",
            description="An image the clip starts from (image + text -> audio + video).",
            inputs=[
                HarmonyCodecsType.Input("codecs", tooltip="Codecs from HarmonyCodecLoader."),
                io.Image.Input("image", tooltip="The first frame; only the first image of a batch is used."),
                io.Int.Input(
                    "width",
                    default=DEFAULTS.width,
                    min=16,
                    max=4096,
                    step=16,
                    tooltip="Output width; must equal HarmonySampler's width (a multiple of the grid).",
                ),
                io.Int.Input(
                    "height",
                    default=DEFAULTS.height,
                    min=16,
                    max=4096,
                    step=16,
                    tooltip="Output height; must equal HarmonySampler's height.",
                ),
                io.Combo.Input(
                    "crop",
                    options=list(media.CROP_MODES),
                    default="center",
                    tooltip="center: scale to cover and crop the middle (keeps proportions). "
                    "resize: stretch to the size.",
                ),
            ],
            outputs=[HarmonyImageType.Output(display_name="reference", tooltip="For HarmonySampler.")],
        )

    @classmethod
    @checked
    def execute(
        cls, codecs: HarmonyCodecs, image: torch.Tensor, width: int, height: int, crop: str
    ) -> io.NodeOutput:
        check_grid(width, codecs.grid, "width")
        check_grid(height, codecs.grid, "height")
        if image.shape[0] > 1:
            log.warning("image: %d images given; the first is the reference", image.shape[0])
        pixels = media.fit_image(image, width, height, crop)  # [3, H, W]
        device = model_patcher.load(codecs.patcher)
        with torch.no_grad():
            latent = codecs.video.encode(pixels[None, :, None].to(device)).float().cpu()  # [1, Cv, 1, h, w]
        return io.NodeOutput(ReferenceImage(pixels, latent, width, height, video_signature(codecs.video)))
