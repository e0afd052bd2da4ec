"""Stand-in for `comfy.model_management` (ComfyUI @ 783545f, run with `--cpu`).

Devices are the CPU. `load_models_gpu` loads each patcher fully onto its load device and keeps it in
`current_loaded_models` (most recent first), as the real one does when memory suffices. The interrupt flag
works exactly like the real one: `interrupt_current_processing()` sets it, and
`throw_exception_if_processing_interrupted()` clears it and raises `InterruptProcessingException`, a
BaseException (so `except Exception` does not swallow it).
"""
from __future__ import annotations

import threading

import torch

current_loaded_models: list = []


class InterruptProcessingException(BaseException):
    pass


interrupt_processing_mutex = threading.RLock()
interrupt_processing = False


def interrupt_current_processing(value=True) -> None:
    global interrupt_processing
    with interrupt_processing_mutex:
        interrupt_processing = value


def processing_interrupted() -> bool:
    with interrupt_processing_mutex:
        return interrupt_processing


def throw_exception_if_processing_interrupted() -> None:
    global interrupt_processing
    with interrupt_processing_mutex:
        if interrupt_processing:
            interrupt_processing = False
            raise InterruptProcessingException()


def get_torch_device() -> torch.device:
    return torch.device("cpu")


def intermediate_device() -> torch.device:
    return torch.device("cpu")


def unet_offload_device() -> torch.device:
    return torch.device("cpu")


def vae_offload_device() -> torch.device:
    return torch.device("cpu")


def module_size(module: torch.nn.Module) -> int:
    """Bytes of the module's state dict."""
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


memory_requests: list[int] = []  # memory_required of every load_models_gpu call (tests read it)
free_memory_bytes: int | None = None  # tests set a fake budget; None: the machine's available RAM


def get_free_memory(dev=None, torch_free_too=False) -> int:
    """Free bytes on `dev` (the real one: VRAM, or psutil's available RAM for the CPU)."""
    if free_memory_bytes is not None:
        return free_memory_bytes
    import psutil

    return int(psutil.virtual_memory().available)


def load_models_gpu(models, memory_required=0, force_patch_weights=False, minimum_memory_required=None,
                    force_full_load=False) -> None:
    """Load every patcher (and the models its patches need) onto its load device; like the real one it walks
    them in reverse and puts each at the front, so `current_loaded_models` starts in the order given."""
    memory_requests.append(memory_required)
    ordered = dict.fromkeys(x for m in models for x in (m, *m.model_patches_models()))
    for patcher in reversed(list(ordered)):
        if patcher in current_loaded_models:
            current_loaded_models.remove(patcher)
        patcher.partially_load(patcher.load_device, 1e32, force_patch_weights=force_patch_weights)
        current_loaded_models.insert(0, patcher)
