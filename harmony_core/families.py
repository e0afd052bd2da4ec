"""What a UniAVGen checkpoint needs around the shared pipeline (`pipeline.py` calls these when the model's
config prepends a reference frame, `cfg.video.ref_frame`).

UniAVGen (`../shared/reference/uniavgen.md` §6) differs from Harmony's own models at the edges only:
- the reference image is required (its latent is prepended to the video and held on frame 0); in
  video-driven mode it is the driving clip's first frame;
- the audio tower reads UniAVGen transcript ids (its vocabulary, `model/transcript_ids.py`), with the reference
  voice's transcript in front of the target's (RAVG), and has no audio caption;
- a reference voice is its mel with 0.3 s of silence appended (`utils/eval_dataset.py`);
- the audio latent count of a clip is floor(seconds x 100) (506 for 81 frames at 16 fps), as the reference;
- driving media are never cut to fit: a driving soundtrack longer than the clip, or a driving video longer than
  the model's trained length, is an error naming the limit.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from . import timeline
from .codecs.base import AudioCodec
from .config import HarmonyConfig
from .model.transcript_ids import LANGUAGES, TranscriptIds, negative_transcript_ids, transcript_ids
from .request import Media, Request
from .sampling import Guidance

REF_SILENCE_SECONDS = 0.3   # appended to a reference voice before its mel (the reference's eval dataset)


def is_uniavgen(cfg: HarmonyConfig) -> bool:
    return cfg.video.ref_frame


def audio_frames(cfg: HarmonyConfig, num_frames: int, fps: timeline.Rate, rate: timeline.Rate) -> int:
    """Audio latents of a clip: floor(seconds x rate) for UniAVGen (its 506 mel frames for 81 frames at 16 fps),
    else the covering count (ceil)."""
    if is_uniavgen(cfg):
        return math.floor(timeline.frames_duration(num_frames, fps) * timeline.as_rate(rate, "rate"))
    return timeline.audio_latents_for_frames(num_frames, fps, rate)


def check_request(req: Request, cfg: HarmonyConfig) -> None:
    """UniAVGen's task inputs (§6), before any work: a reference image unless video-driven, the language, the
    trained length."""
    media = req.media
    if req.mode != "video_driven" and media.image is None and media.image_latent is None:
        raise ValueError("reference image: UniAVGen starts every clip from a reference image (its first frame); "
                         "connect HarmonyReferenceImage / pass --image (video-driven mode uses the driving "
                         "video's first frame)")
    if req.language not in LANGUAGES:
        raise ValueError(f"language {req.language!r}: UniAVGen transcripts are one of {LANGUAGES}")
    limit = cfg.defaults.max_frames
    if limit is not None and req.num_frames is not None and req.num_frames > limit:
        what = "the driving video" if req.mode == "video_driven" else "frames"
        raise ValueError(f"{what}: {req.num_frames} frames is more than the {limit} this model was trained on "
                         f"({float(timeline.frames_duration(limit, req.fps or cfg.defaults.fps)):.2f} s at "
                         f"{req.fps or cfg.defaults.fps} fps); use at most {limit} frames")


def check_driving_audio(samples: int, sample_rate: int, lay_audio_frames: int, samples_per_latent: int) -> None:
    """A driving soundtrack is never cut: longer than the clip is an error naming the limit."""
    limit = lay_audio_frames * samples_per_latent
    if samples > limit:
        raise ValueError(f"driving audio: {samples / sample_rate:.2f} s is longer than the clip "
                         f"({limit / sample_rate:.2f} s); trim it (start_seconds / max_seconds) or make the "
                         "clip longer")


def resolve_guidance(guidance: Guidance, req: Request, cfg: HarmonyConfig) -> Guidance:
    """MA-CFG knows whether a reference voice is prepended (RAVG: V2A off in the cond pass); its skipped
    blocks must exist in this model."""
    if guidance.macfg is None:
        return guidance
    blocks = cfg.video.num_layers
    bad = [b for b in guidance.macfg.skip_blocks if b >= blocks]
    if bad:
        raise ValueError(f"MA-CFG skip_blocks {bad}: this model has blocks 0..{blocks - 1}")
    has_ref = req.media.ref_audio is not None or req.media.ref_audio_latent is not None
    return replace(guidance, macfg=replace(guidance.macfg, reference_audio=has_ref))


def transcripts(req: Request, negative: bool) -> TranscriptIds:
    """Positive: the reference voice's transcript + " " + the target's (RAVG) or the target's alone;
    negative: id 0 + fillers, or the reference transcript + " " (the reference's negatives)."""
    has_ref = req.media.ref_audio is not None or req.media.ref_audio_latent is not None
    refs = [req.ref_transcript if has_ref else None] * req.batch
    if negative:
        return negative_transcript_ids(req.batch, req.language, refs)
    return transcript_ids([req.transcript] * req.batch, req.language, refs)


def reference_voice(media: Media, codec: AudioCodec, device: torch.device) -> torch.Tensor | None:
    """[1, Ca, Tr]: the reference voice's latent with REF_SILENCE_SECONDS of silence after it (a raw wave gets
    the silence before encoding, as the reference; an encoded one gets the codec's silence latent)."""
    silence = round(REF_SILENCE_SECONDS * codec.sample_rate / codec.samples_per_latent)  # latents
    if media.ref_audio_latent is not None:
        latent = media.ref_audio_latent.to(device)
        if silence == 0:
            return latent
        pad = codec.silence_latent(silence).to(latent)
        return torch.cat([latent, pad.expand(latent.shape[0], -1, -1)], dim=-1)
    if media.ref_audio is None:
        return None
    wave = media.ref_audio.float().reshape(1, -1)
    spl = codec.samples_per_latent
    wave = torch.cat([wave, wave.new_zeros(1, -(-wave.shape[1] // spl) * spl - wave.shape[1] + silence * spl)], 1)
    with torch.no_grad():
        return codec.encode(wave.to(device))
