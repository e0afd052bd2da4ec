"""Harmony models and codecs as ComfyUI `ModelPatcher`s, so ComfyUI's memory management loads/offloads them.

Approach (see nodes/README.md): the plain-torch HarmonyModel is wrapped in a small holder module
(`HarmonyModule`, the patcher's `.model`) inside the legacy, estimate-based `comfy.model_patcher.ModelPatcher`
— not `CoreModelPatcher`, which becomes the dynamic-VRAM patcher on NVIDIA and streams only `comfy.ops`
layers. Before sampling/encoding/decoding, `load()` asks `comfy.model_management.load_models_gpu` for a
FULL load (`force_full_load=True`): ComfyUI frees VRAM (unloading other models) and moves the whole module;
between runs the model stays registered in `current_loaded_models` and ComfyUI offloads it when another
model needs the room. Partial ("lowvram") loading is not offered: it only works for `comfy.ops` layers, which
harmony_core does not use, so a module left partly on the CPU is reported as an error instead of crashing
inside the forward.
"""

from __future__ import annotations

import torch

import comfy.model_management as mm
import comfy.model_patcher

from ...harmony_core.codecs.base import AudioCodec, VideoCodec
from ...harmony_core.model.harmony import HarmonyModel


class HarmonyModule(torch.nn.Module):
    """What the MODEL patcher manages: the Harmony diffusion model (ComfyUI reads `.get_dtype()`)."""

    def __init__(self, model: HarmonyModel, source: str) -> None:
        super().__init__()
        self.diffusion_model = model
        self.source = source

    def get_dtype(self) -> torch.dtype:
        return next(self.diffusion_model.parameters()).dtype


class CodecModule(torch.nn.Module):
    """What the codec patcher manages: the video and the audio codec of one HarmonyCodecLoader."""

    def __init__(self, video: VideoCodec, audio: AudioCodec) -> None:
        super().__init__()
        self.video, self.audio = video, audio

    def get_dtype(self) -> torch.dtype:
        params = list(self.parameters())
        return params[0].dtype if params else torch.float32


def codecs_of(patcher: comfy.model_patcher.ModelPatcher) -> tuple[VideoCodec, AudioCodec]:
    """The (video, audio) codecs a `codec_patcher` manages."""
    module = patcher.model
    if not isinstance(module, CodecModule):
        raise ValueError(f"codecs: expected Harmony codecs (HarmonyCodecLoader), got {type(module).__name__}")
    return module.video, module.audio


def offload_device() -> torch.device:
    """Where loaded models wait while unused (ComfyUI's unet offload device, usually the CPU)."""
    return torch.device(mm.unet_offload_device())


def model_patcher(model: HarmonyModel, source: str) -> comfy.model_patcher.ModelPatcher:
    """MODEL for a Harmony model held on ComfyUI's offload device, loaded on the torch device when used."""
    module = HarmonyModule(model.to(mm.unet_offload_device()), source)
    return comfy.model_patcher.ModelPatcher(
        module, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device()
    )


def codec_patcher(video: VideoCodec, audio: AudioCodec) -> comfy.model_patcher.ModelPatcher:
    """A patcher for the codecs, offloaded where ComfyUI keeps VAEs. They load onto the same device as the
    model (the SyncCFG anchors they encode meet the model's latents), so --cpu-vae does not apply."""
    module = CodecModule(video.to(mm.vae_offload_device()), audio.to(mm.vae_offload_device()))
    return comfy.model_patcher.ModelPatcher(
        module, load_device=mm.get_torch_device(), offload_device=mm.vae_offload_device()
    )


def video_codec_from_vae(vae: object) -> VideoCodec:
    """The Wan2.2 VAE of a core VAE (Load VAE) as a harmony_core video codec (built from its state dict)."""
    get_sd = getattr(vae, "get_sd", None)
    if get_sd is None:
        raise ValueError(f"vae: expected a VAE from a core loader (Load VAE), got {type(vae).__name__}")
    from ...harmony_core.codecs.wan.codec import WanVideoCodec  # only real models need the Wan2.2 VAE code

    try:
        return WanVideoCodec.from_state_dict(get_sd())
    except ValueError as err:
        raise ValueError(
            f"vae: this VAE is not the Wan2.2 VAE ({err}); load wan2.2_vae.safetensors with Load VAE "
            "or choose the file in video_vae"
        ) from err


def harmony_model(model: object, input_name: str = "model") -> HarmonyModel:
    """The HarmonyModel inside a MODEL; any other MODEL raises naming the input."""
    inner = getattr(model, "model", None)
    if not isinstance(inner, HarmonyModule):
        kind = type(inner).__name__ if inner is not None else type(model).__name__
        raise ValueError(
            f"{input_name}: this MODEL is a {kind}, not a Harmony model; connect the MODEL output of "
            "HarmonyModelLoader (core loaders such as Load Diffusion Model give other model kinds)"
        )
    return inner.diffusion_model


def load_device(patcher: comfy.model_patcher.ModelPatcher) -> torch.device:
    """Where the patcher's module runs once loaded."""
    return torch.device(patcher.load_device)


def available_memory(device: torch.device, *ours: comfy.model_patcher.ModelPatcher) -> int:
    """Bytes the device can give a job of ours: ComfyUI's free memory (VRAM, or available RAM with --cpu) plus
    what it could free by unloading the other models it holds there (it does so when we load)."""
    freeable = 0
    for entry in mm.current_loaded_models:
        wrapped = hasattr(entry, "model_loaded_memory")  # ComfyUI's LoadedModel around a patcher
        patcher = entry.model if wrapped else entry
        if patcher is None or patcher in ours or torch.device(patcher.load_device).type != device.type:
            continue
        freeable += entry.model_loaded_memory() if wrapped else patcher.loaded_size()
    return int(mm.get_free_memory(device)) + freeable


def load(*patchers: comfy.model_patcher.ModelPatcher, memory_required: int = 0) -> torch.device:
    """Fully load the patchers onto their device through ComfyUI, which first frees other models until
    `memory_required` bytes (activations) are left over; returns the first one's device."""
    mm.load_models_gpu(list(patchers), memory_required=memory_required, force_full_load=True)
    device = torch.device(patchers[0].load_device)
    for patcher in patchers:
        stray = next((n for n, p in patcher.model.named_parameters() if p.device.type != device.type), None)
        if stray is not None:
            raise RuntimeError(
                f"{type(patcher.model).__name__} was only partly loaded onto {device} ({stray} is "
                "on the CPU); Harmony needs a full load: free VRAM or start ComfyUI without "
                "--novram"
            )
    return device
