"""Guidance: per-modality text CFG and SyncCFG (ONE batched denoiser call per step), or UniAVGen's MA-CFG.

Passes (rows stacked along the batch: row p * B + b is pass p, item b):
- "J"  joint positive: current latents at their per-frame sigmas, cond 0. Always.
- "U"  the same inputs with cond 1 (negative / empty text), when the text-CFG scale of a generated
       modality != 1.
- "AD" audio-driven negative: video as in J, audio replaced by the mute-audio anchor (clean, t_a = 0), cond 0,
       when SyncCFG's video scale != 1 in range and video is generated (arXiv 2511.21579 Eq. 9).
- "VD" video-driven negative: video replaced by the static-video anchor (clean, t_v = 0), audio as in J,
       cond 0, when SyncCFG's audio scale != 1 in range and audio is generated (Eq. 10).

Combination (Eq. 9/10 written as J + (s - 1)(J - neg), identical to AD + s (J - AD), plus text CFG):
    v_video = J_v + (s_v - 1)(J_v - AD_v) + (g_v - 1)(J_v - U_v)
    v_audio = J_a + (s_a - 1)(J_a - VD_a) + (g_a - 1)(J_a - U_a)

The anchors are tensors the caller passes in; the codec layer builds them (`AudioCodec.silence_latent`: the
encoding of an all-zero waveform; `VideoCodec.static_latent`: one image held for every frame). The paper does
not say how they are made (method.md §4.5); the negatives keep the positive text (cond 0) so the difference
isolates the cross-modal effect.

CFG-rescale (optional, per modality, `Rescale`; Lin et al. 2023, arXiv 2305.08891 §3.4, Eq. 15-16): guidance
adds energy ((s - 1)(J - neg) makes audio louder and video over-saturated), so the guided prediction of a
modality that got any guidance delta is pulled toward the per-sample std of the joint prediction J. In the
sampler it acts on the clean-signal prediction x0 = x - sigma * v (the velocity's std is mostly the noise,
which guidance does not change: rescaling v barely moves loudness), then converts back to a velocity:
    x0_g = x - sigma v_g,  x0_J = x - sigma v_J
    r = x0_g * std(x0_J) / std(x0_g)          (std over every dim but the batch)
    x0' = phi * r + (1 - phi) * x0_g          (phi in [0, 1]; 0 = off, the default)
    v' = (x - x0') / sigma                    (tokens at sigma = 0 keep v_g)
so the last Euler step (to sigma = 0) lands exactly on x0'. Callers that combine x0 predictions directly
(ComfyUI guiders) call `combine` without x and sigma and get the rescale on what they pass.

Two guidance kinds run on the same weights, picked per generation: "synccfg" (the above, the default) and
"uniavgen" (`Guidance(macfg=MACFG(...))`, uniavgen.py: passes J (cond) and U (uncond) with per-pass structural
flags, combined as U + s (J - U)). Passes with different `PassFlags` go to separate denoiser calls, one per
distinct flags in order of first use; Harmony's passes all use `PassFlags()` and stay ONE call, made without
the `flags` keyword (so denoisers that predate it keep working).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Protocol

import torch

from ..config import GUIDANCE_KINDS
from ..passes import PLAIN, PassFlags
from .modes import ModeSpec
from .solvers import AV
from .uniavgen import MACFG

JOINT, UNCOND, AUDIO_DRIVEN, VIDEO_DRIVEN = "J", "U", "AD", "VD"
MODALITIES = ("video", "audio")
SYNCCFG_KIND, UNIAVGEN_KIND = GUIDANCE_KINDS


class Denoiser(Protocol):
    """The model contract: velocity (noise - x0) for both modalities.

    video [N, Cv, Tv, h, w], audio [N, Ca, Ta], t_video [N, Tv], t_audio [N, Ta] (per-frame sigma in [0, 1]),
    cond_index [N] long (0 = positive text, 1 = negative / unconditional); flags: what every row of this call
    switches off (`passes.PassFlags`; the sampler passes it only when it differs from the default).
    Returns (v_video, v_audio).
    """

    def __call__(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
                 cond_index: torch.Tensor, *, flags: PassFlags = PLAIN) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass(frozen=True)
class _ScaledGuider:
    """A per-modality guidance scale applied on the step-fraction range [start, end)."""

    video_scale: float = 1.0
    audio_scale: float = 1.0
    start: float = 0.0
    end: float = 1.0

    def __post_init__(self) -> None:
        kind = type(self).__name__
        for key in ("video_scale", "audio_scale", "start", "end"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{kind}.{key} must be a finite number, got {getattr(self, key)}")
        if not 0.0 <= self.start <= 1.0 or not 0.0 <= self.end <= 1.0:
            raise ValueError(f"{kind} range must lie in [0, 1] (fractions of the schedule), got "
                             f"start={self.start}, end={self.end}")

    def enabled(self, step_fraction: float) -> bool:
        """True when step k of n (step_fraction = k / n) lies in [start, end); start >= end is empty."""
        return self.start <= step_fraction < self.end

    def scale(self, modality: str) -> float:
        """The scale for "video" or "audio"."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        return self.video_scale if modality == "video" else self.audio_scale

    def active(self, modality: str, step_fraction: float) -> bool:
        """True when this guider needs its negative pass for `modality` at this step."""
        return self.scale(modality) != 1.0 and self.enabled(step_fraction)

    def delta(self, modality: str, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """(scale - 1) * (positive - negative): what guidance adds to the positive prediction."""
        return (self.scale(modality) - 1.0) * (positive - negative)


@dataclass(frozen=True)
class TextCFG(_ScaledGuider):
    """Classifier-free guidance on the text condition per modality (Ho & Salimans 2022, arXiv 2207.12598;
    per-modality scales as in Ovi). Default 1 = off: Harmony's guidance is SyncCFG."""


@dataclass(frozen=True)
class SyncCFG(_ScaledGuider):
    """Synchronization-enhanced CFG (arXiv 2511.21579 §3.4, Eq. 9-10); defaults s_v = 3, s_a = 2 (§B)."""

    video_scale: float = 3.0
    audio_scale: float = 2.0


@dataclass(frozen=True)
class Rescale:
    """CFG-rescale mix factors phi per modality (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
    Steps are Flawed", arXiv 2305.08891 §3.4, Eq. 15-16), applied after guidance to the guided prediction of
    a modality that received a guidance delta at this step (in the sampler: its x0 prediction, see the module
    docstring):

        r  = x0_g * std(x0_J) / std(x0_g)    Eq. 15; std per sample over every dim but the batch, J = joint
        x0' = phi * r + (1 - phi) * x0_g     Eq. 16

    phi in [0, 1]: 0 = off (the default; old checkpoints keep their behaviour bit for bit), 1 = the guided
    prediction gets exactly the energy of the unguided joint prediction; the paper uses 0.7. It keeps the
    direction guidance adds and drops the loudness / saturation it inflates. Applies to SyncCFG + text CFG and
    to UniAVGen's MA-CFG alike (J is the positive pass in both)."""

    video: float = 0.0
    audio: float = 0.0

    def __post_init__(self) -> None:
        for key in MODALITIES:
            phi = getattr(self, key)
            if not (math.isfinite(phi) and 0.0 <= phi <= 1.0):
                raise ValueError(f"CFG-rescale {key} mix factor (--rescale-{key} / rescale_{key}) must be a finite "
                                 f"number in [0, 1] (0 = off, 1 = the unguided prediction's std), got {phi}")


_FLAT = 1e-6  # std(v) at most this fraction of max |v|: v is constant up to rounding, left as is


def rescale_toward(guided: torch.Tensor, joint: torch.Tensor, phi: float) -> torch.Tensor:
    """phi * guided * std(joint) / std(guided) + (1 - phi) * guided per sample (`Rescale`, Eq. 15-16),
    written as guided * (phi * ratio + 1 - phi); stds in float32 (or wider), the result in guided's dtype.
    guided, joint: [B, ...] of one modality. A sample whose guided velocity is flat (std 0, or below
    rounding noise of its values) has no energy to rescale and is returned unchanged."""
    dims = tuple(range(1, guided.ndim))
    acc = torch.promote_types(guided.dtype, torch.float32)
    g = guided.to(acc)
    std_g = g.std(dim=dims, keepdim=True)                                     # [B, 1, ...]
    std_j = joint.to(acc).std(dim=dims, keepdim=True)                         # [B, 1, ...]
    flat = std_g <= _FLAT * g.abs().amax(dim=dims, keepdim=True)              # [B, 1, ...] (also std 0)
    ratio = torch.where(flat, torch.ones_like(std_g), std_j / std_g)           # [B, 1, ...]; x / 0 is dropped
    return (g * (phi * ratio + (1.0 - phi))).to(guided.dtype)                 # [B, ...]


@dataclass(frozen=True, eq=False)
class SyncAnchors:
    """SyncCFG negative anchors, clean latents built by the codecs: mute_audio [B|1, Ca, Ta]
    (`AudioCodec.silence_latent`), static_video [B|1, Cv, Tv, h, w] (`VideoCodec.static_latent`)."""

    mute_audio: torch.Tensor | None = None
    static_video: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class Guidance:
    """Everything guidance needs for one generation. With `macfg` set the guidance is UniAVGen's
    (MA-CFG + skip-layer guidance) and `sync` is not used; its text guidance is built in, so `text` must
    stay at scale 1. `rescale` (CFG-rescale, default off) applies to either kind."""

    sync: SyncCFG = field(default_factory=SyncCFG)
    text: TextCFG = field(default_factory=TextCFG)
    anchors: SyncAnchors = field(default_factory=SyncAnchors)
    macfg: MACFG | None = None
    rescale: Rescale = field(default_factory=Rescale)

    def __post_init__(self) -> None:
        if self.macfg is not None and (self.text.video_scale != 1.0 or self.text.audio_scale != 1.0):
            raise ValueError("UniAVGen guidance (macfg) already guides on the negative text with its own scales; "
                             "set the TextCFG scales to 1, or drop macfg to use SyncCFG + text CFG")

    @property
    def kind(self) -> str:
        """"uniavgen" with `macfg` set, else "synccfg"."""
        return UNIAVGEN_KIND if self.macfg is not None else SYNCCFG_KIND

    def passes(self, step_fraction: float, generates_video: bool, generates_audio: bool) -> tuple[str, ...]:
        """The passes to run at one step, in batch order."""
        if self.macfg is not None:
            return (JOINT, UNCOND) if self.macfg.needs_uncond(generates_video, generates_audio) else (JOINT,)
        gen = {"video": generates_video, "audio": generates_audio}
        out = [JOINT]
        if any(gen[m] and self.text.active(m, step_fraction) for m in MODALITIES):
            out.append(UNCOND)
        if generates_video and self.sync.active("video", step_fraction):
            out.append(AUDIO_DRIVEN)
        if generates_audio and self.sync.active("audio", step_fraction):
            out.append(VIDEO_DRIVEN)
        return tuple(out)


def guidance_for(kind: str, *, sync: SyncCFG | None = None, text: TextCFG | None = None,
                 anchors: SyncAnchors | None = None, macfg: MACFG | None = None,
                 rescale: Rescale | None = None) -> Guidance:
    """Guidance of the kind named by a string: "synccfg" (uses sync/text/anchors) or "uniavgen" (uses macfg,
    default MACFG()); both take `rescale`. Settings of the other kind are not accepted, so a choice cannot be
    silently ignored."""
    rescale = rescale or Rescale()
    if kind == SYNCCFG_KIND:
        if macfg is not None:
            raise ValueError("guidance kind 'synccfg' takes no MACFG settings; use kind 'uniavgen' for them")
        return Guidance(sync=sync or SyncCFG(), text=text or TextCFG(), anchors=anchors or SyncAnchors(),
                        rescale=rescale)
    if kind == UNIAVGEN_KIND:
        if sync is not None or text is not None or anchors is not None:
            raise ValueError("guidance kind 'uniavgen' takes only MACFG settings (it has no SyncCFG anchors and "
                             "its own text guidance); use kind 'synccfg' for sync/text/anchors")
        return Guidance(macfg=macfg or MACFG(), rescale=rescale)
    raise ValueError(f"unknown guidance kind {kind!r}; accepted: {', '.join(GUIDANCE_KINDS)}")


def plan_passes(guidance: Guidance, mode: ModeSpec, steps: int) -> list[tuple[str, ...]]:
    """The pass list of every step (step k has step_fraction k / steps), for logging and benchmarks."""
    gen_v, gen_a = mode.generates_video, mode.generates_audio
    return [guidance.passes(k / steps, gen_v, gen_a) for k in range(steps)]


def plan_flags(guidance: Guidance, mode: ModeSpec, steps: int) -> list[dict[str, PassFlags]]:
    """The structural flags of every planned pass, per step: PassFlags() for all of Harmony's passes;
    UniAVGen's per task, MA-CFG step range and skip-layer guidance (uniavgen.py)."""
    plan = plan_passes(guidance, mode, steps)
    if guidance.macfg is None:
        return [{p: PLAIN for p in step} for step in plan]
    out = []
    for k, step in enumerate(plan):
        cond, uncond = guidance.macfg.flags(mode.name, k, steps)
        out.append({p: cond if p == JOINT else uncond for p in step})
    return out


def check_anchors(guidance: Guidance, plan: list[tuple[str, ...]], x: AV) -> None:
    """Raise before sampling when a planned SyncCFG pass lacks its anchor or the anchor's shape is wrong."""
    needed = {p for step in plan for p in step}
    for pass_name, anchor, lat, what, knob in (
            (AUDIO_DRIVEN, guidance.anchors.mute_audio, x.audio, "mute_audio", "SyncCFG video_scale"),
            (VIDEO_DRIVEN, guidance.anchors.static_video, x.video, "static_video", "SyncCFG audio_scale")):
        if pass_name not in needed:
            continue
        if anchor is None:
            raise ValueError(f"{knob} != 1 needs SyncAnchors.{what} (built by the codec); pass it or set the "
                             f"scale to 1 / the range to empty")
        if anchor.shape[1:] != lat.shape[1:] or anchor.shape[0] not in (1, lat.shape[0]):
            raise ValueError(f"SyncAnchors.{what} {tuple(anchor.shape)} must match the latent "
                             f"{tuple(lat.shape)} (batch may be 1)")


def _pass_inputs(name: str, x: AV, sigma: AV, anchors: SyncAnchors) -> tuple[torch.Tensor, ...]:
    """(video, audio, t_video, t_audio, cond) of one pass for B items."""
    b = x.video.shape[0]
    cond = torch.full((b,), 1 if name == UNCOND else 0, dtype=torch.long, device=x.video.device)  # [B]
    if name in (JOINT, UNCOND):
        return x.video, x.audio, sigma.video, sigma.audio, cond
    if name == AUDIO_DRIVEN:
        mute = anchors.mute_audio.to(x.audio).expand_as(x.audio)  # [B, Ca, Ta]
        return x.video, mute, sigma.video, torch.zeros_like(sigma.audio), cond
    static = anchors.static_video.to(x.video).expand_as(x.video)  # [B, Cv, Tv, h, w]
    return static, x.audio, torch.zeros_like(sigma.video), sigma.audio, cond


def _run_call(denoiser: Denoiser, x: AV, sigma: AV, anchors: SyncAnchors, passes: tuple[str, ...],
              flags: PassFlags) -> dict[str, AV]:
    """Evaluate passes sharing `flags` in ONE denoiser call (rows p * B + b) and split the outputs per pass."""
    inputs = [_pass_inputs(p, x, sigma, anchors) for p in passes]
    video, audio, t_video, t_audio, cond = (torch.cat(parts, dim=0) for parts in zip(*inputs))  # [P*B, ...]
    extra = {} if flags == PLAIN else {"flags": flags}
    out_v, out_a = denoiser(video, audio, t_video, t_audio, cond, **extra)
    if out_v.shape != video.shape or out_a.shape != audio.shape:
        raise ValueError(f"denoiser returned {tuple(out_v.shape)} / {tuple(out_a.shape)}, expected the input "
                         f"shapes {tuple(video.shape)} / {tuple(audio.shape)}")
    b = x.video.shape[0]
    # P x ([B, Cv, Tv, h, w], [B, Ca, Ta])
    return {p: AV(v, a) for p, v, a in zip(passes, out_v.split(b), out_a.split(b))}


def run_passes(denoiser: Denoiser, x: AV, sigma: AV, anchors: SyncAnchors, passes: tuple[str, ...],
               flags: Mapping[str, PassFlags] | None = None) -> dict[str, AV]:
    """Evaluate the passes, one denoiser call per distinct flags (missing = PassFlags()), in order of first use:
    Harmony's passes are all PassFlags() and run as ONE call."""
    groups: dict[PassFlags, list[str]] = {}
    for p in passes:
        groups.setdefault((flags or {}).get(p, PLAIN), []).append(p)
    out: dict[str, AV] = {}
    for group_flags, names in groups.items():
        out.update(_run_call(denoiser, x, sigma, anchors, tuple(names), group_flags))
    return {p: out[p] for p in passes}


def combine(outputs: dict[str, AV], guidance: Guidance, x: AV | None = None, sigma: AV | None = None) -> AV:
    """Guided prediction from the pass outputs: J + SyncCFG delta + text-CFG delta per modality, or
    UniAVGen's U + s (J - U) when `guidance.macfg` is set; then CFG-rescale toward std(J) (`Rescale`) for each
    modality with phi > 0 that received a guidance delta (none: that modality is returned untouched). With
    the current latents x and their per-frame sigmas (video [B, Tv], audio [B, Ta]) the outputs are
    velocities and the rescale acts on their x0 predictions; without, on the outputs themselves."""
    j = outputs[JOINT]
    if guidance.macfg is not None:
        guided = guidance.macfg.combine(j, outputs.get(UNCOND))
        guided_mods = {m for m in MODALITIES if UNCOND in outputs and guidance.macfg.scale(m) != 1.0}
    else:
        guided, guided_mods = _synccfg_combine(outputs, guidance)
    rescale = guidance.rescale
    video, audio = guided.video, guided.audio
    if "video" in guided_mods and rescale.video > 0.0:
        s_v = None if sigma is None else sigma.video[:, None, :, None, None]          # [B, 1, Tv, 1, 1]
        video = _rescale(video, j.video, rescale.video, None if x is None else x.video, s_v)
    if "audio" in guided_mods and rescale.audio > 0.0:
        s_a = None if sigma is None else sigma.audio[:, None, :]                      # [B, 1, Ta]
        audio = _rescale(audio, j.audio, rescale.audio, None if x is None else x.audio, s_a)
    return AV(video, audio)


def _rescale(guided: torch.Tensor, joint: torch.Tensor, phi: float, x: torch.Tensor | None,
             sigma: torch.Tensor | None) -> torch.Tensor:
    """`rescale_toward` on the outputs, or (x and sigma given) on their x0 = x - sigma v, back to a velocity."""
    if x is None or sigma is None:
        return rescale_toward(guided, joint, phi)
    sigma = sigma.to(guided.dtype)
    x0 = rescale_toward(x - sigma * guided, x - sigma * joint, phi)                   # [B, ...]
    return torch.where(sigma > 0, (x - x0) / sigma.clamp_min(torch.finfo(sigma.dtype).tiny), guided)


def _synccfg_combine(outputs: dict[str, AV], guidance: Guidance) -> tuple[AV, set[str]]:
    """(J + SyncCFG delta + text-CFG delta per modality, the modalities that received a delta)."""
    j = outputs[JOINT]
    video, audio = j.video, j.audio
    guided = set()
    if AUDIO_DRIVEN in outputs:
        video = video + guidance.sync.delta("video", j.video, outputs[AUDIO_DRIVEN].video)
        guided.add("video")
    if VIDEO_DRIVEN in outputs:
        audio = audio + guidance.sync.delta("audio", j.audio, outputs[VIDEO_DRIVEN].audio)
        guided.add("audio")
    if UNCOND in outputs:
        if guidance.text.video_scale != 1.0:
            video = video + guidance.text.delta("video", j.video, outputs[UNCOND].video)
            guided.add("video")
        if guidance.text.audio_scale != 1.0:
            audio = audio + guidance.text.delta("audio", j.audio, outputs[UNCOND].audio)
            guided.add("audio")
    return AV(video, audio), guided


def guided_velocity(denoiser: Denoiser, x: AV, sigma: AV, guidance: Guidance, passes: tuple[str, ...],
                    flags: Mapping[str, PassFlags] | None = None) -> AV:
    """The denoiser call(s) for `passes` (one per distinct flags; one for Harmony's), combined into the
    guided velocity for both modalities."""
    if not passes or passes[0] != JOINT:
        raise ValueError(f"the pass list must start with the joint pass {JOINT!r}, got {passes}")
    return combine(run_passes(denoiser, x, sigma, guidance.anchors, passes, flags), guidance, x, sigma)
