"""One generation, end to end: conditioning -> SyncCFG sampling -> decoding. Used by the CLI and the nodes.

Mode is data (`Request.mode`): "joint" (text -> audio + video), "audio_driven" (a clean audio track, only
video is generated), "video_driven" (clean frames, only audio is generated). SyncCFG anchors (our choice,
the paper leaves it open): mute audio = the audio codec's encoding of silence; static video = the
reference image held for the whole clip (in video-driven mode the driving clip's first frame; with
neither, a mid-grey frame).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from fractions import Fraction

import torch

from . import families, timeline
from .budget import FLOAT32, SAMPLER_LATENT_COPIES, SAMPLING_SLACK, MemoryPlan, decode_bytes, pixel_bytes
from .codecs.base import AudioCodec, VideoCodec
from .config import HarmonyConfig
from .model.conditioning import Conditioning, HarmonyDenoiser
from .model.harmony import HarmonyModel
from .model.memory import forward_bytes, kit_bytes
from .model.transcript import encode_transcripts
from .request import MODES, Captions, Media, Request, Sampling, resolve_defaults
from .sampling import (
    AUDIO_DRIVEN,
    SCHEDULES,
    UNCOND,
    VIDEO_DRIVEN,
    Callback,
    Guidance,
    ModeSpec,
    SyncAnchors,
    audio_driven,
    joint,
    plan_passes,
    sample,
    sigmas_for,
    video_driven,
)
from .sampling.noise import with_frame_common
from .threads import thread_budget

__all__ = ["MAX_SECONDS", "MODES", "Captions", "HarmonyPipeline", "Layout", "Media", "Request", "Result", "Sampling",
           "size_grid"]

log = logging.getLogger(__name__)

MAX_SECONDS = timeline.MAX_SECONDS


@dataclass(frozen=True)
class Result:
    frames: torch.Tensor          # [B, F, H, W, 3] float in [0, 1]
    wave: torch.Tensor            # [B, L] float in [-1, 1], exactly the video's duration
    fps: Fraction
    sample_rate: int
    video_latent: torch.Tensor    # [B, Cv, Tv, h, w]
    audio_latent: torch.Tensor    # [B, Ca, Ta]
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Layout:
    num_frames: int
    height: int
    width: int
    fps: Fraction
    video_frames: int   # latent frames Tv
    audio_frames: int   # audio latents Ta


class HarmonyPipeline:
    def __init__(self, model: HarmonyModel, video_codec: VideoCodec, audio_codec: AudioCodec,
                 device: str | torch.device = "cpu") -> None:
        self.model, self.video_codec, self.audio_codec = model, video_codec, audio_codec
        self.device = torch.device(device)
        cfg = model.cfg
        if video_codec.latent_channels != cfg.video.in_dim or audio_codec.latent_channels != cfg.audio.in_dim:
            raise ValueError(
                f"codecs do not fit the model: video codec {video_codec.latent_channels} channels vs model "
                f"{cfg.video.in_dim}, audio codec {audio_codec.latent_channels} vs model {cfg.audio.in_dim}")

    # -- request resolution ------------------------------------------------------------------------
    def resolve(self, req: Request) -> Request:
        """Fill defaults from the checkpoint and validate everything before any heavy work."""
        req = resolve_defaults(req, self.model.cfg.defaults)
        if req.mode not in MODES:
            raise ValueError(f"mode {req.mode!r} is not one of {MODES}")
        if req.mode == "audio_driven" and not req.media.has_audio:
            raise ValueError("mode 'audio_driven' needs a driving audio track (connect audio / pass --audio)")
        if req.mode == "video_driven" and not req.media.has_video:
            raise ValueError("mode 'video_driven' needs driving video frames (connect video / pass --video)")
        if req.mode == "video_driven":
            req = replace(req, **self._driving_video_size(req.media))
        if families.is_uniavgen(self.model.cfg):
            families.check_request(req, self.model.cfg)
        if req.sampling.schedule not in SCHEDULES:
            raise ValueError(f"schedule {req.sampling.schedule!r} is not one of {SCHEDULES}")
        req = replace(req, guidance=families.resolve_guidance(req.guidance, req, self.model.cfg))
        if not 1 <= req.batch <= 16:
            raise ValueError(f"batch {req.batch} outside 1..16")
        if req.steps < 1:
            raise ValueError(f"steps must be >= 1, got {req.steps}")
        self.layout(req)
        return req

    def _driving_video_size(self, media: Media) -> dict[str, int]:
        if media.video_latent is not None:
            tv, h, w = media.video_latent.shape[2:]
            s = self.video_codec.spatial_stride
            return {"num_frames": timeline.pixel_frames_for(tv, self.video_codec.temporal_stride),
                    "height": h * s, "width": w * s}
        return {"num_frames": int(media.video.shape[1]), "height": int(media.video.shape[2]),
                "width": int(media.video.shape[3])}

    @property
    def grid(self) -> int:
        """Output width and height must be multiples of this (see `size_grid`)."""
        return size_grid(self.model.cfg, self.video_codec)

    def layout(self, req: Request) -> Layout:
        cfg, vc = self.model.cfg, self.video_codec
        fps = timeline.as_rate(req.fps, "fps")
        check_clip_size(req.width, req.height, req.num_frames, fps, self.grid, vc.temporal_stride)
        tv = timeline.latent_frames_for(req.num_frames, vc.temporal_stride)
        if tv > cfg.video.rope_max_len:
            raise ValueError(f"frames: {req.num_frames} frames need {tv} latent frames; this model has RoPE "
                             f"positions for {cfg.video.rope_max_len}")
        rate = timeline.audio_latent_rate(self.audio_codec.sample_rate, self.audio_codec.samples_per_latent)
        ta = families.audio_frames(cfg, req.num_frames, fps, rate)
        return Layout(req.num_frames, req.height, req.width, fps, tv, ta)

    # -- conditioning --------------------------------------------------------------------------------
    def _contexts(self, req: Request, negative: bool) -> tuple[torch.Tensor, torch.Tensor]:
        given = req.captions.pair(negative)
        if given[0] is not None and given[1] is not None:
            return tuple(t.to(self.device).float().expand(req.batch, -1, -1) for t in given)
        enc = self.model.text_encoder
        if enc is None:
            raise ValueError("this model has no text encoder of its own: provide caption embeddings "
                             "(in ComfyUI: CLIPLoader type 'wan' + CLIPTextEncode)")
        video_text = req.negative_prompt if negative else req.prompt
        audio_text = req.negative_prompt if negative else (req.prompt if req.audio_prompt is None else req.audio_prompt)
        with torch.no_grad():
            ctx = enc.encode([video_text, audio_text]).float()                    # [2, L, D]
        return ctx[:1].expand(req.batch, -1, -1), ctx[1:].expand(req.batch, -1, -1)

    def conditioning(self, req: Request, negative: bool = False, ref_image: torch.Tensor | None = None,
                     ) -> Conditioning:
        """The model's conditioning rows for `req` (B = req.batch); `ref_image` [1, Cv, 1, h, w] is the reference
        latent a UniAVGen model prepends to the video."""
        if families.is_uniavgen(self.model.cfg):
            return self._uniavgen_conditioning(req, negative, ref_image)
        video_ctx, audio_ctx = self._contexts(req, negative)
        words = encode_transcripts(["" if negative else req.transcript] * req.batch).to(self.device)
        media = req.media
        ref = None if media.ref_audio_latent is None else media.ref_audio_latent.to(self.device).expand(req.batch, -1, -1)
        if ref is None and media.ref_audio is not None:
            wave = _pad_to_latents(media.ref_audio.float().reshape(1, -1), self.audio_codec.samples_per_latent)
            with torch.no_grad():
                ref = self.audio_codec.encode(wave.to(self.device)).expand(req.batch, -1, -1)
        return Conditioning(video_ctx, audio_ctx, words, ref)

    def _uniavgen_conditioning(self, req: Request, negative: bool, ref_image: torch.Tensor | None) -> Conditioning:
        """umT5 caption (no audio caption), UniAVGen transcript ids, reference voice + silence, reference frame."""
        video_ctx = req.captions.pair(negative)[0]
        if video_ctx is None:
            raise ValueError(f"{'negative' if negative else 'positive'}: UniAVGen reads umT5 caption embeddings "
                             "(in ComfyUI: CLIPLoader type 'wan' + CLIPTextEncode; its guidance also needs the "
                             "negative, an empty prompt)")
        if ref_image is None:
            raise ValueError("a UniAVGen model needs the reference image latent (the pipeline builds it)")
        ids = families.transcripts(req, negative)
        voice = families.reference_voice(req.media, self.audio_codec, self.device)
        b = req.batch
        return Conditioning(video_ctx.to(self.device).float().expand(b, -1, -1), None, ids.ids.to(self.device),
                            None if voice is None else voice.expand(b, -1, -1),
                            ref_image.to(self.device).expand(b, -1, -1, -1, -1), ids.lens.to(self.device))

    # -- generation ----------------------------------------------------------------------------------
    def generate(self, req: Request, callback: Callback | None = None) -> Result:
        """Sample and decode: frames + a waveform of exactly the video's duration."""
        video, audio, lay, notes = self.sample(req, callback)
        return self.decode(video, audio, lay, notes)

    def sample(self, req: Request, callback: Callback | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, Layout, list[str]]:
        """Latents only: video [B, Cv, Tv, h, w], audio [B, Ca, Ta], the layout, and logged notes."""
        with thread_budget(self.model):  # small models: one CPU thread (threads.py)
            req = self.resolve(req)
            lay = self.layout(req)
            notes: list[str] = []
            with torch.no_grad():
                mode, static_image, ref_latent = self._mode(req, lay, notes)
                guidance = req.guidance
                passes = {p for step in plan_passes(guidance, mode, req.steps) for p in step}
                if passes & {AUDIO_DRIVEN, VIDEO_DRIVEN}:
                    guidance = replace(guidance, anchors=self._anchors(lay, static_image))
                positive = self.conditioning(req, ref_image=ref_latent)
                negative = self.conditioning(req, True, ref_latent) if UNCOND in passes else None
                denoiser = HarmonyDenoiser(self.model, positive, negative)
                noise_v, noise_a = self.initial_noise(req, lay)
                s = req.sampling
                video, audio = sample(denoiser, noise_v, noise_a, mode, guidance,
                                      sigmas_for(s.schedule, s.steps, s.shift), solver=s.solver, callback=callback)
            return video, audio, lay, notes

    def memory_required(self, req: Request, element_size: int) -> int:
        """Activation bytes of the widest sampling step (every guidance pass of every take in one forward)
        with weights of `element_size` bytes; for schedulers that free memory before sampling."""
        req = self.resolve(req)
        lay = self.layout(req)
        guidance = req.guidance
        gen_v, gen_a = req.mode != "audio_driven", req.mode != "video_driven"
        passes = max(_rows_per_call(guidance, req.mode, k, req.steps, gen_v, gen_a) for k in range(req.steps))
        s, (_, ph, pw) = self.video_codec.spatial_stride, self.model.cfg.video.patch_size
        frames = lay.video_frames + (1 if families.is_uniavgen(self.model.cfg) else 0)   # + the reference frame
        video_tokens = frames * (lay.height // s // ph) * (lay.width // s // pw)
        ref, media = 0, req.media
        if media.ref_audio_latent is not None:
            ref = media.ref_audio_latent.shape[-1]
        elif media.ref_audio is not None:
            ref = timeline.audio_latents_for_samples(media.ref_audio.numel(), self.audio_codec.samples_per_latent)
        return (forward_bytes(self.model.cfg, passes * req.batch, video_tokens, lay.audio_frames + ref,
                              element_size) + kit_bytes(self.model, element_size))

    def memory_plan(self, req: Request, element_size: int) -> MemoryPlan:
        """Bytes of the sampling and decoding peaks of `req` (budget.py), from shapes only: the activations of
        the widest step, the sampler's latent copies, the static-video anchor's encode (a short held clip for
        codecs with `static_settle`, else the whole clip), and the decode's full-size pixel buffers."""
        req = self.resolve(req)
        lay = self.layout(req)
        vc, s = self.video_codec, self.video_codec.spatial_stride
        cells = lay.video_frames * (lay.height // s) * (lay.width // s)
        latents = FLOAT32 * req.batch * (vc.latent_channels * cells
                                         + self.audio_codec.latent_channels * lay.audio_frames)
        anchor = 2 * pixel_bytes(1, vc.static_frames_in_memory(lay.num_frames), lay.height, lay.width)
        sampling = (self.memory_required(req, element_size) + SAMPLER_LATENT_COPIES * latents + anchor
                    + SAMPLING_SLACK)
        decode = decode_bytes(vc, req.batch, lay.num_frames, lay.height, lay.width)
        size = f"{lay.width}x{lay.height}, {lay.num_frames} frames, {req.batch} take(s)"
        return MemoryPlan(size, int(sampling), int(decode))

    def decode(self, video: torch.Tensor, audio: torch.Tensor, lay: Layout, notes: list[str] | None = None) -> Result:
        """Latents -> frames [B, F, H, W, 3] in [0, 1] and wave [B, L] trimmed/padded to the video's duration."""
        with thread_budget(self.model, self.video_codec, self.audio_codec):  # small: one CPU thread
            notes = list(notes or [])
            with torch.no_grad():
                frames = self.video_codec.decode(video.to(self.device))          # [B, 3, F, H, W]
                wave = self.audio_codec.decode(audio.to(self.device))            # [B, Ta * spl]
            wave, note = timeline.fit_audio_to_video(wave, self.audio_codec.sample_rate, lay.num_frames,
                                                     lay.fps)
            notes.append(note)
            frames = frames.float().clamp_(-1, 1).add_(1).mul_(0.5)  # in place: one pixel buffer, not three
            frames = frames.permute(0, 2, 3, 4, 1).contiguous()  # [B, F, H, W, 3]
            return Result(frames.cpu(), wave.float().clamp(-1, 1).cpu(), lay.fps,
                          self.audio_codec.sample_rate, video.cpu(), audio.cpu(), tuple(notes))

    def layout_of(self, video: torch.Tensor, fps: str | Fraction) -> Layout:
        """The layout of existing latents (e.g. a LATENT from another node): video [B, Cv, Tv, h, w]. Only the
        sizes are checked: no request is resolved (a UniAVGen model would ask for its reference image again)."""
        tv, h, w = video.shape[2:]
        s = self.video_codec.spatial_stride
        frames = timeline.pixel_frames_for(tv, self.video_codec.temporal_stride)
        return self.layout(Request(num_frames=frames, height=h * s, width=w * s, fps=str(fps)))

    def _mode(self, req: Request, lay: Layout, notes: list[str],
              ) -> tuple[ModeSpec, torch.Tensor | None, torch.Tensor | None]:
        """The sampling mode (held frames and their clean latents), the image the static anchor holds, and the
        reference image latent [1, Cv, 1, h, w] (None without one)."""
        m, uniavgen = req.media, families.is_uniavgen(self.model.cfg)
        ref_latent = None if m.image_latent is None else m.image_latent.to(self.device)
        if ref_latent is None and m.image is not None:
            image = _check_image(m.image, lay)
            ref_latent = self.video_codec.encode(image[None, :, None].to(self.device))    # [1, Cv, 1, h, w]
        if req.mode == "joint":
            return joint(lay.video_frames, lay.audio_frames, ref_latent), m.image, ref_latent
        if req.mode == "audio_driven":
            latent = self._driving_audio(req, lay, notes)
            tail = lay.audio_frames if uniavgen else None   # UniAVGen generates past a shorter driving track
            return audio_driven(latent, lay.video_frames, ref_latent, tail), m.image, ref_latent
        if m.video_latent is not None:
            latent, first = m.video_latent.to(self.device), m.image
        else:
            frames = m.video.float().to(self.device)
            latent = self.video_codec.encode(frames[None])                                # [1, Cv, Tv, h, w]
            first = frames[:, 0] if m.image is None else m.image
        if uniavgen and ref_latent is None:   # UniAVGen's V2A reference: the driving clip's first frame (causal VAE)
            ref_latent = latent[:, :, :1]
        return video_driven(latent, lay.audio_frames), first, ref_latent

    def _driving_audio(self, req: Request, lay: Layout, notes: list[str]) -> torch.Tensor:
        """The clean driving audio latent [1, Ca, T]: fitted to the clip (Harmony), or as long as it is and never
        longer than the clip (UniAVGen: its tail is generated)."""
        m, codec, spl = req.media, self.audio_codec, self.audio_codec.samples_per_latent
        if families.is_uniavgen(self.model.cfg):
            if m.audio_latent is not None:
                latent = m.audio_latent.to(self.device)
                families.check_driving_audio(latent.shape[-1] * spl, codec.sample_rate, lay.audio_frames, spl)
                return latent
            wave = m.audio.float().reshape(1, -1)
            families.check_driving_audio(wave.shape[-1], codec.sample_rate, lay.audio_frames, spl)
            return codec.encode(_pad_to_latents(wave, spl).to(self.device))[..., : lay.audio_frames]
        if m.audio_latent is not None:
            return _fit_latent(m.audio_latent.to(self.device), lay.audio_frames, codec, notes)
        wave, note = timeline.fit_audio_to_video(m.audio.float().reshape(1, -1), codec.sample_rate,
                                                 lay.num_frames, lay.fps)
        notes.append(note)
        latent = codec.encode(_pad_to_latents(wave, spl, lay.audio_frames).to(self.device))
        return latent[..., : lay.audio_frames]

    def _anchors(self, lay: Layout, static_image: torch.Tensor | None) -> SyncAnchors:
        image = None if static_image is None else static_image.float()[None].to(self.device)
        return SyncAnchors(mute_audio=self.audio_codec.silence_latent(lay.audio_frames),
                           static_video=self.video_codec.static_latent(image, lay.num_frames, lay.height, lay.width))

    def initial_noise(self, req: Request, lay: Layout) -> tuple[torch.Tensor, torch.Tensor]:
        """The starting noise of `req` (resolved): video [B, Cv, Tv, h, w] then audio [B, Ca, Ta] from one
        generator seeded with the request's seed; the video mixed with a frame-common part when the model
        was trained so (`cfg.frame_noise_share`, sampling/noise.py)."""
        g = torch.Generator().manual_seed(req.sampling.seed)
        s = self.video_codec.spatial_stride
        video = torch.randn(req.batch, self.video_codec.latent_channels, lay.video_frames, lay.height // s,
                            lay.width // s, generator=g)
        if families.is_uniavgen(self.model.cfg):   # drawn time-major as the reference (same seed, same noise)
            audio = torch.randn(req.batch, lay.audio_frames, self.audio_codec.latent_channels, generator=g)
            audio = audio.transpose(1, 2).contiguous()                                   # [B, Ca, Ta]
        else:
            audio = torch.randn(req.batch, self.audio_codec.latent_channels, lay.audio_frames, generator=g)
        video = with_frame_common(video, self.model.cfg.frame_noise_share, g)   # drawn after the audio
        return video.to(self.device), audio.to(self.device)


def _rows_per_call(guidance: Guidance, mode: str, step: int, steps: int, gen_v: bool, gen_a: bool) -> int:
    """Passes per item in the widest model call of one step: SyncCFG batches all its passes in one call;
    MA-CFG's cond and uncond share a call only when their flags agree (the sampler groups by flags)."""
    passes = guidance.passes(step / steps, gen_v, gen_a)
    if guidance.macfg is None or len(passes) == 1:
        return len(passes)
    cond, uncond = guidance.macfg.flags(mode, step, steps)
    return 2 if cond == uncond else 1


def check_grid(value: int, grid: int, name: str) -> None:
    """Sizes must be positive multiples of the codec/patch grid; the error names the knob and suggests the
    nearest accepted value."""
    if value <= 0 or value % grid:
        near = max(grid, round(value / grid) * grid)
        raise ValueError(f"{name}: {value} is not a multiple of {grid} (video codec stride x patch size); "
                         f"use e.g. {near}")


def check_clip_size(width: int, height: int, frames: int, fps: Fraction, grid: int, stride: int) -> None:
    """The one size check of a clip (pipeline, CLI, nodes): grid, stride*k+1 frames, at most MAX_SECONDS.
    Errors name the knob (`width`, `height`, `frames`) and say what would be accepted."""
    check_grid(width, grid, "width")
    check_grid(height, grid, "height")
    if frames < 1 or (frames - 1) % stride:
        near = max(1, round((frames - 1) / stride)) * stride + 1
        raise ValueError(f"frames: {frames} is not {stride}*k+1 (the video codec's frame grouping); use e.g. {near}")
    if timeline.frames_duration(frames, fps) > MAX_SECONDS:
        raise ValueError(f"frames: {frames} frames at {fps} fps last more than {MAX_SECONDS:.0f} s; at most "
                         f"{timeline.max_causal_frames(MAX_SECONDS, fps, stride)} frames at this fps")


def size_grid(cfg: HarmonyConfig, video_codec: VideoCodec) -> int:
    """Pixels a width or height must be a multiple of: the codec's spatial stride x the patch size."""
    return video_codec.spatial_stride * cfg.video.patch_size[1]


def _pad_to_latents(wave: torch.Tensor, samples_per_latent: int, latents: int | None = None) -> torch.Tensor:
    """[B, L] -> [B, n * samples_per_latent] zero-padded (n = `latents` or enough to cover L)."""
    n = latents if latents is not None else -(-wave.shape[-1] // samples_per_latent)
    target = max(n, 1) * samples_per_latent
    return torch.nn.functional.pad(wave, (0, target - wave.shape[-1]))[..., :target]


def _fit_latent(latent: torch.Tensor, frames: int, codec: AudioCodec, notes: list[str]) -> torch.Tensor:
    """Clean audio latent [1, Ca, T'] -> exactly `frames` latents: trimmed, or padded with the silence latent."""
    have = latent.shape[-1]
    if have == frames:
        return latent
    if have > frames:
        note = f"driving audio latent trimmed from {have} to {frames} latents to match the video"
        latent = latent[..., :frames]
    else:
        note = f"driving audio latent padded with silence from {have} to {frames} latents to match the video"
        latent = torch.cat([latent, codec.silence_latent(frames - have).to(latent)], dim=-1)
    log.warning(note)
    notes.append(note)
    return latent


def _check_image(image: torch.Tensor, lay: Layout) -> torch.Tensor:
    if image.ndim != 3 or image.shape[0] != 3 or tuple(image.shape[1:]) != (lay.height, lay.width):
        raise ValueError(f"reference image must be [3, {lay.height}, {lay.width}] in [-1, 1], "
                         f"got {tuple(image.shape)}; resize or crop it to the output size")
    return image.float()
