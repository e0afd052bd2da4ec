"""Training batches: synthetic clips encoded on the fly with the model's own codecs.

A batch is a pure function of (seed, step, rank): clip indices are drawn from the synthetic stream
(`synthetic.stream_clip`) so a resumed run sees exactly the batches an uninterrupted one would. Clips are
cheap but not free on two CPU cores (~0.03 s an impact scene, ~0.12 s a speaker scene, plus encoding),
so each clip may serve several steps: step s takes its `fresh` newest clips plus random picks from the
`window` clips before them (`reuse` ~ batch / fresh uses per clip). Encoded latents are memoised in a small
in-memory LRU (`cache_clips` entries of ~110 KB each at the demo size); nothing is written to disk.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from .. import timeline
from ..codecs.base import AudioCodec, VideoCodec
from .synthetic import KINDS, Clip, SceneSpec, stream_clip
from .synthetic_variety import condition_variation

_Texts = tuple[str, str, str, str]   # video caption, audio caption, transcript, scene kind


@dataclass(frozen=True)
class DataConfig:
    """Where training clips come from. reuse: average number of steps a clip serves (1 = every clip is
    new); window: how many recent clips the re-used picks come from; cond_variety: chance of each plainer
    event mark in the given modality of the driven tasks (synthetic_variety.condition_variation)."""

    seed: int = 0
    batch: int = 8
    reuse: float = 1.0
    window: int = 256
    kinds: tuple[str, ...] = KINDS
    spec: SceneSpec = field(default_factory=SceneSpec)
    cond_variety: float = 0.0

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if not 1.0 <= self.reuse <= self.batch:
            raise ValueError(f"reuse must lie in [1, batch={self.batch}], got {self.reuse}")
        if self.window < self.batch:
            raise ValueError(f"window ({self.window}) must hold at least one batch ({self.batch})")
        if not 0.0 <= self.cond_variety <= 1.0:
            raise ValueError(f"cond_variety is a probability in [0, 1], got {self.cond_variety}")
        unknown = set(self.kinds) - set(KINDS)
        if not self.kinds or unknown:
            raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {self.kinds}")

    @property
    def fresh(self) -> int:
        """New clips per step."""
        return max(1, math.ceil(self.batch / self.reuse))


@dataclass(frozen=True, eq=False)
class LatentBatch:
    """One training batch. video [B, Cv, Tv, h, w], audio [B, Ca, Ta] clean latents; captions and
    transcripts as text (the caption encoder is part of the model and trains with it). video_cond /
    audio_cond: what a driven task is given of that modality (None: the clean latents themselves)."""

    video: torch.Tensor
    audio: torch.Tensor
    video_captions: tuple[str, ...]
    audio_captions: tuple[str, ...]
    transcripts: tuple[str, ...]
    kinds: tuple[str, ...]
    indices: tuple[int, ...]
    video_cond: torch.Tensor | None = None
    audio_cond: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.video.shape[0])


@dataclass(frozen=True, eq=False)
class _Item:
    """One encoded clip: latents [1, ...], texts, and what a driven task is given (the same latents, or a
    plainer rendering of the same events)."""

    video: torch.Tensor
    audio: torch.Tensor
    texts: _Texts
    video_cond: torch.Tensor
    audio_cond: torch.Tensor


def frames_to_pixels(frames: torch.Tensor) -> torch.Tensor:
    """Clip frames [F, H, W, 3] (or [B, F, H, W, 3]) in [0, 1] -> codec pixels [B, 3, F, H, W] in [-1, 1]."""
    x = frames if frames.ndim == 5 else frames[None]
    return (x.float() * 2.0 - 1.0).permute(0, 4, 1, 2, 3).contiguous()  # [B, 3, F, H, W]


def wave_to_latent_length(wave: torch.Tensor, audio_codec: AudioCodec, num_frames: int,
                          fps: Fraction | int | float | str) -> torch.Tensor:
    """Waves [B, L] -> [B, Ta * samples_per_latent], Ta = the audio latents covering the video
    (`timeline.audio_latents_for_frames`, as the pipeline lays out a generation)."""
    rate = timeline.audio_latent_rate(audio_codec.sample_rate, audio_codec.samples_per_latent)
    ta = timeline.audio_latents_for_frames(num_frames, fps, rate)
    target = ta * audio_codec.samples_per_latent
    return torch.nn.functional.pad(wave, (0, max(0, target - wave.shape[-1])))[..., :target]  # [B, target]


@torch.no_grad()
def encode_clips(clips: Sequence[Clip], video_codec: VideoCodec,
                 audio_codec: AudioCodec) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of one size -> (video [B, Cv, Tv, h, w], audio [B, Ca, Ta]) latents on the codecs' device."""
    frames = torch.stack([c.frames for c in clips])                                  # [B, F, H, W, 3]
    wave = torch.stack([c.wave for c in clips]).float()                              # [B, L]
    wave = wave_to_latent_length(wave, audio_codec, frames.shape[1], clips[0].fps)
    return video_codec.encode(frames_to_pixels(frames)), audio_codec.encode(wave)


