"""HarmonySampler: one node for the three modes (joint / audio_driven / video_driven) with SyncCFG, or with
UniAVGen's MA-CFG on UniAVGen checkpoints (`guidance`: the checkpoint's default, "synccfg" or "uniavgen"), and
an optional CFG-rescale per modality (`rescale_video` / `rescale_audio`, either guidance kind).

UniAVGen's four tasks are these modes: joint = AVG (talking head from image + text), joint with a reference
voice (HarmonyAudioCondition role "reference_voice") = RAVG, audio_driven = A2V (lip-sync to a given speech),
video_driven = V2A (a soundtrack for a given video).

Everything the user can get wrong is checked before the model is loaded onto the GPU: the MODEL kind, the
codecs fitting the model, the wiring each mode needs (UniAVGen: its reference image, its negative caption, a
driving speech no longer than the clip, the transcripts' language), sizes on the grid, 4k+1 frames, the length
limit, and conditions encoded with other codecs. Errors name the input and say what to do. Then harmony_core's
`HarmonyPipeline.resolve` validates the request once more and `sample` runs with a per-step callback
(progress, preview, interrupt). Batch > 1 samples several takes at once (seeds differ per take).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

from comfy_api.latest import io

from ..harmony_core import families, timeline
from ..harmony_core.budget import check_budget
from ..harmony_core.config import SEED_MAX, HarmonyConfig
from ..harmony_core.model.harmony import HarmonyModel
from ..harmony_core.model.transcript_ids import transcript_ids
from ..harmony_core.pipeline import MODES, HarmonyPipeline, check_clip_size
from ..harmony_core.request import Captions, Media, Request, Sampling
from ..harmony_core.sampling import MACFG, SOLVERS, Guidance, Rescale, SyncCFG, TextCFG
from .adapters import model_patcher
from .adapters.progress import SamplingProgress
from .types import (
    DEFAULT_FPS,
    DEFAULTS,
    AudioCondition,
    HarmonyAudioType,
    HarmonyCodecs,
    HarmonyCodecsType,
    HarmonyImageType,
    HarmonyVideoType,
    ReferenceImage,
    VideoCondition,
    audio_signature,
    make_latent,
    read_conditioning,
    read_language,
    video_signature,
)
from .validation import checked

log = logging.getLogger(__name__)

GUIDANCE = ("default", "synccfg", "uniavgen")  # the checkpoint's own kind, Harmony's SyncCFG, UniAVGen's MA-CFG


@dataclass(frozen=True)
class Widgets:
    """HarmonySampler's widget values."""

    mode: str
    width: int
    height: int
    frames: int
    fps: float
    steps: int
    shift: float
    seed: int
    solver: str
    sync_video_scale: float
    sync_audio_scale: float
    sync_start: float
    sync_end: float
    text_video_scale: float
    text_audio_scale: float
    batch: int
    guidance: str = "default"
    rescale_video: float = DEFAULTS.rescale_video  # optional widgets: a prompt without them gets the widget default
    rescale_audio: float = DEFAULTS.rescale_audio


@dataclass(frozen=True)
class Conditions:
    """The optional condition sockets of HarmonySampler."""

    audio: AudioCondition | None = None
    video: VideoCondition | None = None
    reference: ReferenceImage | None = None


def check_wiring(w: Widgets, c: Conditions, codecs: HarmonyCodecs) -> None:
    """What each mode needs, and conditions encoded with the connected codecs."""
    driving_audio = c.audio is not None and c.audio.role == "drive"
    if w.mode == "audio_driven" and not driving_audio:
        raise ValueError(
            "audio_cond: mode 'audio_driven' needs a driving soundtrack; connect HarmonyAudioCondition "
            "with role 'drive' (or choose mode 'joint')"
        )
    if w.mode == "video_driven" and c.video is None:
        raise ValueError(
            "video_cond: mode 'video_driven' needs driving frames; connect HarmonyVideoCondition "
            "(or choose mode 'joint')"
        )
    if driving_audio and w.mode != "audio_driven":
        log.warning(
            "audio_cond (role 'drive') is ignored in mode %r; it is used by mode 'audio_driven'", w.mode
        )
    if c.video is not None and w.mode != "video_driven":
        log.warning("video_cond is ignored in mode %r; it is used by mode 'video_driven'", w.mode)
    video = video_signature(codecs.video)
    for name, cond, expected in (
        ("audio_cond", c.audio, audio_signature(codecs.audio)),
        ("video_cond", c.video, video),
        ("reference", c.reference, video),
    ):
        if cond is not None and cond.signature != expected:
            raise ValueError(
                f"{name}: it was encoded with another codec ({cond.signature[0]}) than codecs "
                f"({expected[0]}); feed both from the same HarmonyCodecLoader"
            )


