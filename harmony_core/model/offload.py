"""Block swap: keep the weights of N layers on the CPU and stream each layer to the accelerator just before use.

A layer is what `HarmonyModel.forward` runs at one index: the video block, the audio block and (on interacting
layers) the interaction module. The swapped layers are the LAST n: their first one is fetched while the
resident layers before it compute, so even the first transfer overlaps with work.

At rest a swapped layer's parameters and buffers point at their home copies on the CPU (pinned when the device
is CUDA, so the copies are asynchronous). `run(order)` is the block loop's iterator: before yielding a swapped
layer it installs that layer's device copy and starts fetching the next swapped layer in `order`; after the
body it points the layer back at its homes and drops the copy. At most two layers are on the device beyond the
resident ones: the one running and the one arriving.

CUDA, correct by construction: copies are issued on a side stream (`copy_(non_blocking=True)` from pinned
memory) and an event is recorded after them; before a layer runs, the compute stream waits on that event, and
every copy is marked `record_stream(compute stream)`, so the caching allocator does not hand its memory to the
next fetch until the kernels that read it have finished. The weights are only read, never written, so the
CPU homes need no synchronisation. On a CPU "device" a fetch is a plain copy: outputs are bit-identical to
running without swap in every case (a copy is exact), which tests/core/test_block_swap.py checks with
device = cpu (and on CUDA where there is one).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

log = logging.getLogger(__name__)


@dataclass
class _Slot:
    """One tensor of a swapped layer: where it is installed and its CPU home."""

    module: nn.Module
    name: str
    is_param: bool
    home: torch.Tensor

    def install(self, t: torch.Tensor) -> None:
        if self.is_param:
            self.module._parameters[self.name].data = t
        else:
            self.module._buffers[self.name] = t


@dataclass
class _Fetch:
    copies: list[torch.Tensor]
    done: torch.cuda.Event | None     # recorded on the side stream after the copies (CUDA only)


def layer_modules(model: nn.Module, index: int) -> list[nn.Module]:
    """The modules HarmonyModel runs at layer `index`."""
    mods = [model.video.blocks[index], model.audio.blocks[index]]
    if str(index) in model.interaction:
        mods.append(model.interaction[str(index)])
    return mods


def _homes(modules: list[nn.Module], pin: bool) -> list[_Slot]:
    """Move each tensor of `modules` to its CPU home (pinned when `pin`), one at a time: no second copy of a layer."""
    out = []
    for top in modules:
        for m in top.modules():
            for kind, store in ((True, m._parameters), (False, m._buffers)):
                for name, t in list(store.items()):
                    if t is not None:
                        home = t.detach().to("cpu")
                        slot = _Slot(m, name, kind, home.pin_memory() if pin else home)
                        slot.install(slot.home)
                        out.append(slot)
    return out


class BlockSwap:
    """Streams swapped layers to `device`; see the module docstring. `peak_bytes` is the most swapped-layer
    bytes held on the device at once (measured from the copies), for benchmarks."""

    def __init__(self, model: nn.Module, swapped: tuple[int, ...], device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.swapped = frozenset(swapped)
        self.layers = {i: _homes(layer_modules(model, i), pin=self.cuda) for i in sorted(swapped)}
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        self._pending: dict[int, _Fetch] = {}
        self._installed: set[int] = set()
        self.peak_bytes = 0

    def layer_bytes(self, index: int) -> int:
        return sum(s.home.numel() * s.home.element_size() for s in self.layers[index])

    def run(self, order: Iterable[int]) -> Iterator[int]:
        """Yield the layer indices of `order`, each swapped one installed on the device while the caller runs it."""
        order = list(order)
        queue = [i for i in order if i in self.swapped]
        self.reset()
        try:
            if queue:
                self._fetch(queue[0])
            for i in order:
                if i in self.swapped:
                    self._install(i)
                    later = queue[queue.index(i) + 1:]
                    if later:
                        self._fetch(later[0])        # overlaps with layer i's compute
                yield i
                if i in self.swapped:
                    self._release(i)
        finally:
            self.reset()

    def reset(self) -> None:
        """Point every swapped layer back at its homes and drop copies in flight (also after an exception)."""
        for i in list(self._installed):
            self._release(i)
        self._pending.clear()

    def _fetch(self, index: int) -> None:
        if index in self._pending or index in self._installed:
            return
        homes = [s.home for s in self.layers[index]]
        if not self.cuda:
            self._pending[index] = _Fetch([h.to(self.device, copy=True) for h in homes], None)
            self._track()
            return
        with torch.cuda.stream(self.stream):
            copies = [torch.empty_like(h, device=self.device) for h in homes]
            for c, h in zip(copies, homes):
                c.copy_(h, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.stream)
        self._pending[index] = _Fetch(copies, done)
        self._track()

    def _install(self, index: int) -> None:
        self._fetch(index)
        fetch = self._pending.pop(index)
        if fetch.done is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(fetch.done)
            for c in fetch.copies:
                c.record_stream(compute)
        for slot, c in zip(self.layers[index], fetch.copies):
            slot.install(c)
        self._installed.add(index)

    def _track(self) -> None:
        held = sum(self.layer_bytes(i) for i in self._installed | set(self._pending))
        self.peak_bytes = max(self.peak_bytes, held)

    def _release(self, index: int) -> None:
        for slot in self.layers[index]:
            slot.install(slot.home)
        self._installed.discard(index)


def _move_resident(model: nn.Module, swapped_modules: set[int], device: torch.device) -> None:
    """Move every parameter and buffer outside the swapped layers to `device`, tensor by tensor."""
    for m in model.modules():
        if id(m) in swapped_modules:
            continue
        for store in (m._parameters, m._buffers):
            for name, t in store.items():
                if t is None or t.device == device:
                    continue
                if isinstance(t, nn.Parameter):
                    t.data = t.data.to(device)
                else:
                    store[name] = t.to(device)


def enable_block_swap(model: nn.Module, blocks: int, device: torch.device | str) -> BlockSwap | None:
    """Keep the last `blocks` layers (per tower, with their interaction modules) on the CPU, the rest on
    `device`; returns the BlockSwap now attached as `model.block_swap` (None when blocks is 0)."""
    layers = len(model.video.blocks)
    if not 0 <= blocks <= layers:
        raise ValueError(f"swap blocks: {blocks} is not in 0..{layers} (this model has {layers} blocks per tower)")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    swapped = tuple(range(layers - blocks, layers))
    inside = {id(m) for i in swapped for top in layer_modules(model, i) for m in top.modules()}
    swap = BlockSwap(model, swapped, device) if blocks else None
    _move_resident(model, inside, device)
    model.block_swap = swap
    if swap is not None:
        total = sum(swap.layer_bytes(i) for i in swapped)
        log.info("block swap: layers %d..%d of %d kept on the CPU (%.2f GiB), streamed to %s", swapped[0],
                 swapped[-1], layers, total / 2**30, device)
    return swap


def run_layers(model: nn.Module, order: Iterable[int]) -> Iterator[int]:
    """The block loop's iterator: `order` itself, or through the model's BlockSwap when it has one."""
    swap = getattr(model, "block_swap", None)
    return iter(order) if swap is None else swap.run(order)
