"""Per-step progress, cancel point and cheap preview for HarmonySampler.

Every step: `comfy.model_management.throw_exception_if_processing_interrupted()` (raises ComfyUI's
InterruptProcessingException, a BaseException that propagates through harmony_core's sampler untouched), then
`comfy.utils.ProgressBar.update_absolute` (under the server its hook is also a cancel point). When the user
enabled previews (`--preview-method` other than none), the x0 prediction of the first take's first latent
frame is shown through ComfyUI's V3 `set_progress(preview_image=...)`: decoded by the video codec when it is
a cheap one (the demo codec: a fixed linear transform), otherwise a false-colour view of three latent
channels (the Wan2.2 VAE decoder is far too heavy to run every step).
"""

from __future__ import annotations

import torch

import comfy.model_management as mm
import comfy.utils
from comfy.cli_args import LatentPreviewMethod, args
from comfy_api.latest import ComfyAPISync

from ...harmony_core import cancel
from ...harmony_core.codecs.base import VideoCodec, module_device_dtype
from ...harmony_core.codecs.demo.video import DemoVideoCodec


def register_cancel() -> None:
    """ComfyUI's interrupt becomes harmony_core's cancel check: codec chunks and tiles, anchors and the mp4
    writer stop within one step of bounded size when the user presses Cancel."""
    cancel.set_check(mm.throw_exception_if_processing_interrupted)


def previews_enabled() -> bool:
    return args.preview_method != LatentPreviewMethod.NoPreviews


def preview_image(codec: VideoCodec, x0_video: torch.Tensor) -> torch.Tensor:
    """IMAGE [1, H, W, 3] in [0, 1] from the first take's first latent frame of x0 [B, Cv, Tv, h, w]."""
    frame = x0_video[:1, :, :1].float()  # [1, Cv, 1, h, w]
    if isinstance(codec, DemoVideoCodec):
        with torch.no_grad():
            rgb = codec.decode(frame.to(module_device_dtype(codec)[0]))[:, :, 0]  # [1, 3, H, W]
        return ((rgb.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu()
    rgb = frame[:, :3, 0]  # [1, 3, h, w]
    lo, hi = rgb.amin(dim=(2, 3), keepdim=True), rgb.amax(dim=(2, 3), keepdim=True)
    return ((rgb - lo) / (hi - lo).clamp_min(1e-6)).permute(0, 2, 3, 1).cpu()  # [1, h, w, 3]


class SamplingProgress:
    """The sampler callback: callback(step, total, x0_video, x0_audio) after every step.

    With `takes` > 1 (HarmonyBestOfTakes) one bar runs over takes x steps; `start_take(i)` is also a cancel
    point between takes."""

    def __init__(self, steps: int, codec: VideoCodec, node_id: str | None, takes: int = 1) -> None:
        self.steps, self.total, self.offset = steps, steps * takes, 0
        self.bar = comfy.utils.ProgressBar(self.total, node_id=node_id)
        self.codec, self.node_id = codec, node_id
        self.preview = previews_enabled() and node_id is not None

    def start_take(self, index: int) -> None:
        mm.throw_exception_if_processing_interrupted()
        self.offset = index * self.steps
        self.bar.update_absolute(self.offset, self.total)

    def __call__(self, step: int, total: int, x0_video: torch.Tensor, x0_audio: torch.Tensor) -> None:
        mm.throw_exception_if_processing_interrupted()
        done = self.offset + step + 1
        self.bar.update_absolute(done, self.total)
        if self.preview:
            ComfyAPISync().execution.set_progress(
                done, self.total, node_id=self.node_id, preview_image=preview_image(self.codec, x0_video)
            )