def check_size(w: Widgets, c: Conditions, codecs: HarmonyCodecs, rate: Fraction) -> tuple[int, int]:
    """Grid, 4k+1 frames, length limit; returns the (width, height) the clip will have."""
    if w.mode == "video_driven":
        width, height = c.video.width, c.video.height
    else:
        check_clip_size(w.width, w.height, w.frames, rate, codecs.grid, codecs.video.temporal_stride)
        width, height = w.width, w.height
    ref = c.reference
    if ref is not None and (ref.width, ref.height) != (width, height):
        raise ValueError(
            f"reference: it is {ref.width}x{ref.height} but the clip is {width}x{height}; set "
            "HarmonyReferenceImage's width/height to the clip's size"
        )
    return width, height


def guidance_of(w: Widgets, cfg: HarmonyConfig) -> Guidance:
    """The guidance the widgets choose: "default" = the checkpoint's kind (SyncCFG for Harmony models, MA-CFG
    for UniAVGen), always at the widgets' scales; MA-CFG's s_v / s_a are text_video_scale / text_audio_scale.
    The CFG-rescale widgets apply to either kind."""
    kind = cfg.defaults.guidance if w.guidance == "default" else w.guidance
    rescale = Rescale(w.rescale_video, w.rescale_audio)
    if kind != "uniavgen":
        return Guidance(
            sync=SyncCFG(w.sync_video_scale, w.sync_audio_scale, w.sync_start, w.sync_end),
            text=TextCFG(w.text_video_scale, w.text_audio_scale),
            rescale=rescale,
        )
    if not families.is_uniavgen(cfg):
        raise ValueError(
            "guidance: 'uniavgen' (MA-CFG) is UniAVGen's own guidance and this model is not a UniAVGen "
            "checkpoint; choose 'default' or 'synccfg'"
        )
    return Guidance(macfg=MACFG(w.text_video_scale, w.text_audio_scale, skip_blocks=cfg.defaults.macfg_skip_blocks),
                    rescale=rescale)


def check_uniavgen(w: Widgets, c: Conditions, transcript: str, language: str) -> str:
    """What a UniAVGen checkpoint needs besides the mode's wiring: its reference image (unless video-driven)
    and transcripts it can read (Chinese needs jieba + pypinyin); returns the reference voice's transcript."""
    if w.mode != "video_driven" and c.reference is None:
        raise ValueError(
            f"reference: UniAVGen starts every clip from a reference image (its first frame); mode "
            f"{w.mode!r} needs one: connect Load Image -> HarmonyReferenceImage (or choose mode video_driven, "
            "which starts from the driving video's first frame)"
        )
    voice = c.audio if c.audio is not None and c.audio.role == "reference_voice" else None
    ref_text = voice.transcript if voice is not None else ""
    if voice is not None and not ref_text.strip():
        log.warning("audio_cond: the reference voice has no transcript; UniAVGen reads what the voice says in "
                    "front of the clip's transcript (HarmonyAudioCondition's transcript)")
    try:
        transcript_ids([transcript], language, [ref_text if voice is not None else None])
    except (ImportError, ValueError) as err:
        raise ValueError(f"language: {err}") from err
    return ref_text