class SyntheticLatents:
    """Deterministic batches of encoded synthetic clips for rank `rank` of `world` (see module doc)."""

    def __init__(self, config: DataConfig, video_codec: VideoCodec, audio_codec: AudioCodec,
                 rank: int = 0, world: int = 1, cache_clips: int | None = None) -> None:
        self.config, self.rank, self.world = config, rank, world
        self.video_codec, self.audio_codec = video_codec, audio_codec
        self.capacity = cache_clips if cache_clips is not None else config.window + config.batch
        self._cache: OrderedDict[int, _Item] = OrderedDict()

    def indices(self, step: int) -> list[int]:
        """Local stream indices of step `step` (0-based): the step's fresh clips, then re-used picks."""
        cfg = self.config
        newest = (step + 1) * cfg.fresh                                     # exclusive end of seen clips
        picks = list(range(newest - cfg.fresh, newest))[: cfg.batch]
        older = max(0, newest - cfg.fresh - cfg.window)
        pool = newest - cfg.fresh - older
        extra = cfg.batch - len(picks)
        if extra > 0:
            rng = np.random.default_rng([cfg.seed, step, self.rank, 7])
            if pool >= extra:
                picks += [older + int(i) for i in rng.choice(pool, size=extra, replace=False)]
            else:   # the first steps: not enough history yet, draw among everything seen so far
                picks += [int(i) for i in rng.integers(0, newest, size=extra)]
        return picks

    def batch(self, step: int) -> LatentBatch:
        """The batch of step `step`."""
        local = self.indices(step)
        items = [self._item(i * self.world + self.rank) for i in local]
        video = torch.cat([it.video for it in items])                      # [B, Cv, Tv, h, w]
        audio = torch.cat([it.audio for it in items])                      # [B, Ca, Ta]
        video_caps, audio_caps, transcripts, kinds = zip(*[it.texts for it in items])
        cond = self.config.cond_variety > 0
        return LatentBatch(video, audio, video_caps, audio_caps, transcripts, kinds,
                           tuple(i * self.world + self.rank for i in local),
                           torch.cat([it.video_cond for it in items]) if cond else None,
                           torch.cat([it.audio_cond for it in items]) if cond else None)

    def _item(self, index: int) -> _Item:
        """Encoded latents [1, ...], texts and driven-task conditions of one clip."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        cfg = self.config
        clip = stream_clip(cfg.seed, index, cfg.spec, cfg.kinds)
        video, audio = encode_clips([clip], self.video_codec, self.audio_codec)
        texts = (clip.video_caption, clip.audio_caption, clip.transcript, clip.kind)
        variation = condition_variation(clip.seed, cfg.cond_variety, clip.kind)   # None at 0
        video_cond, audio_cond = video, audio
        if variation is not None:
            plain = stream_clip(cfg.seed, index, cfg.spec, cfg.kinds, variation)
            video_cond, audio_cond = encode_clips([plain], self.video_codec, self.audio_codec)
        self._cache[index] = _Item(video, audio, texts, video_cond, audio_cond)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return self._cache[index]
