"""What one generation asks for, in four parts a reader can hold in their head.

- what to generate: `mode`, the text (`prompt`, `audio_prompt`, `transcript`, `negative_prompt`), the size and
  length (`width`, `height`, `num_frames`, `fps`), the driving / reference media (`Media`, raw or encoded) and
  precomputed caption embeddings (`Captions`);
- how to sample: `Sampling` (steps, shift, solver, seed, batch);
- how to guide: the sampler's own frozen `Guidance` (SyncCFG + text CFG, or MA-CFG; optional CFG-rescale),
  passed as itself.

None means "the checkpoint's default" (`HarmonyConfig.defaults`); `HarmonyPipeline.resolve` fills it in.
Each knob has one name from CLI flag to node widget to field: `--sync-video-scale` / `sync_video_scale` /
`guidance.sync.video_scale`, `--rescale-audio` / `rescale_audio` / `guidance.rescale.audio` (checkpoint:
`defaults.rescale_audio`), `--steps` / `steps` / `sampling.steps`, and so on.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .config import GenerationDefaults
from .sampling import MACFG, Guidance, Rescale, SyncCFG, TextCFG

MODES = ("joint", "audio_driven", "video_driven")


@dataclass(frozen=True, eq=False)
class Media:
    """Driving and reference media. image [3, H, W] in [-1, 1] (reference / first frame); audio [L] mono at
    the audio codec's rate (audio_driven); video [3, F, H, W] in [-1, 1] (video_driven); ref_audio [L] (voice
    reference). Each may instead be given encoded; a latent wins over raw media."""

    image: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    video: torch.Tensor | None = None
    ref_audio: torch.Tensor | None = None
    image_latent: torch.Tensor | None = None      # [1, Cv, 1, h, w]
    audio_latent: torch.Tensor | None = None      # [1, Ca, Ta'] driving audio (audio_driven)
    video_latent: torch.Tensor | None = None      # [1, Cv, Tv, h, w] driving video (video_driven)
    ref_audio_latent: torch.Tensor | None = None  # [1, Ca, Tr]

    @property
    def has_audio(self) -> bool:
        return self.audio is not None or self.audio_latent is not None

    @property
    def has_video(self) -> bool:
        return self.video is not None or self.video_latent is not None


@dataclass(frozen=True, eq=False)
class Captions:
    """Precomputed caption embeddings [1 or B, L, D] (e.g. umT5 from ComfyUI) for models without their own
    text encoder; the negative ones feed text CFG."""

    video: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    negative_video: torch.Tensor | None = None
    negative_audio: torch.Tensor | None = None

    def pair(self, negative: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return (self.negative_video, self.negative_audio) if negative else (self.video, self.audio)


@dataclass(frozen=True)
class Sampling:
    """How to sample: steps of the shifted schedule ("flow", or "uniavgen": its shifted Wan timesteps), the
    solver, the noise seed, and how many clips (batch) are sampled at once."""

    steps: int | None = None
    shift: float | None = None
    solver: str | None = None
    schedule: str | None = None
    seed: int = 0
    batch: int = 1


@dataclass(frozen=True, eq=False)
class Request:
    """What to generate, how to sample it, how to guide it (see the module docstring)."""

    mode: str = "joint"
    prompt: str = ""
    audio_prompt: str | None = None   # None: the prompt
    transcript: str = ""
    ref_transcript: str = ""          # what the reference voice says (UniAVGen puts it before the transcript)
    language: str = "en"              # of the transcripts: "en", or "zh" (UniAVGen, with jieba + pypinyin)
    negative_prompt: str = ""
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None
    fps: str | None = None
    media: Media = field(default_factory=Media)
    captions: Captions = field(default_factory=Captions)
    sampling: Sampling = field(default_factory=Sampling)
    guidance: Guidance | None = None   # None: the checkpoint's defaults for this mode

    @property
    def batch(self) -> int:
        return self.sampling.batch

    @property
    def steps(self) -> int | None:
        return self.sampling.steps

    def with_batch(self, batch: int) -> Request:
        return replace(self, sampling=replace(self.sampling, batch=batch))

    def with_seed(self, seed: int) -> Request:
        return replace(self, sampling=replace(self.sampling, seed=seed))


def default_guidance(d: GenerationDefaults, mode: str) -> Guidance:
    """A checkpoint's guidance for `mode`: its SyncCFG and text-CFG scales, with the driven modes' own SyncCFG
    scale where it stores one (the only SyncCFG scale a driven mode uses); or, for a checkpoint whose default
    is UniAVGen's guidance, MA-CFG at its text scales with its skip-layer blocks. Either kind gets the
    checkpoint's CFG-rescale mix factors (`rescale_video` / `rescale_audio`; 0 = off), with the driven modes'
    own (`driven_rescale_*`) where it stores them."""
    def pick(value: float, driven: float | None, driven_mode: str) -> float:
        """The driven mode's own value in that mode, where the checkpoint stores one; else the joint one."""
        return driven if mode == driven_mode and driven is not None else value

    rescale = Rescale(pick(d.rescale_video, d.driven_rescale_video, "audio_driven"),
                      pick(d.rescale_audio, d.driven_rescale_audio, "video_driven"))
    if d.guidance == "uniavgen":
        return Guidance(macfg=MACFG(d.text_video_scale, d.text_audio_scale, skip_blocks=d.macfg_skip_blocks),
                        rescale=rescale)
    sync = SyncCFG(pick(d.sync_video_scale, d.driven_sync_video_scale, "audio_driven"),
                   pick(d.sync_audio_scale, d.driven_sync_audio_scale, "video_driven"))
    return Guidance(sync=sync, text=TextCFG(d.text_video_scale, d.text_audio_scale), rescale=rescale)


def resolve_defaults(req: Request, d: GenerationDefaults) -> Request:
    """`req` with every None taken from the checkpoint's defaults (size, length, sampling, guidance)."""
    size = {k: getattr(d, k) for k in ("num_frames", "width", "height", "fps") if getattr(req, k) is None}
    s = req.sampling
    sampling = replace(s, steps=d.steps if s.steps is None else s.steps,
                       shift=d.shift if s.shift is None else s.shift,
                       solver=d.solver if s.solver is None else s.solver,
                       schedule=d.schedule if s.schedule is None else s.schedule)
    guidance = req.guidance if req.guidance is not None else default_guidance(d, req.mode)
    return replace(req, sampling=sampling, guidance=guidance, **size)