def build_request(
    harmony: HarmonyModel,
    codecs: HarmonyCodecs,
    w: Widgets,
    positive: list,
    negative: list | None,
    c: Conditions,
) -> Request:
    """A harmony_core Request from the node's inputs, after the node-level checks."""
    check_wiring(w, c, codecs)
    rate = c.video.fps if w.mode == "video_driven" else timeline.as_rate(w.fps, "fps")
    check_size(w, c, codecs, rate)
    text_dim = harmony.cfg.video.text_dim
    video_ctx, audio_ctx, transcript = read_conditioning(positive, text_dim, "positive")
    language = read_language(positive)
    neg = (None, None) if negative is None else read_conditioning(negative, text_dim, "negative")[:2]
    if negative is None and harmony.text_encoder is None and (w.text_video_scale != 1 or w.text_audio_scale != 1):
        raise ValueError(
            "negative: text CFG above 1 needs a negative conditioning for this model; connect one "
            "(CLIPTextEncode with an empty or negative prompt; UniAVGen's is empty) or set text_video_scale / "
            "text_audio_scale to 1"
        )
    guidance = guidance_of(w, harmony.cfg)
    uniavgen = families.is_uniavgen(harmony.cfg)
    ref_text = check_uniavgen(w, c, transcript, language) if uniavgen else ""
    drive = w.mode == "audio_driven"
    voice = c.audio.latent if c.audio is not None and c.audio.role == "reference_voice" else None
    return Request(
        mode=w.mode,
        transcript=transcript,
        ref_transcript=ref_text,
        language=language,
        num_frames=w.frames,
        width=w.width,
        height=w.height,
        fps=str(rate),
        media=Media(
            image=None if c.reference is None else c.reference.image,
            image_latent=None if c.reference is None else c.reference.latent,
            audio_latent=c.audio.latent if drive else None,
            ref_audio_latent=voice,
            video_latent=c.video.latent if w.mode == "video_driven" else None,
        ),
        captions=Captions(video=video_ctx, audio=audio_ctx, negative_video=neg[0], negative_audio=neg[1]),
        sampling=Sampling(steps=w.steps, shift=w.shift, solver=w.solver, seed=w.seed, batch=w.batch),
        guidance=guidance,
    )


def check_driving_audio(pipeline: HarmonyPipeline, request: Request) -> None:
    """UniAVGen never cuts a driving speech: one longer than the clip is refused before any work."""
    latent = request.media.audio_latent
    if request.mode != "audio_driven" or latent is None or not families.is_uniavgen(pipeline.model.cfg):
        return
    codec, lay = pipeline.audio_codec, pipeline.layout(request)
    try:
        families.check_driving_audio(latent.shape[-1] * codec.samples_per_latent, codec.sample_rate,
                                     lay.audio_frames, codec.samples_per_latent)
    except ValueError as err:
        raise ValueError(f"audio_cond: {err}") from err


def resolve(pipeline: HarmonyPipeline, request: Request) -> Request:
    try:
        return pipeline.resolve(request)
    except ValueError as err:
        raise ValueError(f"HarmonySampler: {err}") from err


def _float(name: str, default: float, lo: float, hi: float, step: float, tooltip: str) -> io.Float.Input:
    return io.Float.Input(name, default=default, min=lo, max=hi, step=step, round=0.001, tooltip=tooltip)


def _int(name: str, default: int, lo: int, hi: int, step: int, tooltip: str) -> io.Int.Input:
    return io.Int.Input(name, default=default, min=lo, max=hi, step=step, tooltip=tooltip)


