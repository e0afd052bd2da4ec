"""UniAVGen's own guidance: modality-aware CFG (MA-CFG) + skip-layer guidance, on the same sampler loop.

UniAVGen (arXiv 2511.03334; reference `wan/infer.py` of github.com/MCG-NJU/Sora2-mini, described in
`shared/reference/uniavgen.md` §7-§8) runs two passes per step on the current latents:
- cond   ("J" in our pass names): positive video prompt and transcript, interaction on except the task's flags;
- uncond ("U"): negative prompt and transcript, the blocks in `skip_blocks` skipped (skip-layer guidance,
  every step) and, for steps i < int(macfg_fraction * steps), both interaction directions off ("zero_con":
  the shared unimodal negative of MA-CFG); later steps keep the interaction on (plain text CFG + SLG).
They combine per modality as  v = uncond + s (cond - uncond),  s_v = 3 (video), s_a = 2 (audio), in that
order of operations (the reference's). The passes differ in their structural flags (`passes.PassFlags`), so
the sampler runs them as separate denoiser calls (one per distinct flags; passes.py).

The reference picks flags per task. Our modes map onto its tasks as follows (`uniavgen_task`, `TASK_FLAGS`):

| mode (ModeSpec.name)          | UniAVGen task | cond pass     | uncond pass (before MA-CFG / SLG) |
|-------------------------------|---------------|---------------|-----------------------------------|
| joint                         | 0 AVG         | everything on | everything on                     |
| joint + reference audio       | 1 RAVG        | V2A off       | everything on                     |
| audio_driven                  | 2 A2V         | V2A off       | V2A off                           |
| video_driven                  | 3 V2A         | A2V off       | A2V off                           |

A reference voice only changes the joint task: the driven tasks ignore it (UniAVGen has no driven task with a
reference voice). The two guidance kinds ("synccfg", ours; "uniavgen", this one) run on the same weights: the
caller picks one per generation through `Guidance(macfg=...)`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..passes import PassFlags
from .solvers import AV

AVG, RAVG, A2V, V2A = "avg", "ravg", "a2v", "v2a"
TASK_IDS = {AVG: 0, RAVG: 1, A2V: 2, V2A: 3}  # the reference's `task` argument (wan/infer.py)
MODE_NAMES = ("joint", "audio_driven", "video_driven")


@dataclass(frozen=True)
class TaskFlags:
    """The structural flags of a task's cond and uncond passes before MA-CFG and SLG are applied."""

    cond: PassFlags
    uncond: PassFlags


TASK_FLAGS: dict[str, TaskFlags] = {
    AVG: TaskFlags(cond=PassFlags(), uncond=PassFlags()),
    RAVG: TaskFlags(cond=PassFlags(v2a=False), uncond=PassFlags()),
    A2V: TaskFlags(cond=PassFlags(v2a=False), uncond=PassFlags(v2a=False)),
    V2A: TaskFlags(cond=PassFlags(a2v=False), uncond=PassFlags(a2v=False)),
}


def uniavgen_task(mode_name: str, reference_audio: bool = False) -> str:
    """UniAVGen's task for one of our modes: "avg", "ravg" (joint with a reference voice), "a2v", "v2a"."""
    if mode_name == "joint":
        return RAVG if reference_audio else AVG
    if mode_name == "audio_driven":
        return A2V
    if mode_name == "video_driven":
        return V2A
    raise ValueError(f"UniAVGen guidance knows the modes {', '.join(MODE_NAMES)}, got {mode_name!r}; build "
                     f"the mode with sampling.joint / audio_driven / video_driven")


def _check_skip_blocks(skip_blocks: object) -> None:
    if not isinstance(skip_blocks, tuple) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b >= 0 for b in skip_blocks):
        raise ValueError(f"MACFG.skip_blocks must be a tuple of block indices >= 0, e.g. (11,) for the released "
                         f"model or () for no skip-layer guidance, got {skip_blocks!r}")


@dataclass(frozen=True)
class MACFG:
    """UniAVGen's guidance settings (defaults = the released `configs/inference.yaml`).

    video_scale / audio_scale: CFG scale per modality (s_v, s_a). macfg_fraction: the uncond pass has the
    interaction off on steps i < int(macfg_fraction * steps) (`macfg_prop`; >= 1 means every step).
    skip_blocks: blocks skipped in every uncond pass (`slg_layer`; () = no skip-layer guidance).
    reference_audio: the audio stream carries a prepended reference voice (UniAVGen's RAVG task: the cond
    pass runs with V2A off); set it from the conditioning (a reference audio given or not).
    """

    video_scale: float = 3.0
    audio_scale: float = 2.0
    macfg_fraction: float = 0.5
    skip_blocks: tuple[int, ...] = (11,)
    reference_audio: bool = False

    def __post_init__(self) -> None:
        for key in ("video_scale", "audio_scale", "macfg_fraction"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"MACFG.{key} must be a finite number, got {value!r}")
        if self.macfg_fraction < 0:
            raise ValueError(f"MACFG.macfg_fraction must be >= 0 (0: no MA-CFG step, 0.5: the first half, "
                             f">= 1: every step), got {self.macfg_fraction}")
        _check_skip_blocks(self.skip_blocks)

    def scale(self, modality: str) -> float:
        """s_v for "video", s_a for "audio"."""
        if modality not in ("video", "audio"):
            raise ValueError(f"modality must be 'video' or 'audio', got {modality!r}")
        return self.video_scale if modality == "video" else self.audio_scale

    def needs_uncond(self, generates_video: bool, generates_audio: bool) -> bool:
        """True when a generated modality has a scale != 1 (else the cond pass alone is the velocity)."""
        return (generates_video and self.video_scale != 1.0) or (generates_audio and self.audio_scale != 1.0)

    def macfg_steps(self, steps: int) -> int:
        """How many leading steps run the uncond pass without interaction: int(macfg_fraction * steps)."""
        return int(self.macfg_fraction * steps)

    def task(self, mode_name: str) -> str:
        """UniAVGen's task for a mode (see the module table)."""
        return uniavgen_task(mode_name, self.reference_audio)

    def flags(self, mode_name: str, step: int, steps: int) -> tuple[PassFlags, PassFlags]:
        """(cond, uncond) flags of step `step` (0-based) of `steps`."""
        base = TASK_FLAGS[self.task(mode_name)]
        uncond = base.uncond.without_interaction() if step < self.macfg_steps(steps) else base.uncond
        return base.cond, replace(uncond, skip_blocks=self.skip_blocks)

    def combine(self, cond: AV, uncond: AV | None) -> AV:
        """uncond + s (cond - uncond) per modality; the cond prediction itself without an uncond pass."""
        if uncond is None:
            return cond
        return AV(uncond.video + self.video_scale * (cond.video - uncond.video),
                  uncond.audio + self.audio_scale * (cond.audio - uncond.audio))
