"""HarmonySyncCFGGuider's GUIDER: Harmony's SyncCFG on ComfyUI's native LTX-2.x audio-video model (LTXAV).

A `comfy.samplers.CFGGuider` subclass (the pattern of core's Guider_LTXAVDualCFG). ComfyUI samples the joint
LATENT (NestedTensor (video, audio)) packed flat, x [B, 1, Nv + Na], and the model reads per-token timesteps
from the `denoise_mask` / `audio_denoise_mask` conds (t = mask * sigma, model_base.LTXAV.process_timestep).
At a step inside SyncCFG's range the passes are those of `harmony_core.sampling.Guidance.passes`:
- joint (J, + U when cfg != 1): ComfyUI's own cond/uncond batch, one model call;
- audio-driven (AD; video scale != 1 and video generated): audio slice := mute-audio anchor, its mask := 0;
- video-driven (VD; audio scale != 1 and audio generated): video slice := static-video anchor, its mask := 0.
Each driven pass is a model call of its own: LTXAV gates the A/V cross-attention with the max timestep over
the whole batch (av_model.py `_prepare_timestep`), so rows at other noise levels must not share a call.
The passes' x0 are combined by `harmony_core.sampling.combine`; a pass contributes only the slice whose x and
sigma equal the joint pass's, so the x0 and velocity forms agree. The result goes through ComfyUI's
`cfg_function`, so `sampler_post_cfg_function` patches (LTXVModalityGuidance, STG, ...) still apply. Outside
the range, or with both SyncCFG scales at 1, the guider is exactly CFGGuider.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch

import comfy.conds
import comfy.model_base
import comfy.samplers
import comfy.utils

from ...harmony_core.sampling import AUDIO_DRIVEN, AV, JOINT, UNCOND, VIDEO_DRIVEN, Guidance, combine
from . import ltx_anchors

log = logging.getLogger(__name__)

DRIVEN = (AUDIO_DRIVEN, VIDEO_DRIVEN)
SUPPORTED = "LTXAV (ComfyUI's native LTX-2, LTX-2.3 and later LTX-2.x audio-video checkpoints)"
H3_REASON = ("MiniMax H3 is not supported: its released checkpoints are CFG-distilled (guidance is off-design), "
             "it runs one sample per model call, and it has no documented in-place clean-audio mode for the "
             "driven passes; use its own nodes with CFGGuider")


def check_model(model_patcher: object) -> None:
    """Raise with the supported and refused model types unless MODEL is ComfyUI's LTXAV."""
    base = getattr(model_patcher, "model", None)
    h3 = getattr(comfy.model_base, "MiniMaxH3", None)
    if h3 is not None and isinstance(base, h3):
        raise ValueError(f"model: {H3_REASON}.")
    if not isinstance(base, comfy.model_base.LTXAV):
        raise ValueError(
            f"model: HarmonySyncCFGGuider works with {SUPPORTED}; got {type(base).__name__}. Not supported: "
            "video-only LTXV (no audio stream), MiniMax H3 (CFG-distilled), Harmony's own MODEL (use "
            "HarmonySampler) and every image or video-only model (use CFGGuider).")


@dataclass(frozen=True, eq=False)
class AnchorSources:
    """What the anchors are encoded from: the LTX-2 audio VAE (mute audio), the video VAE and an optional
    picture (static video; without one, frame 0 of the clip is used)."""

    audio_vae: object | None = None
    vae: object | None = None
    image: torch.Tensor | None = None  # IMAGE [N, H, W, C]