def _clip_inputs() -> list:
    """What to make: mode, size, length, rate."""
    modes = (
        "joint: text -> audio + video (with a reference voice in audio_cond: in that voice). audio_driven: "
        "video for a given soundtrack (audio_cond), e.g. lip-sync. video_driven: soundtrack for given frames "
        "(video_cond), e.g. foley."
    )
    ignored = "Ignored in video_driven mode (the driving video's is used)."
    return [
        io.Combo.Input("mode", options=list(MODES), default="joint", tooltip=modes),
        _int(
            "width",
            DEFAULTS.width,
            16,
            4096,
            16,
            f"Pixels, a multiple of the grid (16 demo, 32 Wan2.2). {ignored}",
        ),
        _int("height", DEFAULTS.height, 16, 4096, 16, f"Pixels, a multiple of the grid. {ignored}"),
        _int(
            "frames",
            DEFAULTS.num_frames,
            1,
            7201,
            4,
            f"4k+1 frames (81 = 3.2 s at 25 fps), at most 60 s (UniAVGen: at most 81, 5.06 s at 16 fps). "
            f"{ignored}",
        ),
        _float("fps", DEFAULT_FPS, 1.0, 120.0, 1.0, f"Frame rate (29.97 is read as 30000/1001). {ignored}"),
    ]


def _sampling_inputs() -> list:
    """How to sample: schedule, seed, solver, SyncCFG and text CFG, takes."""
    d = DEFAULTS
    return [
        _int("steps", d.steps, 1, 200, 1, "Denoising steps."),
        _float(
            "shift", d.shift, 0.1, 20.0, 0.1, "Flow-matching schedule shift (higher: more high-noise steps)."
        ),
        io.Int.Input(
            "seed",
            default=0,
            min=0,
            max=SEED_MAX,
            control_after_generate=True,
            tooltip="Noise seed; takes of a batch differ from each other.",
        ),
        io.Combo.Input("solver", options=list(SOLVERS), default=d.solver, tooltip="ODE solver."),
        _float(
            "sync_video_scale", d.sync_video_scale, 0.0, 10.0, 0.1, "SyncCFG: motion follows the audio (1 = off)."
        ),
        _float(
            "sync_audio_scale", d.sync_audio_scale, 0.0, 10.0, 0.1, "SyncCFG: sounds follow the motion (1 = off)."
        ),
        _float("sync_start", 0.0, 0.0, 1.0, 0.01, "SyncCFG starts at this fraction of the steps."),
        _float("sync_end", 1.0, 0.0, 1.0, 0.01, "SyncCFG ends at this fraction of the steps."),
        _float("text_video_scale", d.text_video_scale, 0.0, 20.0, 0.1,
               "Text CFG on the video (1 = off). With UniAVGen's guidance (MA-CFG) its video scale s_v (3)."),
        _float("text_audio_scale", d.text_audio_scale, 0.0, 20.0, 0.1,
               "Text CFG on the audio (1 = off). With UniAVGen's guidance (MA-CFG) its audio scale s_a (2)."),
    ]


def _guidance_input() -> io.Combo.Input:
    return io.Combo.Input(
        "guidance",
        options=list(GUIDANCE),
        default="default",
        optional=True,
        tooltip="default: the checkpoint's own guidance (SyncCFG for Harmony models, MA-CFG for UniAVGen). "
        "synccfg: Harmony's SyncCFG (sync_* scales) + text CFG, on any checkpoint. uniavgen: UniAVGen's MA-CFG "
        "(interactions off in the negative for the first half of the steps, skip-layer guidance) at "
        "text_video_scale / text_audio_scale; UniAVGen checkpoints only.",
    )


def _rescale_inputs() -> list:
    """CFG-rescale mix factors (optional, so they follow `guidance`: saved workflows keep their widget order)."""
    what = (
        "CFG-rescale on the {0}, 0..1: pulls the guided {0} toward the energy (per-sample std) of the unguided "
        "prediction, against the {1} guidance adds. 0 = off, 1 = full (arXiv 2305.08891 uses 0.7). Acts only "
        "on steps where a guidance scale != 1 applies to the {0}; works with either guidance."
    )
    return [
        io.Float.Input(name, default=default, min=0.0, max=1.0, step=0.05, round=0.001, optional=True,
                       tooltip=what.format(modality, effect))
        for name, default, modality, effect in (
            ("rescale_video", DEFAULTS.rescale_video, "video", "over-saturation"),
            ("rescale_audio", DEFAULTS.rescale_audio, "audio", "loudness"),
        )
    ]


def _batch_input() -> io.Int.Input:
    return _int("batch", 1, 1, 16, 1, "Takes generated at once (several clips).")


