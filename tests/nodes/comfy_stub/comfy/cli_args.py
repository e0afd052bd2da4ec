"""Stand-in for `comfy.cli_args` (ComfyUI @ 783545f): the parsed defaults the nodes read."""
from __future__ import annotations

import enum
from types import SimpleNamespace


class LatentPreviewMethod(enum.Enum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"


args = SimpleNamespace(preview_method=LatentPreviewMethod.NoPreviews, preview_size=512,
                       disable_metadata=False, fp8_e4m3fn_unet=False, fp8_e5m2_unet=False, fp8_e8m0fnu_unet=False,
                       fp32_unet=False, bf16_unet=False, fp16_unet=False)
