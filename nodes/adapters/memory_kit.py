"""The memory kit (harmony_core.model.kit.MemoryKit: fp8 weights, block swap, torch.compile) under ComfyUI.

fp8. The loader's `fp8` widget (row / tensor scales), or ComfyUI's own `--fp8_e4m3fn-unet` / `--fp8_e5m2-unet`
flags, which ask for fp8 diffusion-model weights: with the widget off they give per-tensor scales (ComfyUI's
layout) in the flag's format. The weights are always scaled (harmony_core's fp8: an unscaled cast, as ComfyUI does
for its own models, would push small weights into the subnormals). `--fp8_e8m0fnu-unet` (exponent only) cannot
hold weights: it is ignored with a warning. `--bf16-unet` / `--fp16-unet` / `--fp32-unet` act as the
`weight_dtype` widget when that is `default`.

Block swap. ComfyUI streams comfy.ops layers itself (ops.py). `swap_blocks` is for when it does not decide what
stays on the GPU, i.e. the estimate-based patcher (`--disable-dynamic-vram`, `--novram`, `--highvram`, non-NVIDIA
GPUs): the last N layers live on the CPU (pinned) and harmony_core's BlockSwap streams each one in just before use,
overlapped with compute. At rest those layers hold EMPTY placeholders (`ParkedBlockSwap`), so ComfyUI's loads, its
model size and its offload bookkeeping only ever see the resident weights, and what a forward adds (two swapped
layers in flight, `kit_bytes`) is in the sampler's `memory_required`. Under the dynamic-VRAM patcher (ComfyUI's
default on NVIDIA) every layer is streamed on demand already: swap_blocks is then not applied (logged).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from comfy.cli_args import args

from ...harmony_core.model.fp8 import E4M3, fp8_layers, is_fp8
from ...harmony_core.model.kit import MemoryKit, compile_blocks
from ...harmony_core.model.offload import BlockSwap

log = logging.getLogger(__name__)

FP8_FLAGS = (("fp8_e4m3fn_unet", torch.float8_e4m3fn), ("fp8_e5m2_unet", torch.float8_e5m2))
DTYPE_FLAGS = (("fp32_unet", torch.float32), ("bf16_unet", torch.bfloat16), ("fp16_unet", torch.float16))


def flag_fp8() -> tuple[str, torch.dtype] | None:
    """(flag, fp8 format) of the --fp8_*-unet flag ComfyUI runs with (None: no such flag)."""
    if getattr(args, "fp8_e8m0fnu_unet", False):
        log.warning("--fp8_e8m0fnu-unet: float8_e8m0fnu has no mantissa and cannot hold weights; Harmony models "
                    "load without it (use --fp8_e4m3fn-unet or the loader's fp8 widget)")
    return next((("--" + flag.replace("_unet", "-unet"), dtype) for flag, dtype in FP8_FLAGS
                 if getattr(args, flag, False)), None)


def flag_dtype() -> torch.dtype | None:
    """The weight dtype ComfyUI's --fp32/bf16/fp16-unet flags ask for (None: no such flag)."""
    return next((dtype for flag, dtype in DTYPE_FLAGS if getattr(args, flag, False)), None)


def fp8_request(widget: str) -> tuple[str | None, torch.dtype]:
    """(scaling or None for no fp8, fp8 format) from the loader's fp8 widget and ComfyUI's flags."""
    flag = flag_fp8()
    fmt = flag[1] if flag else E4M3
    if widget != "off":
        return widget, fmt
    if flag is not None:
        log.info("ComfyUI runs with %s: Harmony weights load as %s with per-tensor scales", *flag)
        return "tensor", fmt
    return None, fmt


class ParkedBlockSwap(BlockSwap):
    """harmony_core's BlockSwap whose swapped layers hold empty placeholders whenever they are not running: the
    weights live only in the pinned CPU homes the swap streams from. See the module docstring."""

    def __init__(self, model: nn.Module, swapped: tuple[int, ...], device: torch.device | str) -> None:
        super().__init__(model, swapped, device)
        for index in self.layers:
            self._release(index)

    def _release(self, index: int) -> None:
        for slot in self.layers[index]:
            slot.install(slot.home.new_empty(0))
        self._installed.discard(index)

    def fp8_home_numel(self) -> int:
        """The largest fp8 weight among the swapped layers (their placeholders hide it from kit_bytes)."""
        return max((s.home.numel() for slots in self.layers.values() for s in slots
                    if s.name == "weight" and is_fp8(s.home)), default=0)


def check_swap(blocks: int, layers: int) -> None:
    if not 0 <= blocks <= layers:
        raise ValueError(f"swap_blocks: {blocks} is more than this model's {layers} layers; choose 0..{layers} "
                         "(0 = no block swap)")


def park_swap(model: nn.Module, blocks: int, device: torch.device) -> ParkedBlockSwap | None:
    """Keep the last `blocks` layers on the CPU, streamed to `device` while they run (model.block_swap)."""
    layers = len(model.video.blocks)
    check_swap(blocks, layers)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    swap = ParkedBlockSwap(model, tuple(range(layers - blocks, layers)), device) if blocks else None
    model.block_swap = swap
    if swap is not None:
        total = sum(swap.layer_bytes(i) for i in swap.swapped)
        log.info("block swap: layers %d..%d of %d kept on the CPU (%.2f GiB), streamed to %s",
                 layers - blocks, layers - 1, layers, total / 2**30, device)
    return swap


def apply(model: nn.Module, kit: MemoryKit, device: torch.device, dynamic: bool) -> None:
    """Block swap and torch.compile of `kit` for a model about to be wrapped in a ComfyUI patcher (`dynamic`: the
    dynamic-VRAM one); fp8 is applied while loading."""
    if kit.swap_blocks and dynamic:
        log.warning("swap_blocks %d: ComfyUI's dynamic VRAM streams every layer on demand already, so block swap "
                    "is not applied (start ComfyUI with --disable-dynamic-vram to use it instead)", kit.swap_blocks)
    elif kit.swap_blocks:
        park_swap(model, kit.swap_blocks, device)
    if kit.compile:
        compile_blocks(model, device)


def extra_bytes(model: nn.Module, element_size: int) -> int:
    """What kit_bytes cannot see with parked layers: the compute-dtype copy of the largest fp8 weight when that
    weight is parked (its placeholder is empty)."""
    swap = getattr(model, "block_swap", None)
    if not isinstance(swap, ParkedBlockSwap):
        return 0
    visible = max((m.stored.numel() for _, m in fp8_layers(model)), default=0)
    return max(0, swap.fp8_home_numel() - visible) * element_size