def sampler_inputs(last_sampling_input: io.Input | None = None) -> list:
    """The sampler's inputs; `last_sampling_input` replaces `batch` (HarmonyBestOfTakes: `takes`)."""
    return [
        io.Model.Input("model", tooltip="The Harmony model (HarmonyModelLoader)."),
        HarmonyCodecsType.Input("codecs", tooltip="Its codecs (HarmonyCodecLoader)."),
        io.Conditioning.Input(
            "positive", tooltip="Captions + transcript (HarmonyTextEncode / HarmonyConditioning)."
        ),
        io.Conditioning.Input(
            "negative", optional=True, tooltip="Negative captions, used when text CFG is above 1."
        ),
        *_clip_inputs(),
        *_sampling_inputs(),
        last_sampling_input or _batch_input(),
        HarmonyAudioType.Input(
            "audio_cond",
            optional=True,
            tooltip="Driving soundtrack (mode audio_driven) or reference voice (any mode) from "
            "HarmonyAudioCondition.",
        ),
        HarmonyVideoType.Input(
            "video_cond", optional=True, tooltip="Driving frames (HarmonyVideoCondition)."
        ),
        HarmonyImageType.Input(
            "reference",
            optional=True,
            tooltip="First frame (HarmonyReferenceImage), clip size. UniAVGen needs it in modes joint and "
            "audio_driven.",
        ),
        _guidance_input(),
        *_rescale_inputs(),
    ]


class HarmonySampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonySampler",
            display_name="Harmony Sampler",
            category="Harmony/sampling",
            description="Generates synchronized audio + video latents (joint, audio-driven or "
            "video-driven) with Harmony's SyncCFG, or UniAVGen's MA-CFG on UniAVGen checkpoints.",
            inputs=sampler_inputs(),
            hidden=[io.Hidden.unique_id],
            outputs=[
                io.Latent.Output(display_name="latent", tooltip="Video and audio latents (HarmonyDecode).")
            ],
        )

    @classmethod
    @checked
    def execute(
        cls,
        model: object,
        codecs: HarmonyCodecs,
        positive: list,
        negative: list | None = None,
        audio_cond: AudioCondition | None = None,
        video_cond: VideoCondition | None = None,
        reference: ReferenceImage | None = None,
        **widgets,
    ) -> io.NodeOutput:
        conditions = Conditions(audio_cond, video_cond, reference)
        pipeline, request = prepare(model, codecs, Widgets(**widgets), positive, negative, conditions)
        progress = SamplingProgress(request.steps, codecs.video, cls.hidden.unique_id)
        video, audio, layout = sample(pipeline, request, progress)
        return io.NodeOutput(make_latent(video, audio, layout.fps))


def prepare(
    model: object, codecs: HarmonyCodecs, w: Widgets, positive: list, negative: list | None, c: Conditions
) -> tuple[HarmonyPipeline, Request]:
    """Checks, the resolved request, and the model + codecs loaded with room for one sampling step."""
    harmony = model_patcher.harmony_model(model)
    request = build_request(harmony, codecs, w, positive, negative, c)
    device = model_patcher.load_device(model)
    pipeline = codecs.pipeline(harmony, device)
    request = resolve(pipeline, request)
    check_driving_audio(pipeline, request)
    element_size = next(harmony.parameters()).element_size()
    plan = pipeline.memory_plan(request, element_size)
    check_budget(plan, model_patcher.available_memory(device, model, codecs.patcher),
                 "lower width/height, frames or batch (takes run one at a time in HarmonyBestOfTakes)")
    activations = pipeline.memory_required(request, element_size)
    model_patcher.load(model, codecs.patcher, memory_required=activations)
    return pipeline, request


def sample(pipeline: HarmonyPipeline, request: Request, progress: SamplingProgress) -> tuple:
    """(video latent, audio latent, layout) of one request; its notes are logged."""
    video, audio, layout, notes = pipeline.sample(request, progress)
    for note in notes:
        log.info("HarmonySampler: %s", note)
    return video, audio, layout