@dataclass(frozen=True)
class Layout:
    """The joint latent of one sampling run: stream shapes, which streams are generated, the guide frames."""

    video: tuple[int, ...]  # [B, Cv, T, h, w], T counting appended guide frames (LTXVAddGuide)
    audio: tuple[int, ...]  # [B, Ca, Ta, F]
    generates_video: bool
    generates_audio: bool
    frame0_clean: bool  # video frame 0 is kept as given (image-to-video in place, video-driven)
    target_frames: int  # latent frames before the guide frames: the ones a static anchor replaces

    @property
    def n_video(self) -> int:
        return math.prod(self.video[1:])

    def split(self, packed: torch.Tensor) -> AV:
        """Packed [B, 1, Nv + Na] -> AV(video [B, 1, Nv], audio [B, 1, Na]) (views)."""
        return AV(packed[..., :self.n_video], packed[..., self.n_video:])


@dataclass(eq=False)
class _Run:
    """State of one `sample()` call: the layout and the anchors (raw, then in the model's latent space)."""

    layout: Layout
    mute: torch.Tensor | None = None  # raw [1, Ca, Ta, F]
    static: torch.Tensor | None = None  # raw [B|1, Cv, target_frames, h, w]
    ready: dict = field(default_factory=dict)  # pass name -> processed anchor slice [B|1, 1, N] on the device
    warned: bool = False


def read_layout(latent: torch.Tensor, denoise_mask: torch.Tensor | None, positive: list) -> Layout:
    """The Layout of a joint latent and its noise mask; errors for a latent the guider cannot sample."""
    streams = latent.unbind() if getattr(latent, "is_nested", False) else [latent]
    if len(streams) != 2 or streams[0].ndim != 5 or streams[1].ndim != 4:
        raise ValueError("latent_image: HarmonySyncCFGGuider samples LTX-2's joint audio+video latent; merge the "
                         "video and audio latents with LTXVConcatAVLatent (got "
                         f"{[tuple(s.shape) for s in streams]})")
    video, audio = (tuple(s.shape) for s in streams)
    masks = [None, None]
    if denoise_mask is not None:
        parts = denoise_mask.unbind() if getattr(denoise_mask, "is_nested", False) else [denoise_mask]
        masks[:len(parts[:2])] = parts[:2]
    video_mask = None if masks[0] is None else comfy.utils.reshape_mask(masks[0], video)  # [B, Cv, T, h, w]
    guides = 0
    for entry in positive or []:
        keyframes = entry.get("keyframe_idxs")
        if keyframes is not None:
            guides = keyframes.shape[2] // (video[3] * video[4])  # appended guide tokens -> latent frames
            break
    return Layout(video=video, audio=audio,
                  generates_video=video_mask is None or bool(video_mask.any()),
                  generates_audio=masks[1] is None or bool(masks[1].any()),
                  frame0_clean=video_mask is not None and not bool(video_mask[:, :, :1].any()),
                  target_frames=video[2] - guides)


def step_fraction(sigma: torch.Tensor, model_options: dict) -> float:
    """k / n for the step k of the n-step schedule this sampler runs (CFGGuider stores it as sample_sigmas);
    a model call between two schedule sigmas (2nd-order samplers) belongs to the step it starts from."""
    schedule = model_options.get("transformer_options", {}).get("sample_sigmas")
    if schedule is None or schedule.numel() < 2:
        return 0.0
    steps = schedule.numel() - 1
    s = float(sigma.reshape(-1)[0])
    above = int((schedule[:-1].float() >= s - 1e-5 * max(1.0, abs(s))).sum())
    return min(max(above - 1, 0), steps - 1) / steps


def _driven_conds(positive: list, name: str, layout: Layout, device: torch.device) -> list:
    """Copies of the positive conds whose denoise mask freezes the anchored stream (t = 0 on its tokens)."""
    out = []
    for entry in positive:
        conds = dict(entry["model_conds"])
        if name == AUDIO_DRIVEN:
            old = conds.get("audio_denoise_mask")
            mask = torch.zeros((1, *layout.audio[1:]), device=device) if old is None else torch.zeros_like(old.cond)
            conds["audio_denoise_mask"] = comfy.conds.CONDRegular(mask)  # [B|1, Ca, Ta, F]
        else:
            old = conds.get("denoise_mask")
            mask = torch.ones((1, 1, *layout.video[2:]), device=device) if old is None else old.cond.clone()
            head = mask[:, :, :layout.target_frames]
            mask[:, :, :layout.target_frames] = torch.where(head < 0, head, torch.zeros_like(head))  # guides kept
            conds["denoise_mask"] = comfy.conds.CONDRegular(mask)  # [B|1, 1|Cv, T, h, w]
        out.append({**entry, "model_conds": conds})
    return out


