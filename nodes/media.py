"""Media nodes: latents -> frames + sound, a native VIDEO, and an mp4 in the output folder.

HarmonyDecode returns one list item per take (outputs marked as lists), so with batch > 1 every downstream
node (HarmonyMux, HarmonySaveAV, core SaveVideo, ...) runs once per take and each take becomes its own clip.
"""

from __future__ import annotations

import torch

from comfy_api.latest import io, ui

from ..harmony_core import timeline
from ..harmony_core.budget import MemoryPlan, check_budget, decode_bytes
from ..harmony_core.pipeline import Result
from .adapters import media, model_patcher, save
from .types import DEFAULT_FPS, HarmonyCodecs, HarmonyCodecsType, read_latent
from .validation import checked

PREVIEW_KEY = "harmony_av"


def _fps_input() -> io.Float.Input:
    return io.Float.Input(
        "fps",
        default=DEFAULT_FPS,
        min=1.0,
        max=120.0,
        step=1.0,
        round=0.001,
        tooltip="Frame rate (connect HarmonyDecode's fps; 29.97 is read as 30000/1001).",
    )


class HarmonyDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyDecode",
            display_name="Harmony Decode",
            category="Harmony/media",
            description="Decodes Harmony latents into frames and a soundtrack of exactly the video's length.",
            inputs=[
                HarmonyCodecsType.Input("codecs", tooltip="The codecs the latents were made with."),
                io.Latent.Input("latent", tooltip="Latents from HarmonySampler."),
            ],
            outputs=[
                io.Image.Output(
                    display_name="images", is_output_list=True, tooltip="Frames, one list item per take."
                ),
                io.Audio.Output(
                    display_name="audio", is_output_list=True, tooltip="Soundtrack, one per take."
                ),
                io.Float.Output(display_name="fps", is_output_list=True, tooltip="Frame rate of the frames."),
            ],
        )

    @classmethod
    @checked
    def execute(cls, codecs: HarmonyCodecs, latent: dict) -> io.NodeOutput:
        video, audio, fps = read_latent(latent)
        for kind, lat, codec in (("video", video, codecs.video), ("audio", audio, codecs.audio)):
            if lat.shape[1] != codec.latent_channels:
                raise ValueError(
                    f"codecs: the {kind} latent has {lat.shape[1]} channels but the {kind} codec reads "
                    f"{codec.latent_channels}; use the codecs the latent was sampled with"
                )
        device = model_patcher.load_device(codecs.patcher)
        pipeline = codecs.pipeline(codecs.model, device)
        layout = pipeline.layout_of(video, fps)
        size = f"decoding {layout.width}x{layout.height}, {layout.num_frames} frames, {video.shape[0]} take(s)"
        plan = MemoryPlan(size, 0, decode_bytes(codecs.video, video.shape[0], layout.num_frames, layout.height,
                                                layout.width))
        check_budget(plan, model_patcher.available_memory(device, codecs.patcher),
                     "sample a smaller size or fewer frames")
        model_patcher.load(codecs.patcher)
        images, sounds = as_media(pipeline.decode(video, audio, layout))
        return io.NodeOutput(images, sounds, [float(fps)] * len(images))


def as_media(result: Result) -> tuple[list, list]:
    """A decoded Result -> ([IMAGE [F, H, W, 3]] and [AUDIO]), one item per take."""
    images = [media.frames_to_image(frames) for frames in result.frames]
    sounds = [media.wave_to_audio(wave, result.sample_rate) for wave in result.wave]
    return images, sounds


class HarmonyMux(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyMux",
            display_name="Harmony Mux",
            category="Harmony/media",
            description="Frames + soundtrack -> a native VIDEO (for core Save Video / Preview Video); the "
            "sound is padded or trimmed to exactly the frames' duration.",
            inputs=[
                io.Image.Input("images", tooltip="Frames of one clip."),
                io.Audio.Input("audio", tooltip="Its soundtrack."),
                _fps_input(),
            ],
            outputs=[io.Video.Output(display_name="video", tooltip="Video with sound.")],
        )

    @classmethod
    @checked
    def execute(cls, images: torch.Tensor, audio: dict, fps: float) -> io.NodeOutput:
        return io.NodeOutput(media.make_video(images, audio, timeline.as_rate(fps, "fps")))


class HarmonySaveAV(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonySaveAV",
            display_name="Harmony Save Audio+Video",
            category="Harmony/media",
            description="Saves an mp4 (H.264 + AAC, sound exactly as long as the video) into the output "
            "folder, with the workflow in its metadata.",
            inputs=[
                io.Image.Input("images", tooltip="Frames of one clip."),
                io.Audio.Input("audio", tooltip="Its soundtrack."),
                _fps_input(),
                io.String.Input(
                    "filename_prefix",
                    default=save.DEFAULT_PREFIX,
                    tooltip="File name prefix; may contain a subfolder and %date:...% style values. "
                    "Files are numbered and never overwritten.",
                ),
            ],
            is_output_node=True,
        )

    @classmethod
    @checked
    def execute(cls, images: torch.Tensor, audio: dict, fps: float, filename_prefix: str) -> io.NodeOutput:
        tags = save.metadata(cls.hidden.prompt, cls.hidden.extra_pnginfo)
        name, subfolder = save.save_mp4(images, audio, timeline.as_rate(fps, "fps"), filename_prefix, tags)
        saved = ui.SavedResult(name, subfolder, io.FolderType.output)
        # Own UI key, read by web/harmony_av_preview.js: under "images" the editor would add its own video
        # player below ours. The queue and assets panels still list the mp4 (they read every key).
        return io.NodeOutput(ui={PREVIEW_KEY: [saved]})
