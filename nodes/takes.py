"""Takes scored by synchronization: HarmonySyncScore (any clip) and HarmonyBestOfTakes (N seeds, best first).

Both use `harmony_core.metrics.score_clip`: the correlation of the picture's motion energy with the sound's
onset strength, at its best lag and discounted by that lag's distance from 0 (so a take whose sounds land on
its motion ranks above one whose sounds come a frame late, and both above unrelated sound), and the lag
itself. HarmonyBestOfTakes runs its takes one after another (each take is one sample + decode, so peak memory
is that of one take), with one progress bar over takes x steps and a cancel point between and inside takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import torch

from comfy_api.latest import io

from ..harmony_core import timeline
from ..harmony_core.config import MAX_TAKES, SEED_MAX
from ..harmony_core.metrics import DEFAULT_MAX_LAG, SyncScore, plot_sync, score_clip
from .adapters import media
from .adapters.progress import SamplingProgress
from .media import as_media
from .sampling import Conditions, Widgets, prepare, sample, sampler_inputs
from .types import DEFAULT_FPS, HarmonyCodecs
from .validation import checked

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Clip:
    """A clip as the metrics read it: frames [F, H, W, 3] in [0, 1] on the CPU, mono wave [L], rates."""

    frames: torch.Tensor
    fps: Fraction
    wave: torch.Tensor
    sample_rate: int

    @classmethod
    def of(cls, images: torch.Tensor, audio: dict, fps: Fraction) -> Clip:
        """From IMAGE [F, H, W, C] and AUDIO (checked, mixed to mono at its own rate)."""
        _, rate = media.audio_parts(audio, "audio")
        return cls(images[..., :3].float().cpu(), fps, media.audio_to_mono(audio, rate), rate)

    def score(self, max_lag: int = DEFAULT_MAX_LAG) -> SyncScore:
        return score_clip(self.frames, self.fps, self.wave, self.sample_rate, max_lag=max_lag)

    def plot(self) -> torch.Tensor:
        """IMAGE [1, H, W, 3]: motion energy vs onset strength over the clip."""
        return plot_sync(self.frames, self.fps, self.wave, self.sample_rate)[None]


@dataclass(frozen=True, eq=False)
class Take:
    index: int
    seed: int
    images: torch.Tensor  # IMAGE [F, H, W, 3]
    audio: dict  # AUDIO
    clip: Clip  # what was scored (and is plotted for the best take)
    score: SyncScore


def takes_table(ranked: list[Take], fps: Fraction) -> str:
    """The score table a user reads: rank, take, seed, score, best lag."""
    lines = [f"Takes ranked by sync score (how closely sound onsets follow motion), {len(ranked)} in all",
             "rank  take  seed                  score   best lag"]
    for rank, take in enumerate(ranked, 1):
        lag_ms = 1000.0 * take.score.best_lag_frames / float(fps)
        lines.append(f"{rank:>4}  {take.index + 1:>4}  {take.seed:<20}  {take.score.score:6.3f}  "
                     f"{take.score.best_lag_frames:+d} fr ({lag_ms:+.0f} ms)")
    return "\n".join(lines)


class HarmonySyncScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonySyncScore",
            display_name="Harmony Sync Score",
            category="Harmony/analysis",
            description="How well sound and picture agree in any clip: the correlation of motion energy with "
            "sound onsets at their best lag, discounted by that lag (1 = every motion has its sound at the same "
            "frame, about 0 = unrelated), the lag itself, and a plot of both over time.",
            inputs=[
                io.Video.Input("video", optional=True, tooltip="A clip with sound (or connect images + audio)."),
                io.Image.Input("images", optional=True, tooltip="Frames, used when no video is connected."),
                io.Audio.Input("audio", optional=True, tooltip="Soundtrack of the frames (with images)."),
                io.Float.Input("fps", default=DEFAULT_FPS, min=1.0, max=120.0, step=1.0, round=0.001,
                               tooltip="Frame rate of the images (ignored with a video)."),
                io.Int.Input("max_lag", default=DEFAULT_MAX_LAG, min=1, max=50,
                             tooltip="Largest offset searched, in frames (8 = 0.32 s at 25 fps)."),
            ],
            outputs=[
                io.Float.Output(display_name="score", tooltip="-1..1, higher: sounds land on the motion."),
                io.Float.Output(display_name="best_lag_seconds",
                                tooltip="Offset of the best agreement; positive: the sound comes late."),
                io.String.Output(display_name="report", tooltip="The figures in words."),
                io.Image.Output(display_name="plot", tooltip="Motion energy and onset strength over time."),
            ],
        )

    @classmethod
    @checked
    def execute(cls, fps: float, max_lag: int, video: object = None, images: torch.Tensor | None = None,
                audio: dict | None = None) -> io.NodeOutput:
        try:
            clip = Clip.of(*_clip(video, images, audio, fps))
            score = clip.score(max_lag)
        except ValueError as err:
            raise ValueError(f"HarmonySyncScore: {err}") from err
        return io.NodeOutput(score.score, score.best_lag_seconds, score.report(), clip.plot())


def _clip(video: object, images: torch.Tensor | None, audio: dict | None,
          fps: float) -> tuple[torch.Tensor, dict, Fraction]:
    """(IMAGE, AUDIO, frame rate) from a VIDEO or from images + audio + fps."""
    if video is not None:
        components = video.get_components()
        if components.audio is None:
            raise ValueError("video: this clip has no sound; connect a video with an audio track "
                             "(e.g. from HarmonyMux) or images + audio")
        return components.images, components.audio, timeline.as_rate(components.frame_rate, "video frame rate")
    if images is None or audio is None:
        raise ValueError("connect a video with sound, or both images and audio")
    return images, audio, timeline.as_rate(fps, "fps")


class HarmonyBestOfTakes(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        takes = io.Int.Input("takes", default=4, min=1, max=MAX_TAKES, tooltip=(
            "Takes generated one after another (seeds seed, seed+1, ...); memory stays that of one take."))
        return io.Schema(
            node_id="HarmonyBestOfTakes",
            display_name="Harmony Best of Takes",
            category="Harmony/sampling",
            description="Generates several takes (as HarmonySampler, one seed each), scores how well each "
            "take's sound and picture agree, and returns them best first with the score table.",
            inputs=sampler_inputs(takes),
            hidden=[io.Hidden.unique_id],
            outputs=[
                io.Image.Output(display_name="images", tooltip="Frames of the best take."),
                io.Audio.Output(display_name="audio", tooltip="Soundtrack of the best take."),
                io.Float.Output(display_name="fps", tooltip="Frame rate."),
                io.Image.Output(display_name="all_images", is_output_list=True,
                                tooltip="Frames of every take, best first."),
                io.Audio.Output(display_name="all_audio", is_output_list=True,
                                tooltip="Soundtracks of every take, best first."),
                io.String.Output(display_name="report", tooltip="Score table: rank, take, seed, score, lag."),
                io.Image.Output(display_name="plot", tooltip="Motion vs sound onsets of the best take."),
            ],
        )

    @classmethod
    @checked
    def execute(cls, model: object, codecs: HarmonyCodecs, positive: list, takes: int,
                negative: list | None = None, audio_cond: object = None, video_cond: object = None,
                reference: object = None, **widgets) -> io.NodeOutput:
        conditions = Conditions(audio_cond, video_cond, reference)
        pipeline, request = prepare(model, codecs, Widgets(**widgets, batch=1), positive, negative, conditions)
        progress = SamplingProgress(request.steps, codecs.video, cls.hidden.unique_id, takes)
        done = []
        for index in range(takes):
            progress.start_take(index)
            seed = (request.sampling.seed + index) % (SEED_MAX + 1)  # the seed widget's range, wrapped
            video, audio, layout = sample(pipeline, request.with_seed(seed), progress)
            images, sounds = as_media(pipeline.decode(video, audio, layout))
            clip = Clip.of(images[0], sounds[0], layout.fps)
            score = clip.score()
            log.info("HarmonyBestOfTakes: take %d/%d (seed %d) scored %.3f", index + 1, takes, seed, score.score)
            done.append(Take(index, seed, images[0], sounds[0], clip, score))
        ranked = sorted(done, key=lambda take: -take.score.score)  # scores are finite: score_clip checks
        best = ranked[0]
        return io.NodeOutput(best.images, best.audio, float(layout.fps), [t.images for t in ranked],
                             [t.audio for t in ranked], takes_table(ranked, layout.fps),
                             best.clip.plot())
