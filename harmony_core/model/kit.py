"""The memory and speed kit (issue #12) as one load-time setting: fp8 weights, block swap, torch.compile per block.

`MemoryKit` is what a loader (CLI flags, ComfyUI loader widgets) passes down; `apply_kit` sets a loaded model up
with it. fp8 is best applied while loading (`load.load_model(fp8=...)` quantizes each tensor as it arrives, so
the bf16 model never exists whole); `apply_kit` quantizes whatever is still a plain qualifying Linear.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .fp8 import SCALINGS, fp8_layers, quantize_model
from .offload import enable_block_swap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryKit:
    """fp8: store the big linear layers (model/fp8.py) as float8_e4m3fn with `fp8_scaling` "row" (one scale per
    output channel) or "tensor" scales. swap_blocks: layers (per tower, with their interaction module) kept on
    the CPU and streamed to the device just before use (model/offload.py); 0 = none. compile: torch.compile
    each transformer block (falls back to eager, with a log line, where compiling is unavailable)."""

    fp8: bool = False
    fp8_scaling: str = "row"
    swap_blocks: int = 0
    compile: bool = False

    def validate(self) -> MemoryKit:
        if self.fp8_scaling not in SCALINGS:
            raise ValueError(f"fp8 scaling {self.fp8_scaling!r} is not one of {SCALINGS}")
        if self.swap_blocks < 0:
            raise ValueError(f"swap blocks must be >= 0, got {self.swap_blocks}")
        return self

    def describe(self) -> str:
        parts = [f"fp8 ({self.fp8_scaling} scales)" if self.fp8 else "", f"{self.swap_blocks} blocks swapped"
                 if self.swap_blocks else "", "torch.compile" if self.compile else ""]
        return ", ".join(p for p in parts if p) or "no memory kit"


def apply_kit(model: nn.Module, kit: MemoryKit, device: torch.device | str) -> nn.Module:
    """Set `model` (a HarmonyModel, on the CPU or on `device`) up with `kit` for running on `device`."""
    kit.validate()
    if kit.fp8 and not any(True for _ in fp8_layers(model)):
        quantize_model(model, kit.fp8_scaling)
    if kit.swap_blocks:
        enable_block_swap(model, kit.swap_blocks, device)
    if kit.compile:
        compile_blocks(model, torch.device(device))
    return model


# ------------------------------------------------------------------------------------------------
# torch.compile per block
# ------------------------------------------------------------------------------------------------
def compile_unavailable(device: torch.device) -> str | None:
    """Why torch.compile cannot build kernels for `device` here (None: it should)."""
    if not hasattr(torch, "compile"):
        return f"torch {torch.__version__} has no torch.compile"
    if device.type == "cuda":
        import importlib.util

        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed (pip install triton; on Windows: triton-windows)"
    elif device.type == "cpu":
        if not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "cl") if c):
            return "no C++ compiler found for the CPU backend (install g++ or clang, or set CXX)"
    return None


class CompiledForward:
    """A block's forward through torch.compile; on the first failure to compile it logs once and runs eagerly
    from then on (out-of-memory errors are raised as they are)."""

    def __init__(self, eager: Callable, compiled: Callable, name: str) -> None:
        self.eager, self.compiled, self.name, self.failed = eager, compiled, name, False

    def __call__(self, *args: object, **kwargs: object) -> object:
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except torch.OutOfMemoryError:
                raise
            except Exception as exc:  # noqa: BLE001  (any backend failure: the eager path is always correct)
                self.failed = True
                log.warning("torch.compile failed for %s (%s: %s); it runs eagerly from now on", self.name,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
        return self.eager(*args, **kwargs)


def compile_blocks(model: nn.Module, device: torch.device, backend: str = "inductor") -> int:
    """Wrap every transformer block's forward in torch.compile (names and weights unchanged). Returns how many
    blocks were wrapped: 0, with a log line saying why, where compiling is unavailable."""
    reason = compile_unavailable(device) if backend == "inductor" else None
    if reason:
        log.warning("torch.compile is unavailable (%s): the blocks run eagerly", reason)
        return 0
    count = 0
    for tower in ("video", "audio"):
        for i, block in enumerate(getattr(model, tower).blocks):
            if isinstance(block.__dict__.get("forward"), CompiledForward):
                continue
            eager = block.forward
            block.forward = CompiledForward(eager, torch.compile(eager, backend=backend, dynamic=None),
                                            f"{tower}.blocks.{i}")
            count += 1
    log.info("torch.compile (%s): %d blocks wrapped; the first step compiles them", backend, count)
    return count


def uncompile_blocks(model: nn.Module) -> None:
    for tower in ("video", "audio"):
        for block in getattr(model, tower).blocks:
            block.__dict__.pop("forward", None)
