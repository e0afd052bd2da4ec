"""Socket types of the pack and the values that travel on them.

Native types are used where they fit: MODEL (a ComfyUI ModelPatcher, nodes/adapters/model_patcher.py),
CONDITIONING, LATENT, IMAGE, AUDIO, VIDEO. Custom sockets carry objects core has no type for.

CONDITIONING (ComfyUI's `[[tensor, dict]]`): the tensor is the video caption embedding [1, L, D]; the dict
adds `harmony_audio_context` (audio caption embedding [1, L, D]), `harmony_transcript` (str) and
`harmony_language` (the transcript's language, "en" or "zh"). A plain CONDITIONING from CLIPTextEncode (umT5 via
CLIPLoader type "wan") is accepted as is: the audio caption is then the video caption, the transcript is empty
and English.

LATENT (decision, see nodes/README.md): a plain dict, not ComfyUI's NestedTensor AV convention —
`samples` = video latent [B, Cv, Tv, h, w] (so core latent tools see an ordinary video latent),
`harmony_audio` = audio latent [B, Ca, Ta], `harmony_fps` = exact frame rate as text ("25", "30000/1001").
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from comfy_api.latest import io

from ..harmony_core import timeline
from ..harmony_core.codecs.base import AudioCodec, VideoCodec
from ..harmony_core.config import preset
from ..harmony_core.model.harmony import HarmonyModel
from ..harmony_core.pipeline import HarmonyPipeline, size_grid
from .adapters import model_patcher

HarmonyCodecsType = io.Custom("HARMONY_CODECS")
HarmonyAudioType = io.Custom("HARMONY_AUDIO")
HarmonyVideoType = io.Custom("HARMONY_VIDEO")
HarmonyImageType = io.Custom("HARMONY_IMAGE")

AUDIO_CONTEXT, TRANSCRIPT, LANGUAGE = "harmony_audio_context", "harmony_transcript", "harmony_language"
LATENT_AUDIO, LATENT_FPS = "harmony_audio", "harmony_fps"
AUDIO_ROLES = ("drive", "reference_voice")
DEFAULTS = preset("demo").defaults  # widget defaults: what the bundled demo model generates
DEFAULT_FPS = float(timeline.as_rate(DEFAULTS.fps))


def video_signature(codec: VideoCodec) -> tuple:
    """What must match between a video latent and the codec that reads it: name, channels, strides."""
    return codec.name, codec.latent_channels, codec.temporal_stride, codec.spatial_stride


def audio_signature(codec: AudioCodec) -> tuple:
    """What must match between an audio latent and the codec that reads it: name, channels, rates."""
    return codec.name, codec.latent_channels, codec.sample_rate, codec.samples_per_latent


@dataclass(frozen=True, eq=False)
class HarmonyCodecs:
    """The codecs of a model (HARMONY_CODECS). `model` is the model they were built for (its layout rules);
    `patcher` holds both codecs under ComfyUI's memory management."""

    model: HarmonyModel
    patcher: object

    @property
    def video(self) -> VideoCodec:
        return model_patcher.codecs_of(self.patcher)[0]

    @property
    def audio(self) -> AudioCodec:
        return model_patcher.codecs_of(self.patcher)[1]

    @property
    def grid(self) -> int:
        """Output width and height must be multiples of this (codec stride x patch size)."""
        return size_grid(self.model.cfg, self.video)

    def pipeline(self, model: HarmonyModel, device: torch.device) -> HarmonyPipeline:
        """A pipeline of `model` with these codecs; raises naming `codecs` when they do not fit the model."""
        try:
            return HarmonyPipeline(model, self.video, self.audio, device)
        except ValueError as err:
            raise ValueError(
                f"codecs: {err}; build the codecs with HarmonyCodecLoader from the same MODEL"
            ) from err


