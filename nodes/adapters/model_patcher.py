"""Harmony models and codecs as ComfyUI `ModelPatcher`s, so ComfyUI's memory management loads/offloads them.

Approach (see nodes/README.md): the plain-torch HarmonyModel, its layers turned into ComfyUI managed layers
(`ops.use_comfy_ops`: comfy.ops Linear / Conv3d, fp8 layers as `ops.ComfyFP8Linear`), is wrapped in a small holder
module (`HarmonyModule`, the patcher's `.model`) inside `comfy.model_patcher.CoreModelPatcher`, looked up at call
time: the dynamic-VRAM patcher where ComfyUI enables it (NVIDIA, the default), else the estimate-based one. Before
sampling/encoding/decoding, `load()` asks `comfy.model_management.load_models_gpu` to load them with room for
`memory_required` bytes: ComfyUI frees VRAM (unloading other models) and loads what fits; managed layers it leaves
on the CPU are cast to the device per op (lowvram streaming, `--lowvram` / `--novram`, or dynamic VRAM). What is
not a managed layer (norms, modulation, embeddings, buffers) is then moved to the device (`ops.move_strays`): the
estimate-based loader skips some of it. The memory kit's block swap and compile are set up here too
(memory_kit.py). Codecs are plain torch modules in the estimate-based `ModelPatcher`; `load()` completes them on
the device if ComfyUI loaded them only in part.
"""

from __future__ import annotations

import logging

import torch

import comfy.model_management as mm
import comfy.model_patcher

from ...harmony_core.codecs.base import AudioCodec, VideoCodec
from ...harmony_core.model.fp8 import fp8_layers
from ...harmony_core.model.harmony import HarmonyModel
from ...harmony_core.model.kit import MemoryKit
from . import memory_kit, ops

log = logging.getLogger(__name__)


class HarmonyModule(torch.nn.Module):
    """What the MODEL patcher manages: the Harmony diffusion model (ComfyUI reads `.get_dtype()`)."""

    def __init__(self, model: HarmonyModel, source: str) -> None:
        super().__init__()
        self.diffusion_model = model
        self.source = source
        # the dtype fp8 layers compute in: ComfyUI's lowvram load counts their per-op cast copies with it
        self.manual_cast_dtype = next((m.compute_dtype for _, m in fp8_layers(model)), None)

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


def model_patcher(model: HarmonyModel, source: str, kit: MemoryKit = MemoryKit()) -> comfy.model_patcher.ModelPatcher:
    """MODEL for a Harmony model: its layers made ComfyUI managed layers, the kit's block swap and compile set up,
    held on ComfyUI's offload device and loaded onto the torch device when used."""
    load_device, offload = mm.get_torch_device(), mm.unet_offload_device()
    ops.use_comfy_ops(model, load_device)
    module = HarmonyModule(model, source)
    patcher = comfy.model_patcher.CoreModelPatcher(module, load_device=load_device, offload_device=offload)
    memory_kit.apply(model, kit, torch.device(load_device), patcher.is_dynamic())
    module.to(offload)   # parked swapped layers hold empty placeholders: only the resident weights move
    return patcher


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


def extra_bytes(patcher: comfy.model_patcher.ModelPatcher) -> int:
    """Device bytes a Harmony MODEL needs beyond what ComfyUI counts and the sampler's `memory_required`
    (activations + kit_bytes) holds: weights installed for direct reads, tensors moved by move_strays, the fp8
    cast of a parked swapped layer. 0 for codecs."""
    module = patcher.model
    if not isinstance(module, HarmonyModule):
        return 0
    model = module.diffusion_model
    size = next(model.parameters()).element_size()
    return ops.extra_bytes(model, size) + memory_kit.extra_bytes(model, size)


def load(*patchers: comfy.model_patcher.ModelPatcher, memory_required: int = 0) -> torch.device:
    """Load the patchers onto their device through ComfyUI, which first frees other models until
    `memory_required` bytes (activations) plus `extra_bytes` are left over, and streams the managed layers that do
    not fit; then everything else is put on the device. Returns the first one's device."""
    extra = sum(extra_bytes(p) for p in patchers)
    mm.load_models_gpu(list(patchers), memory_required=memory_required + extra)
    device = torch.device(patchers[0].load_device)
    for patcher in patchers:
        target = torch.device(patcher.load_device)
        moved = ops.move_strays(patcher.model, target)
        if moved:
            log.info("%s: %.1f MiB ComfyUI left on %s moved to %s", type(patcher.model).__name__, moved / 2**20,
                     patcher.offload_device, target)
        stray = ops.off_device(patcher.model, target)
        if stray is not None:
            raise RuntimeError(f"{type(patcher.model).__name__}: {stray} is not on {target} after loading; "
                               "free memory (other models, a smaller size) and run again")
    return device
