"""Loader nodes: the Harmony model (MODEL) and its codecs (HARMONY_CODECS)."""

from __future__ import annotations

import logging

import torch
from safetensors import SafetensorError

from comfy_api.latest import io

from ..harmony_core.attention import AttentionUnavailable, resolve
from ..harmony_core.build import load_pipeline
from ..harmony_core.codecs.base import AudioCodec, VideoCodec
from ..harmony_core.codecs.registry import REAL_AUDIO, REAL_VIDEO, build_audio_codec, build_video_codec
from ..harmony_core.config import HarmonyConfig
from ..harmony_core.loading import CheckpointError
from ..harmony_core.loading.checkpoint import config_of, read_header
from ..harmony_core.model.fp8 import E4M3, quantize_model
from ..harmony_core.model.harmony import HarmonyModel
from ..harmony_core.model.kit import MemoryKit
from ..harmony_core.model.load import load_model
from .adapters import memory_kit, model_patcher, paths
from .types import HarmonyCodecs, HarmonyCodecsType
from .validation import checked

log = logging.getLogger(__name__)

DEMO_CHOICE = "harmony_demo.safetensors (bundled)"
FROM_MODEL = "from model (demo)"
DTYPES = {"default": None, "fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ATTENTION = ("sdpa", "flash", "sage")
FP8 = ("off", "row", "tensor")
MAX_SWAP = 64  # the widget's bound; the loaded model's layer count is checked when it runs
UNIAVGEN_AUDIO = "uniavgen-24k"  # the audio codec with no VAE (harmony_core.codecs.registry)
FILE_ERRORS = (
    ValueError,
    OSError,
    SafetensorError,
)  # what a wrong or corrupt file raises (re-raised with the input)


def load_harmony(ckpt_name: str, weight_dtype: str, attention: str, kit: MemoryKit = MemoryKit()) -> HarmonyModel:
    """The model named by the loader's widgets, fp8 as `kit` (or ComfyUI's --fp8_*-unet flags) asks, on ComfyUI's
    offload device (on the CPU when layers are swapped: model_patcher parks them there); errors name the widget."""
    try:
        resolve(attention)
    except AttentionUnavailable as err:
        raise ValueError(f"attention: {err}; choose 'sdpa' (always available)") from err
    scaling, fmt = memory_kit.fp8_request(kit.fp8_scaling if kit.fp8 else "off")
    dtype = DTYPES[weight_dtype] or memory_kit.flag_dtype()
    device = torch.device("cpu") if kit.swap_blocks else model_patcher.offload_device()
    at_load = scaling if fmt == E4M3 else None   # load_model writes e4m3fn; e5m2 is quantized after loading
    if ckpt_name == DEMO_CHOICE:
        fp8_kit = MemoryKit(fp8=at_load is not None, fp8_scaling=at_load or "row")
        model = load_pipeline(None, device=device, attention=attention, dtype=dtype, allow_untrained=True,
                              kit=fp8_kit).model
    else:
        model = _load_file(ckpt_name, attention, dtype, device, at_load, kit.swap_blocks)
    if scaling is not None and at_load is None:
        quantize_model(model, scaling, fmt)
    memory_kit.check_swap(kit.swap_blocks, len(model.video.blocks))
    used = MemoryKit(scaling is not None, scaling or "row", kit.swap_blocks, kit.compile)
    log.info("%s: %s, %.2f G parameters in %s (%s%s)", ckpt_name, model.cfg.name,
             sum(p.numel() for p in model.parameters()) / 1e9, next(model.parameters()).dtype, used.describe(),
             f", {fmt}" if scaling else "")
    return model


def _load_file(ckpt_name: str, attention: str, dtype: torch.dtype | None, device: torch.device, fp8: str | None,
               swap_blocks: int) -> HarmonyModel:
    path = paths.full_path(paths.HARMONY_FOLDER, ckpt_name, "ckpt_name")
    try:
        if swap_blocks:   # checked before the (long) load: the file's config says how many layers it has
            memory_kit.check_swap(swap_blocks, config_of(read_header(path)).video.num_layers)
        return load_model(path, attention=attention, dtype=dtype, device=device, fp8=fp8)[0]
    except CheckpointError as err:
        raise ValueError(
            f"ckpt_name: {ckpt_name!r} is not a Harmony or UniAVGen checkpoint (nor a Wan2.2-TI2V DiT): "
            f"{err}. models/harmony holds Harmony checkpoints and UniAVGen downloads (the folder with "
            "diffusion_pytorch_model.safetensors.index.json); VAEs and vocoders go to models/vae"
        ) from err


class HarmonyModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyModelLoader",
            display_name="Harmony Model Loader",
            category="Harmony/loaders",
            description="Loads an audio-video model from models/harmony: a Harmony checkpoint, a UniAVGen "
            "download (its folder, e.g. UniAVGen/, or one .safetensors file), or the bundled demo model.",
            inputs=[
                io.Combo.Input(
                    "ckpt_name",
                    options=[DEMO_CHOICE, *paths.harmony_files()],
                    default=DEMO_CHOICE,
                    tooltip="Checkpoint in models/harmony: a .safetensors file, or a folder ending in '/' "
                    "holding a sharded checkpoint (HF MCG-NJU/UniAVGen downloaded into models/harmony/UniAVGen). "
                    "The bundled demo model is tiny, runs on the CPU and makes 64x64 clips of synthetic scenes.",
                ),
                io.Combo.Input(
                    "weight_dtype",
                    options=list(DTYPES),
                    default="default",
                    tooltip="Weight precision. default keeps the file's dtype; bf16/fp16 halve memory "
                    "on GPUs (UniAVGen, 7.06 G parameters: about 14 GB in bf16, 28 GB in fp32).",
                ),
                io.Combo.Input(
                    "attention",
                    options=list(ATTENTION),
                    default="sdpa",
                    tooltip="Attention kernel. sdpa works everywhere; flash and sage need their "
                    "packages and a CUDA GPU (an error says when they are missing).",
                ),
                io.Combo.Input(
                    "fp8",
                    options=list(FP8),
                    default="off",
                    optional=True,
                    tooltip="Store the big linear layers as float8_e4m3fn with float32 scales: about half the "
                    "weight memory (UniAVGen 6.7 GB instead of 13.1), ~2 % relative error. row: one scale per "
                    "output channel (more accurate); tensor: one per layer (ComfyUI's layout). Files already in "
                    "fp8 load as fp8 whatever this says; ComfyUI's --fp8_e4m3fn-unet / --fp8_e5m2-unet turn it "
                    "on (per tensor) when this is off.",
                ),
                io.Int.Input(
                    "swap_blocks",
                    default=0,
                    min=0,
                    max=MAX_SWAP,
                    optional=True,
                    tooltip="Keep the last N layers on the CPU and stream each to the GPU just before it runs "
                    "(0..the model's layer count: 30 for UniAVGen). For when ComfyUI's own offloading is not "
                    "used: ComfyUI already streams Harmony's layers itself with dynamic VRAM (its default on "
                    "NVIDIA), where this is ignored; with --disable-dynamic-vram, --novram, --highvram or on other "
                    "GPUs it applies, and ComfyUI sees only the resident layers.",
                ),
                io.Boolean.Input(
                    "compile",
                    default=False,
                    optional=True,
                    tooltip="torch.compile each transformer block: faster steps after the first, which "
                    "compiles (minutes for large models). Needs Triton on CUDA (a C++ compiler on the CPU); "
                    "without it the blocks run as they are, with a warning in the log.",
                ),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The Harmony model (video + audio towers).")
            ],
        )

    @classmethod
    @checked(own=("ckpt_name",))
    def execute(
        cls, ckpt_name: str, weight_dtype: str, attention: str, fp8: str = "off", swap_blocks: int = 0,
        compile: bool = False,
    ) -> io.NodeOutput:
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be true or false, got {compile!r}")
        kit = MemoryKit(fp8=fp8 != "off", fp8_scaling="row" if fp8 == "off" else fp8, swap_blocks=int(swap_blocks),
                        compile=compile)
        model = load_harmony(ckpt_name, weight_dtype, attention, kit)
        return io.NodeOutput(model_patcher.model_patcher(model, ckpt_name, kit))


