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

from . import timeline
from .budget import FLOAT32, SAMPLER_LATENT_COPIES, SAMPLING_SLACK, MemoryPlan, decode_bytes, pixel_bytes
from .codecs.base import AudioCodec, VideoCodec
from .config import HarmonyConfig
from .model.conditioning import Conditioning, HarmonyDenoiser
from .model.harmony import HarmonyModel
from .model.memory import forward_bytes
from .model.transcript import encode_transcripts
from .sampling import (
    AUDIO_DRIVEN,
    UNCOND,
    VIDEO_DRIVEN,
    Callback,
    Guidance,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    audio_driven,
    flow_sigmas,
    joint,
    plan_passes,
    sample,
    video_driven,
)
from .threads import thread_budget

log = logging.getLogger(__name__)

MODES = ("joint", "audio_driven", "video_driven")
MAX_SECONDS = timeline.MAX_SECONDS


@dataclass(frozen=True)
class Request:
    """What to generate. None means "the checkpoint's default" (HarmonyConfig.defaults).

    image [3, H, W] in [-1, 1] (reference / first frame); audio [L] mono at the audio codec's rate
    (audio_driven); video [3, F, H, W] in [-1, 1] (video_driven); ref_audio [L] (voice reference).
    Each may instead be given already encoded (*_latent fields); a latent wins over raw media.
    video_context / audio_context: precomputed caption embeddings [1 or B, L, D] (e.g. umT5 from ComfyUI)
    for models without their own text encoder; negative_* likewise for text CFG.
    """

    prompt: str = ""
    audio_prompt: str | None = None
    transcript: str = ""
    negative_prompt: str = ""
    mode: str = "joint"
    num_frames: int | None = None
    width: int | None = None
    height: int | None = None
    fps: str | None = None
    steps: int | None = None
    shift: float | None = None
    solver: str | None = None
    sync_video: float | None = None
    sync_audio: float | None = None
    sync_start: float = 0.0
    sync_end: float = 1.0
    text_video: float | None = None
    text_audio: float | None = None
    seed: int = 0
    batch: int = 1
    image: torch.Tensor | None = None
    audio: torch.Tensor | None = None
    video: torch.Tensor | None = None
    ref_audio: torch.Tensor | None = None
    image_latent: torch.Tensor | None = None      # clean latents instead of raw media (e.g. from a node)
    audio_latent: torch.Tensor | None = None      # [1, Ca, Ta'] driving audio (audio_driven)
    video_latent: torch.Tensor | None = None      # [1, Cv, Tv, h, w] driving video (video_driven)
    ref_audio_latent: torch.Tensor | None = None  # [1, Ca, Tr]
    video_context: torch.Tensor | None = None
    audio_context: torch.Tensor | None = None
    negative_video_context: torch.Tensor | None = None
    negative_audio_context: torch.Tensor | None = None


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
        d = self.model.cfg.defaults
        defaults = {k: getattr(d, k) for k in ("num_frames", "width", "height", "fps", "steps", "shift",
                                               "solver", "sync_video", "sync_audio", "text_video",
                                               "text_audio")}
        if req.mode == "audio_driven" and d.driven_sync_video is not None:
            defaults["sync_video"] = d.driven_sync_video    # the only scale that mode uses
        if req.mode == "video_driven" and d.driven_sync_audio is not None:
            defaults["sync_audio"] = d.driven_sync_audio
        req = replace(req, **{k: v for k, v in defaults.items() if getattr(req, k) is None})
        if req.mode not in MODES:
            raise ValueError(f"mode {req.mode!r} is not one of {MODES}")
        if req.mode == "audio_driven" and req.audio is None and req.audio_latent is None:
            raise ValueError("mode 'audio_driven' needs a driving audio track (connect audio / pass --audio)")
        if req.mode == "video_driven" and req.video is None and req.video_latent is None:
            raise ValueError("mode 'video_driven' needs driving video frames (connect video / pass --video)")
        if req.mode == "video_driven":
            req = replace(req, **self._driving_video_size(req))
        if not 1 <= req.batch <= 16:
            raise ValueError(f"batch {req.batch} outside 1..16")
        if req.steps < 1:
            raise ValueError(f"steps must be >= 1, got {req.steps}")
        self.layout(req)
        return req

    def _driving_video_size(self, req: Request) -> dict[str, int]:
        if req.video_latent is not None:
            tv, h, w = req.video_latent.shape[2:]
            s = self.video_codec.spatial_stride
            return {"num_frames": timeline.pixel_frames_for(tv, self.video_codec.temporal_stride),
                    "height": h * s, "width": w * s}
        return {"num_frames": int(req.video.shape[1]), "height": int(req.video.shape[2]),
                "width": int(req.video.shape[3])}

    @property
    def grid(self) -> int:
        """Output width and height must be multiples of this (see `size_grid`)."""
        return size_grid(self.model.cfg, self.video_codec)

    def layout(self, req: Request) -> Layout:
        cfg, vc = self.model.cfg, self.video_codec
        grid = self.grid
        for name, value in (("width", req.width), ("height", req.height)):
            if value % grid or value <= 0:
                raise ValueError(f"{name} {value} must be a positive multiple of {grid} "
                                 f"(codec stride {vc.spatial_stride} x patch {cfg.video.patch_size[1]})")
        fps = timeline.as_rate(req.fps, "fps")
        tv = timeline.latent_frames_for(req.num_frames, vc.temporal_stride)
        seconds = float(timeline.frames_duration(req.num_frames, fps))
        if seconds > MAX_SECONDS or tv > cfg.video.rope_max_len:
            raise ValueError(f"{req.num_frames} frames at {fps} fps is {seconds:.1f} s; at most {MAX_SECONDS:.0f} s")
        rate = timeline.audio_latent_rate(self.audio_codec.sample_rate, self.audio_codec.samples_per_latent)
        ta = timeline.audio_latents_for_frames(req.num_frames, fps, rate)
        return Layout(req.num_frames, req.height, req.width, fps, tv, ta)

    # -- conditioning --------------------------------------------------------------------------------
    def _contexts(self, req: Request, negative: bool) -> tuple[torch.Tensor, torch.Tensor]:
        given = (req.negative_video_context, req.negative_audio_context) if negative else (
            req.video_context, req.audio_context)
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

    def conditioning(self, req: Request, negative: bool = False) -> Conditioning:
        video_ctx, audio_ctx = self._contexts(req, negative)
        words = encode_transcripts(["" if negative else req.transcript] * req.batch).to(self.device)
        ref = None if req.ref_audio_latent is None else req.ref_audio_latent.to(self.device).expand(req.batch, -1, -1)
        if ref is None and req.ref_audio is not None:
            wave = _pad_to_latents(req.ref_audio.float().reshape(1, -1), self.audio_codec.samples_per_latent)
            with torch.no_grad():
                ref = self.audio_codec.encode(wave.to(self.device)).expand(req.batch, -1, -1)
        return Conditioning(video_ctx, audio_ctx, words, ref)

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
                mode, static_image = self._mode(req, lay, notes)
                guidance = _guidance(req)
                passes = {p for step in plan_passes(guidance, mode, req.steps) for p in step}
                if passes & {AUDIO_DRIVEN, VIDEO_DRIVEN}:
                    guidance = replace(guidance, anchors=self._anchors(lay, static_image))
                positive = self.conditioning(req)
                negative = self.conditioning(req, negative=True) if UNCOND in passes else None
                denoiser = HarmonyDenoiser(self.model, positive, negative)
                noise_v, noise_a = self._noise(req, lay)
                video, audio = sample(denoiser, noise_v, noise_a, mode, guidance,
                                      flow_sigmas(req.steps, req.shift), solver=req.solver, callback=callback)
            return video, audio, lay, notes

    def memory_required(self, req: Request, element_size: int) -> int:
        """Activation bytes of the widest sampling step (every guidance pass of every take in one forward)
        with weights of `element_size` bytes; for schedulers that free memory before sampling."""
        req = self.resolve(req)
        lay = self.layout(req)
        guidance = _guidance(req)
        gen_v, gen_a = req.mode != "audio_driven", req.mode != "video_driven"
        passes = max(len(guidance.passes(k / req.steps, gen_v, gen_a)) for k in range(req.steps))
        s, (_, ph, pw) = self.video_codec.spatial_stride, self.model.cfg.video.patch_size
        video_tokens = lay.video_frames * (lay.height // s // ph) * (lay.width // s // pw)
        ref = 0
        if req.ref_audio_latent is not None:
            ref = req.ref_audio_latent.shape[-1]
        elif req.ref_audio is not None:
            ref = timeline.audio_latents_for_samples(req.ref_audio.numel(), self.audio_codec.samples_per_latent)
        return forward_bytes(self.model.cfg, passes * req.batch, video_tokens, lay.audio_frames + ref,
                             element_size)

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
        """The layout of existing latents (e.g. a LATENT from another node): video [B, Cv, Tv, h, w]."""
        tv, h, w = video.shape[2:]
        s = self.video_codec.spatial_stride
        frames = timeline.pixel_frames_for(tv, self.video_codec.temporal_stride)
        return self.layout(self.resolve(Request(num_frames=frames, height=h * s, width=w * s, fps=str(fps))))

    def _mode(self, req: Request, lay: Layout, notes: list[str]):
        ref_latent = None if req.image_latent is None else req.image_latent.to(self.device)
        if ref_latent is None and req.image is not None:
            image = _check_image(req.image, lay)
            ref_latent = self.video_codec.encode(image[None, :, None].to(self.device))    # [1, Cv, 1, h, w]
        if req.mode == "joint":
            return joint(lay.video_frames, lay.audio_frames, ref_latent), req.image
        if req.mode == "audio_driven" and req.audio_latent is not None:
            latent = _fit_latent(req.audio_latent.to(self.device), lay.audio_frames, self.audio_codec, notes)
            return audio_driven(latent, lay.video_frames, ref_latent), req.image
        if req.mode == "audio_driven":
            wave, note = timeline.fit_audio_to_video(req.audio.float().reshape(1, -1), self.audio_codec.sample_rate,
                                                     lay.num_frames, lay.fps)
            notes.append(note)
            latent = self.audio_codec.encode(_pad_to_latents(wave, self.audio_codec.samples_per_latent,
                                                             lay.audio_frames).to(self.device))
            return audio_driven(latent[..., : lay.audio_frames], lay.video_frames, ref_latent), req.image
        if req.video_latent is not None:
            return video_driven(req.video_latent.to(self.device), lay.audio_frames), req.image
        frames = req.video.float().to(self.device)
        latent = self.video_codec.encode(frames[None])                                    # [1, Cv, Tv, h, w]
        first = frames[:, 0] if req.image is None else req.image
        return video_driven(latent, lay.audio_frames), first

    def _anchors(self, lay: Layout, static_image: torch.Tensor | None) -> SyncAnchors:
        image = None if static_image is None else static_image.float()[None].to(self.device)
        return SyncAnchors(mute_audio=self.audio_codec.silence_latent(lay.audio_frames),
                           static_video=self.video_codec.static_latent(image, lay.num_frames, lay.height, lay.width))

    def _noise(self, req: Request, lay: Layout) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(req.seed)
        s = self.video_codec.spatial_stride
        video = torch.randn(req.batch, self.video_codec.latent_channels, lay.video_frames, lay.height // s,
                            lay.width // s, generator=g)
        audio = torch.randn(req.batch, self.audio_codec.latent_channels, lay.audio_frames, generator=g)
        return video.to(self.device), audio.to(self.device)


def size_grid(cfg: HarmonyConfig, video_codec: VideoCodec) -> int:
    """Pixels a width or height must be a multiple of: the codec's spatial stride x the patch size."""
    return video_codec.spatial_stride * cfg.video.patch_size[1]


def _guidance(req: Request) -> Guidance:
    """Guidance scales of a resolved request (anchors are added by `sample` when a pass needs them)."""
    return Guidance(sync=SyncCFG(req.sync_video, req.sync_audio, req.sync_start, req.sync_end),
                    text=TextCFG(req.text_video, req.text_audio))


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