@dataclass(frozen=True, eq=False)
class AudioCondition:
    """HARMONY_AUDIO: a clean audio latent [1, Ca, Ta] that drives the video or gives the voice; `transcript`:
    what a reference voice says (UniAVGen reads it in front of the clip's transcript)."""

    role: str
    latent: torch.Tensor
    seconds: float
    signature: tuple
    transcript: str = ""


@dataclass(frozen=True, eq=False)
class VideoCondition:
    """HARMONY_VIDEO: a clean video latent [1, Cv, Tv, h, w] of `num_frames` frames at `fps`."""

    latent: torch.Tensor
    fps: Fraction
    num_frames: int
    height: int
    width: int
    signature: tuple


@dataclass(frozen=True, eq=False)
class ReferenceImage:
    """HARMONY_IMAGE: the first frame, as pixels [3, H, W] in [-1, 1] and as a latent [1, Cv, 1, h, w]."""

    image: torch.Tensor
    latent: torch.Tensor
    width: int
    height: int
    signature: tuple


def conditioning(
    video: torch.Tensor, audio: torch.Tensor, transcript: str, extra: dict | None = None, language: str = "en"
) -> list:
    """CONDITIONING [[video_context [1, L, D], {..., harmony_audio_context, harmony_transcript, harmony_language}]]."""
    return [[video, {**(extra or {}), AUDIO_CONTEXT: audio, TRANSCRIPT: transcript, LANGUAGE: language}]]


def read_language(cond: list) -> str:
    """The transcript language a CONDITIONING carries ("en" when it carries none)."""
    return str(cond[0][1].get(LANGUAGE, "en"))


def read_conditioning(cond: list, text_dim: int, input_name: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(video_context [1, L, D], audio_context [1, L, D], transcript) of a CONDITIONING, checked against
    the model's caption width."""
    if not isinstance(cond, list) or len(cond) != 1:
        count = len(cond) if isinstance(cond, list) else type(cond).__name__
        raise ValueError(
            f"{input_name}: expected one conditioning, got {count}; Harmony takes a single caption "
            "(do not combine or concatenate conditionings)"
        )
    video, extra = cond[0][0], cond[0][1]
    audio = extra.get(AUDIO_CONTEXT, video)
    for label, ctx in (("video", video), ("audio", audio)):
        if ctx.ndim != 3 or ctx.shape[-1] != text_dim:
            raise ValueError(
                f"{input_name}: {label} caption embedding has shape {tuple(ctx.shape)} but the model "
                f"takes [1, tokens, {text_dim}]; encode the text with the model's own encoder "
                "(HarmonyTextEncode) or, for umT5 models, CLIPLoader type 'wan' + CLIPTextEncode"
            )
    return video, audio, str(extra.get(TRANSCRIPT, ""))


def make_latent(video: torch.Tensor, audio: torch.Tensor, fps: Fraction) -> dict:
    """LATENT {"samples": video [B, Cv, Tv, h, w], "harmony_audio": [B, Ca, Ta], "harmony_fps": "25"}."""
    return {"samples": video.cpu(), LATENT_AUDIO: audio.cpu(), LATENT_FPS: str(fps)}


def read_latent(latent: dict, input_name: str = "latent") -> tuple[torch.Tensor, torch.Tensor, Fraction]:
    """(video [B, Cv, Tv, h, w], audio [B, Ca, Ta], fps) of a Harmony LATENT."""
    if not isinstance(latent, dict) or LATENT_AUDIO not in latent or LATENT_FPS not in latent:
        raise ValueError(
            f"{input_name}: this LATENT has no Harmony audio track; connect the latent output of "
            "HarmonySampler"
        )
    video, audio = latent["samples"], latent[LATENT_AUDIO]
    if video.ndim != 5 or audio.ndim != 3 or video.shape[0] != audio.shape[0]:
        raise ValueError(
            f"{input_name}: expected video [B, C, T, H, W] and audio [B, C, T] latents of one batch, "
            f"got {tuple(video.shape)} and {tuple(audio.shape)}"
        )
    return video, audio, timeline.as_rate(latent[LATENT_FPS], "harmony_fps")