def _spec(cfg: HarmonyConfig, kind: str) -> object:
    """The codec the checkpoint names; a plain Wan2.2 DiT names none and uses the real codecs."""
    spec = cfg.codecs.get(kind)
    if spec is None:
        spec = REAL_VIDEO[0] if kind == "video" else REAL_AUDIO[0]
        log.info("the checkpoint names no %s codec; using %s", kind, spec)
    return spec


def video_codec(cfg: HarmonyConfig, video_vae: str, vae: object | None) -> VideoCodec:
    """The video codec from the model (demo), a models/vae file, or a core VAE; errors name the input."""
    spec = _spec(cfg, "video")
    demo = isinstance(spec, dict)
    if vae is not None and video_vae != FROM_MODEL:
        raise ValueError("vae / video_vae: give the video VAE once: connect vae OR choose a video_vae file")
    if demo and (vae is not None or video_vae != FROM_MODEL):
        raise ValueError(
            f"{'vae' if vae is not None else 'video_vae'}: this model uses its built-in demo video "
            f"codec; set video_vae to '{FROM_MODEL}' and leave vae unconnected"
        )
    if demo:
        return build_video_codec(spec)
    if vae is not None:
        return model_patcher.video_codec_from_vae(vae)
    if video_vae == FROM_MODEL:
        raise ValueError(
            f"video_vae: this model decodes video with the {spec} codec; choose its file "
            "(models/vae, e.g. wan2.2_vae.safetensors) or connect a Load VAE node to vae"
        )
    path = paths.full_path(paths.CODEC_FOLDER, video_vae, "video_vae")
    try:
        return build_video_codec(spec, path)
    except FILE_ERRORS as err:
        raise ValueError(f"video_vae: {video_vae!r} is not a {spec} file: {err}") from err


