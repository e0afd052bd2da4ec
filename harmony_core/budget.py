"""Memory budget: what a generation will need, from its shapes, checked against what the device can give,
before anything large is allocated.

A `MemoryPlan` splits a generation into its two peaks: sampling (the widest denoiser step, from
`model.memory.forward_bytes`, plus the latents the sampler keeps and the SyncCFG anchors being built) and
decoding, counted in full-size float32 pixel buffers P = B x 3 x F x H x W x 4 bytes: the most the video
codec holds at once inside `decode` (`VideoCodec.decode_buffers`, its output included, derived from its code),
or the pipeline's own 2 (the codec output scaled in place to [0, 1], and its [B, F, H, W, 3] copy), whichever
is more, plus 1 for the caller's copy (ComfyUI's IMAGE, or the mp4 writer's uint8 frames at 1/4 P). Model weights are not counted: they are
loaded (or accounted for by ComfyUI) already. `check_budget` refuses a plan whose peak exceeds the memory
available, naming the size, the estimate, the memory available and what to change.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

GIB = 1024 ** 3
FLOAT32 = 4
PIPELINE_PIXEL_BUFFERS = 2  # the codec output scaled in place, and its [B, F, H, W, 3] copy
CALLER_PIXEL_BUFFERS = 1  # ComfyUI's IMAGE copy, or the writer's uint8 frames (1/4 P)
SAMPLER_LATENT_COPIES = 8  # x, the step's velocity and x0 previews, solver history, held latents, noise
SAMPLING_SLACK = 128 * 1024 ** 2  # caption encoding, RoPE/window tables, allocator slack: the demo model's
# sampling peak RSS ran 31-110 MiB above the shape-based figure at 256-512 px, 81 frames (CPU, fp32)


class MemoryBudgetError(ValueError):
    """The requested size does not fit in the memory available (raised before allocating)."""


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes a generation needs at its two peaks, and the size it was computed for (for messages)."""

    size: str
    sampling: int
    decode: int

    @property
    def peak(self) -> int:
        return max(self.sampling, self.decode)

    @property
    def phase(self) -> str:
        return "sampling" if self.sampling >= self.decode else "decoding"


def pixel_bytes(batch: int, frames: int, height: int, width: int) -> int:
    """One float32 buffer of `batch` clips of `frames` RGB frames."""
    return FLOAT32 * batch * 3 * frames * height * width


def decode_bytes(codec: object, batch: int, frames: int, height: int, width: int) -> int:
    """The decoding peak with `codec` (a VideoCodec): see the module docstring."""
    buffers = max(codec.decode_buffers, PIPELINE_PIXEL_BUFFERS) + CALLER_PIXEL_BUFFERS
    return int(buffers * pixel_bytes(batch, frames, height, width))


def available_memory(device: torch.device | str) -> int | None:
    """Bytes the device can give now: free CUDA memory, or the system's available RAM (psutil) on the CPU;
    None when it cannot be told (the check is then skipped with a note)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            import psutil
        except ImportError:
            log.info("psutil is not installed: the memory budget check is skipped")
            return None
        return int(psutil.virtual_memory().available)
    return None


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def check_budget(plan: MemoryPlan, available: int | None, advice: str = "") -> None:
    """Refuse `plan` when its peak exceeds `available` bytes (None: unknown, allowed)."""
    if available is None or plan.peak <= available:
        return
    raise MemoryBudgetError(
        f"{plan.size} needs about {_gib(plan.peak)} while {plan.phase} (sampling {_gib(plan.sampling)}, "
        f"decoding {_gib(plan.decode)}) but only {_gib(available)} is available; "
        + (advice or "choose a smaller width/height, fewer frames or fewer takes"))
