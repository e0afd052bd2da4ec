"""Stand-in for ComfyUI's VIDEO value types (`_util/video_types.py`, `_input/video_types.py`,
`_input_impl/video_types.py` @ 783545f): components and a video made of tensors."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import torch


@dataclass
class VideoComponents:
    images: torch.Tensor           # IMAGE [F, H, W, C] in [0, 1]
    frame_rate: Fraction
    audio: Optional[dict] = None   # AUDIO {"waveform": [B, C, T], "sample_rate": int}
    metadata: Optional[dict] = None
    alpha: Optional[torch.Tensor] = None


class VideoInput:
    """What a VIDEO socket carries; the default accessors read the components."""

    def get_components(self) -> VideoComponents:
        raise NotImplementedError

    def get_dimensions(self) -> tuple[int, int]:
        """(width, height)."""
        images = self.get_components().images
        return images.shape[2], images.shape[1]

    def get_duration(self) -> float:
        c = self.get_components()
        return float(c.images.shape[0] / c.frame_rate)

    def get_frame_count(self) -> int:
        return int(self.get_components().images.shape[0])

    def get_frame_rate(self) -> Fraction:
        return self.get_components().frame_rate

    def get_bit_depth(self) -> int:
        return 8


class VideoFromComponents(VideoInput):
    def __init__(self, components: VideoComponents, bit_depth: int = 8):
        self.__components = components
        self.__bit_depth = bit_depth

    def get_components(self) -> VideoComponents:
        c = self.__components
        return VideoComponents(images=c.images, audio=c.audio, frame_rate=c.frame_rate)

    def get_bit_depth(self) -> int:
        return self.__bit_depth

    def get_color_space(self) -> str:
        return "sRGB"