def audio_codec(cfg: HarmonyConfig, audio_vae: str, vocoder: str) -> AudioCodec:
    """The audio codec from the model (demo), the vocoder alone (UniAVGen) or the MMAudio VAE + vocoder files;
    errors name the input."""
    spec = _spec(cfg, "audio")
    chosen = [name for name, value in (("audio_vae", audio_vae), ("vocoder", vocoder)) if value != FROM_MODEL]
    if isinstance(spec, dict):
        if chosen:
            raise ValueError(
                f"{', '.join(chosen)}: this model uses its built-in demo audio codec; set it to "
                f"'{FROM_MODEL}'"
            )
        return build_audio_codec(spec)
    if spec == UNIAVGEN_AUDIO:
        return _vocoder_only_codec(spec, audio_vae, vocoder)
    if len(chosen) < 2:
        missing = [n for n in ("audio_vae", "vocoder") if n not in chosen]
        raise ValueError(
            f"{', '.join(missing)}: this model uses the {spec} audio codec; choose the MMAudio VAE "
            "and the BigVGAN vocoder files (models/vae, .safetensors)"
        )
    vae_path = paths.full_path(paths.CODEC_FOLDER, audio_vae, "audio_vae")
    vocoder_path = _vocoder_path(vocoder)
    try:
        return build_audio_codec(spec, vae_path, vocoder_path)
    except FILE_ERRORS as err:
        raise ValueError(
            f"audio_vae / vocoder: {audio_vae!r} + {vocoder!r} are not a {spec} VAE and vocoder: {err}"
        ) from err


def _vocoder_path(vocoder: str) -> str:
    """A vocoder file in models/vae, or a vocoder folder in models/vae or models/harmony."""
    return paths.full_path(paths.CODEC_FOLDER, vocoder, "vocoder", also=(paths.HARMONY_FOLDER,))


