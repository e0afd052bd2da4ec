"""Stand-in for `comfy_api.latest` (ComfyUI @ 783545f): io, ui, ComfyExtension, InputImpl, Types,
ComfyAPISync.

`ComfyAPISync().execution.set_progress` behaves like the real one outside a server: it needs a node id (the
real one falls back to the executing context) and records each update in `progress_updates` (the real one
hands it to the progress registry, which the tests cannot see).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from . import _io as io
from . import _ui as ui
from ._video import VideoComponents, VideoFromComponents

progress_updates: list[dict] = []


class ComfyExtension(ABC):
    async def on_load(self) -> None:  # noqa: B027  (optional hook, as in ComfyUI)
        """Called once when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The node classes of the extension."""


class InputImpl:
    VideoFromComponents = VideoFromComponents


class Types:
    VideoComponents = VideoComponents


class _Execution:
    def set_progress(self, value: float, max_value: float, node_id: str | None = None,
                     preview_image: torch.Tensor | None = None, ignore_size_limit: bool = False) -> None:
        if node_id is None:
            raise ValueError("node_id must be provided if not in executing context")
        if preview_image is not None and (preview_image.ndim not in (3, 4) or preview_image.shape[-1] != 3):
            raise ValueError(f"preview_image must be an IMAGE [B, H, W, 3] or [H, W, 3], got "
                             f"{tuple(preview_image.shape)}")
        update = {"value": value, "max": max_value, "node_id": node_id, "image": preview_image}
        progress_updates.append(update)


class ComfyAPISync:
    def __init__(self) -> None:
        self.execution = _Execution()


__all__ = ["ComfyAPISync", "ComfyExtension", "InputImpl", "Types", "io", "ui"]