class SyncCFGGuider(comfy.samplers.CFGGuider):
    """CFGGuider with SyncCFG's driven passes on an LTXAV joint latent (see the module docstring)."""

    def __init__(self, model_patcher: object, guidance: Guidance, sources: AnchorSources) -> None:
        super().__init__(model_patcher)
        self.guidance = guidance
        self.sources = sources
        self.set_cfg(guidance.text.video_scale)  # ComfyUI's text CFG: U + cfg (J - U)
        self._run: _Run | None = None

    def sample(self, noise: torch.Tensor, latent_image: torch.Tensor, sampler: object, sigmas: torch.Tensor,
               denoise_mask: torch.Tensor | None = None, callback: object = None, disable_pbar: bool = False,
               seed: int | None = None) -> torch.Tensor:
        layout = read_layout(latent_image, denoise_mask, self.original_conds.get("positive"))
        steps = max(sigmas.shape[-1] - 1, 0)
        plan = [self.guidance.passes(k / steps, layout.generates_video, layout.generates_audio)
                for k in range(steps)]
        self._run = self._prepare(layout, latent_image, {p for step in plan for p in step})
        calls = sorted({1 + sum(p in DRIVEN for p in step) for step in plan})
        log.info("HarmonySyncCFGGuider: %s, model calls per step %s (+1 per post-CFG patch such as LTXV "
                 "Modality Guidance or STG)", ", ".join("+".join(s) for s in dict.fromkeys(plan)) or "no step",
                 "/".join(map(str, calls)) or "0")
        try:
            return super().sample(noise, latent_image, sampler, sigmas, denoise_mask, callback, disable_pbar, seed)
        finally:
            self._run = None

    def _prepare(self, layout: Layout, latent: torch.Tensor, needed: set) -> _Run:
        """The run's raw anchors, encoded now where possible (before the model is loaded)."""
        run = _Run(layout)
        src = self.sources
        if AUDIO_DRIVEN in needed:
            if src.audio_vae is None:
                raise ValueError("audio_vae: video_scale != 1 needs the mute-audio anchor, encoded with the LTX-2 "
                                 "audio VAE; connect it (LTXVAudioVAELoader) or set video_scale to 1")
            run.mute = ltx_anchors.mute_audio(src.audio_vae, layout.audio[1:])
        if VIDEO_DRIVEN in needed:
            if src.vae is None:
                raise ValueError("vae: audio_scale != 1 needs the static-video anchor, encoded with the LTX-2 video "
                                 "VAE; connect it (and optionally image) or set audio_scale to 1")
            shape = (layout.video[1], layout.target_frames, *layout.video[3:])
            if src.image is not None:
                run.static = ltx_anchors.static_video(src.vae, src.image, shape)
            elif layout.frame0_clean:  # frame 0 is given (image-to-video, video-driven): hold it
                frames = ltx_anchors.frame0_images(src.vae, latent.unbind()[0])
                run.static = torch.cat([ltx_anchors.static_video(src.vae, f[None], shape) for f in frames])
        return run

    def predict_noise(self, x: torch.Tensor, timestep: torch.Tensor, model_options: dict | None = None,
                      seed: int | None = None) -> torch.Tensor:
        model_options = {} if model_options is None else model_options
        run = self._run
        passes = () if run is None else self.guidance.passes(
            step_fraction(timestep, model_options), run.layout.generates_video, run.layout.generates_audio)
        if not any(p in DRIVEN for p in passes):
            return super().predict_noise(x, timestep, model_options, seed)
        if "sampler_cfg_function" in model_options and not run.warned:
            run.warned = True
            log.warning("HarmonySyncCFGGuider: the model's sampler_cfg_function patch is not applied inside the "
                        "SyncCFG range (SyncCFG replaces the CFG formula there)")

        def guided(args: dict) -> torch.Tensor:  # ComfyUI's cfg_function: returns x - denoised
            return args["input"] - self._guided(args, passes)

        return super().predict_noise(x, timestep, {**model_options, "sampler_cfg_function": guided}, seed)

    def _guided(self, args: dict, passes: tuple[str, ...]) -> torch.Tensor:
        """The SyncCFG (+ text CFG) x0, packed [B, 1, N], from the joint outputs ComfyUI computed."""
        layout = self._run.layout
        outputs = {JOINT: layout.split(args["cond_denoised"])}
        if UNCOND in passes:
            outputs[UNCOND] = layout.split(args["uncond_denoised"])
        for name in DRIVEN:
            if name in passes:
                outputs[name] = layout.split(self._driven(name, args))
        guided = combine(outputs, self.guidance)
        return torch.cat((guided.video, guided.audio), dim=-1)

    def _driven(self, name: str, args: dict) -> torch.Tensor:
        """One driven pass, its own model call: the anchored x with the anchored stream's mask at 0."""
        x, layout = args["input"], self._run.layout
        anchor = self._anchor(name, args)
        video, audio = layout.split(x)
        if name == AUDIO_DRIVEN:
            audio = anchor.expand_as(audio)
        else:
            frames = video.reshape(x.shape[0], *layout.video[1:]).clone()  # [B, Cv, T, h, w]
            target = layout.target_frames
            frames[:, :, :target] = anchor.reshape(-1, *layout.video[1:])[:, :, :target]
            video = frames.reshape(video.shape)
        conds = _driven_conds(self.conds["positive"], name, layout, x.device)
        (out,) = comfy.samplers.calc_cond_batch(self.inner_model, [conds], torch.cat((video, audio), dim=-1),
                                                args["sigma"], args["model_options"])
        return out

    def _anchor(self, name: str, args: dict) -> torch.Tensor:
        """The pass's anchor in the model's latent space, as a slice of the packed latent [B|1, 1, N]."""
        run = self._run
        if name not in run.ready:
            layout = run.layout
            if name == VIDEO_DRIVEN and run.static is None:  # text-to-video: frame 0 of the current estimate
                estimate = self.inner_model.process_latent_out(args["cond_denoised"])
                video = layout.split(estimate).video.reshape(-1, *layout.video[1:])
                frames = ltx_anchors.frame0_images(self.sources.vae, video)
                shape = (layout.video[1], layout.target_frames, *layout.video[3:])
                run.static = torch.cat([ltx_anchors.static_video(self.sources.vae, f[None], shape) for f in frames])
            run.ready[name] = self._to_model_space(name, args["input"])
        return run.ready[name]

    def _to_model_space(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """A raw anchor placed in a packed latent (zeros elsewhere), through process_latent_in, then sliced."""
        run, layout = self._run, self._run.layout
        if name == AUDIO_DRIVEN:
            video = torch.zeros((1, *layout.video[1:]))
            audio = run.mute
        else:
            video = torch.zeros((run.static.shape[0], *layout.video[1:]))
            video[:, :, :layout.target_frames] = run.static
            audio = torch.zeros((run.static.shape[0], *layout.audio[1:]))
        packed, _ = comfy.utils.pack_latents([video, audio.expand(video.shape[0], -1, -1, -1)])  # [B|1, 1, N]
        packed = self.inner_model.process_latent_in(packed.to(x.device, torch.float32)).to(x.dtype)
        part = layout.split(packed)
        return part.audio if name == AUDIO_DRIVEN else part.video