def _vocoder_only_codec(spec: str, audio_vae: str, vocoder: str) -> AudioCodec:
    """UniAVGen's codec: its audio latent is the mel spectrogram itself, so only the vocoder is read."""
    if audio_vae != FROM_MODEL:
        raise ValueError(
            f"audio_vae: this model's audio latent is the mel spectrogram ({spec}), there is no audio VAE; "
            f"set audio_vae to '{FROM_MODEL}' and choose only the vocoder"
        )
    if vocoder == FROM_MODEL:
        raise ValueError(
            f"vocoder: this model uses the {spec} audio codec; choose its vocoder, the "
            "code2wav_bigvgan_model folder of the UniAVGen download (e.g. UniAVGen/code2wav_bigvgan_model/) "
            "or its model.safetensors in models/vae"
        )
    path = _vocoder_path(vocoder)
    try:
        return build_audio_codec(spec, None, path)
    except FILE_ERRORS as err:
        raise ValueError(f"vocoder: {vocoder!r} is not the {spec} vocoder (Qwen2.5-Omni BigVGAN): {err}") from err


def check_fit(cfg: HarmonyConfig, video: VideoCodec, audio: AudioCodec, video_input: str) -> None:
    """Latent channels must match the model's towers; errors name the input that chose the codec."""
    if video.latent_channels != cfg.video.in_dim:
        raise ValueError(
            f"{video_input}: the video codec makes {video.latent_channels}-channel latents but the "
            f"model takes {cfg.video.in_dim}; choose the VAE the model was trained with"
        )
    if audio.latent_channels != cfg.audio.in_dim:
        raise ValueError(
            f"audio_vae: the audio codec makes {audio.latent_channels}-channel latents but the model "
            f"takes {cfg.audio.in_dim}; choose the audio VAE the model was trained with"
        )


def _codec_combo(name: str, what: str, folders: tuple[str, ...] = ()) -> io.Combo.Input:
    return io.Combo.Input(
        name,
        options=[FROM_MODEL, *paths.codec_files(), *folders],
        default=FROM_MODEL,
        tooltip=f"{what}. '{FROM_MODEL}': the codec built into the model (the demo model needs "
        "no file); real models need the file from models/vae (.safetensors)"
        + (", or a folder ending in '/'." if folders else "."),
    )


class HarmonyCodecLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonyCodecLoader",
            display_name="Harmony Codec Loader",
            category="Harmony/loaders",
            description="Loads the video VAE, audio VAE and vocoder a model was trained with (UniAVGen: "
            "the Wan2.2 VAE and its vocoder; it has no audio VAE).",
            inputs=[
                io.Model.Input(
                    "model", tooltip="The Harmony model the codecs are for (from HarmonyModelLoader)."
                ),
                _codec_combo("video_vae", "Video VAE (Wan2.2 VAE for real models)"),
                _codec_combo("audio_vae", "Audio VAE (MMAudio 16k VAE for Harmony models; UniAVGen has "
                             f"none: leave '{FROM_MODEL}')"),
                _codec_combo("vocoder", "Vocoder (BigVGAN for MMAudio 16k; for UniAVGen its "
                             "code2wav_bigvgan_model folder, e.g. UniAVGen/code2wav_bigvgan_model/ in "
                             "models/harmony)", tuple(paths.vocoder_folders())),
                io.Vae.Input(
                    "vae",
                    optional=True,
                    tooltip="Optional: the Wan2.2 VAE from core Load VAE, instead of video_vae.",
                ),
            ],
            outputs=[HarmonyCodecsType.Output(display_name="codecs", tooltip="Video and audio codecs.")],
        )

    @classmethod
    @checked(own=("video_vae", "audio_vae", "vocoder"))
    def execute(
        cls, model: object, video_vae: str, audio_vae: str, vocoder: str, vae: object | None = None
    ) -> io.NodeOutput:
        harmony = model_patcher.harmony_model(model)
        video = video_codec(harmony.cfg, video_vae, vae)
        audio = audio_codec(harmony.cfg, audio_vae, vocoder)
        check_fit(harmony.cfg, video, audio, "vae" if vae is not None else "video_vae")
        return io.NodeOutput(HarmonyCodecs(harmony, model_patcher.codec_patcher(video, audio)))
