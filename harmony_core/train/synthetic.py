"""Synthetic audio-visual clips whose timing agrees across modalities, generated on the fly from a seed.

Five scene kinds (our construction for the demo model; the paper trains on real data, arXiv 2511.21579 §4):
- "impact": 1-2 large objects (ball/box/triangle x red/green/blue/yellow) bounce on a floor; every impact
  squashes the object and flashes a splash on the floor, and makes a sound whose pitch follows the colour
  and whose timbre follows the shape (see synthetic_audio.py).
- "speaker": a face glyph whose mouth opening follows the amplitude envelope of a formant-filtered voiced
  buzz, syllable by syllable (frame k shows the loudest the voice was since frame k - 1).
- "drum": a drum struck by a mallet; each hit flashes the drum head and sounds a pitched thump.
- "flash": a lamp that lights up for each beep (a tone burst at the colour's pitch) and fades after it.
- "still": one of the four above at rest (object lying on the floor, mallet resting, lamp off, mouth
  closed) with only the noise floor for sound: "silence/stillness" as a condition the model learns.
Captions (synthetic_captions.py) say what is seen and how it sounds, in varied words, never when. Events
happen half-way between two frames, t_e = (k - 0.5) / fps, so frame k is the first to show them and the
sound starts inside the frame difference k - 1 -> k (the grid the sync metrics use). Training may ask
for `SceneSpec.variety`: plainer event marks and jittered event times (synthetic_variety.py).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import torch
from torch.utils.data import Dataset

from ..timeline import latent_frames_for
from . import synthetic_captions as cap
from .synthetic_audio import (
    COLOUR_PITCH_WORD,
    NOISE_FLOOR,
    SHAPE_TIMBRE,
    VOWEL_FORMANTS,
    Syllable,
    finish_wave,
    impact_sound,
    syllable_envelope,
    voice_sound,
)
from .synthetic_families import (
    LIGHT_SHAPES,
    beep_sound,
    drum_sound,
    light_intensity,
    render_drum,
    render_light,
)
from .synthetic_scenes import (
    BACKGROUNDS,
    FACE_COLOURS,
    FLOORS,
    OBJECT_COLOURS,
    SHAPES,
    BouncingObject,
    render_impact,
    render_speaker,
)
from .synthetic_variety import DEEP_BELOW_HZ, Variation, draw_variation, pitch_word

KINDS = ("impact", "speaker", "drum", "flash", "still")
CONSONANTS = "bdgklmnpst"
MIN_EVENT_GAP_FRAMES = 3  # impacts of different objects stay this many frames apart


@dataclass(frozen=True)
class SceneSpec:
    """What to generate. Defaults suit the tiny CPU demo model: 64x64 px, 25 fps, 81 frames (3.24 s),
    16 kHz mono."""

    kind: str = "impact"
    num_frames: int = 81
    height: int = 64
    width: int = 64
    fps: Fraction = field(default=Fraction(25))
    sample_rate: int = 16000
    max_objects: int = 2
    variety: float = 0.0  # training only: chance of each departure in synthetic_variety.py (0 = none)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown scene kind {self.kind!r}; accepted: {KINDS}")
        latent_frames_for(self.num_frames)  # raises unless num_frames = 4k + 1
        if min(self.height, self.width) < 32:
            raise ValueError(f"frames must be at least 32x32 px, got {self.height}x{self.width}")
        object.__setattr__(self, "fps", Fraction(self.fps))
        if self.fps <= 0 or self.sample_rate < 8000:
            raise ValueError(f"need fps > 0 and sample_rate >= 8000, got {self.fps} and {self.sample_rate}")
        if self.duration < 1:
            raise ValueError(f"clips must last at least 1 s to hold events, got {self.num_frames} frames at "
                             f"{self.fps} fps")
        if not 0.0 <= self.variety <= 1.0:
            raise ValueError(f"variety is a probability in [0, 1], got {self.variety}")
        if not 1 <= self.max_objects <= 2:
            raise ValueError(f"max_objects must be 1..2 (objects are large), got {self.max_objects}")

    @property
    def duration(self) -> Fraction:
        """Clip length in seconds (num_frames / fps)."""
        return self.num_frames / self.fps

    @property
    def num_samples(self) -> int:
        """Audio samples covering exactly the video's duration."""
        return round(self.duration * self.sample_rate)


@dataclass(frozen=True, eq=False)
class Clip:
    """One generated clip. frames [F, H, W, 3] float32 in [0, 1]; wave [L] float32 mono in [-1, 1]."""

    frames: torch.Tensor
    wave: torch.Tensor
    fps: Fraction
    sample_rate: int
    video_caption: str
    audio_caption: str
    transcript: str
    kind: str
    event_times: tuple[float, ...]  # impacts, hits, beep or syllable onsets (s); () for still scenes
    mouth: torch.Tensor | None     # [F] mouth opening in [0, 1] (faces, still ones too), else None
    seed: int


def _impact_frames(rng: np.random.Generator, spec: SceneSpec, n_objects: int) -> list[list[int]]:
    """Event frame indices k (event at (k - 0.5) / fps) per object; events of different objects stay
    MIN_EVENT_GAP_FRAMES apart."""
    fps = float(spec.fps)
    lo_gap, hi_gap = max(4, round(0.36 * fps)), max(5, round(0.88 * fps))
    taken: list[int] = []
    per_object = []
    for _ in range(n_objects):
        frames, k = [], int(rng.integers(2, 2 + round(0.8 * fps)))
        while k <= spec.num_frames - 1:
            if all(abs(k - j) >= MIN_EVENT_GAP_FRAMES for j in taken):
                frames.append(k)
            k += int(rng.integers(lo_gap, hi_gap + 1))
        taken += frames
        per_object.append(frames)
    return per_object


def _event_times(rng: np.random.Generator, spec: SceneSpec, var: Variation) -> tuple[float, ...]:
    """Times (s) of one object's events, each half-way between two frames (anywhere between, jittered)."""
    return tuple(var.event_time(k, float(spec.fps)) for k in _impact_frames(rng, spec, 1)[0])


def _impact_objects(rng: np.random.Generator, spec: SceneSpec, var: Variation,
                    resting: bool = False) -> list[BouncingObject]:
    """Large objects (radius 15-19 % of the frame) with distinct colours, spread over the width, each with at
    least one impact in the clip; `resting`: one object lying on the floor, no impact."""
    n = 1 if resting else int(rng.integers(1, spec.max_objects + 1))
    colours = rng.choice(list(OBJECT_COLOURS), size=n, replace=False)
    shapes = rng.choice(SHAPES, size=n)
    fps, end = float(spec.fps), (spec.num_frames - 1) / float(spec.fps)
    per_object = [[]] if resting else _impact_frames(rng, spec, n)
    objects = []
    for j, frames in enumerate(per_object):
        radius = min(spec.width, spec.height) * float(rng.uniform(0.15, 0.19))
        x = spec.width * (j + 0.5) / n + float(rng.uniform(-0.04, 0.04)) * spec.width
        if resting:  # one impact long before the clip, then lying on the floor
            objects.append(BouncingObject(str(shapes[j]), str(colours[j]), x, radius, (-10.0,), 0.5, 0.1))
            continue
        impacts = tuple(var.event_time(k, fps) for k in frames)
        if not impacts:
            continue
        before = max(float(rng.uniform(0.4, 0.9)), impacts[0] + 0.2)  # previous bounce lies before the clip
        after = max(float(rng.uniform(0.4, 0.9)), end - impacts[-1] + 0.2)
        objects.append(BouncingObject(str(shapes[j]), str(colours[j]), x, radius, impacts, before, after))
    return objects


def _scenery(rng: np.random.Generator) -> tuple[str, str]:
    return str(rng.choice(list(BACKGROUNDS))), str(rng.choice(list(FLOORS)))


def _silence(rng: np.random.Generator, spec: SceneSpec) -> torch.Tensor:
    """[L] the noise floor alone: what a still scene sounds like."""
    return NOISE_FLOOR * torch.from_numpy(rng.standard_normal(spec.num_samples).astype(np.float32))


def _make_impact(seed: int, rng: np.random.Generator, spec: SceneSpec, var: Variation,
                 still: bool = False) -> Clip:
    objects = _impact_objects(rng, spec, var, resting=still)
    background, floor = _scenery(rng)
    frames = render_impact(objects, background, floor, spec.num_frames, spec.height, spec.width,
                           float(spec.fps), plain=var.plain_landing)
    names = [cap.with_colour(o.colour, cap.pick(rng, cap.SHAPE_NOUNS[o.shape])) for o in objects]
    where = cap.place(rng, floor, background)
    if still:
        video_caption = f"{names[0]} resting{where}, {cap.pick(rng, cap.STILL_TAILS)}"
        return _still_clip(seed, rng, spec, frames, video_caption)
    wave = torch.zeros(spec.num_samples)
    for obj in objects:
        gains = list(rng.uniform(0.7, 1.0, size=len(obj.impacts)))
        wave = wave + impact_sound(list(obj.impacts), obj.colour, obj.shape, gains, spec.sample_rate,
                                   spec.num_samples, rng)
    video_caption = f"{cap.join(names)} {cap.pick(rng, cap.BOUNCE_VERBS)}{where}"
    sounds = [f"the {o.colour} {cap.SHAPE_NOUNS[o.shape][0]} lands with a {COLOUR_PITCH_WORD[o.colour]} "
              f"{SHAPE_TIMBRE[o.shape].words}" for o in objects]
    events = tuple(sorted(t for o in objects for t in o.impacts))
    return Clip(frames, finish_wave(wave, rng), spec.fps, spec.sample_rate, video_caption,
                "; ".join(sounds) + ", over a faint hiss", "", "impact", events, None, seed)


def _make_drum(seed: int, rng: np.random.Generator, spec: SceneSpec, var: Variation,
               still: bool = False) -> Clip:
    hits = () if still else _event_times(rng, spec, var)
    colour = str(rng.choice(list(OBJECT_COLOURS)))
    background, floor = _scenery(rng)
    frames = render_drum(hits, colour, background, floor, spec.num_frames, spec.height, spec.width,
                         float(spec.fps))
    drum, where = cap.with_colour(colour, "drum"), cap.place(rng, floor, background)
    if still:
        return _still_clip(seed, rng, spec, frames, f"{drum} standing untouched{where}, "
                                                    f"{cap.pick(rng, cap.STILL_TAILS)}")
    wave = drum_sound(list(hits), colour, list(rng.uniform(0.7, 1.0, size=len(hits))), spec.sample_rate,
                      spec.num_samples, rng)
    audio = f"{COLOUR_PITCH_WORD[colour]} {cap.pick(rng, cap.DRUM_SOUNDS)}, over a faint hiss"
    return Clip(frames, finish_wave(wave, rng), spec.fps, spec.sample_rate,
                f"{drum} {cap.pick(rng, cap.DRUM_VERBS)}{where}", audio, "", "drum", hits, None, seed)


def _make_flash(seed: int, rng: np.random.Generator, spec: SceneSpec, var: Variation,
                still: bool = False) -> Clip:
    onsets = () if still else _event_times(rng, spec, var)
    durations = tuple(float(d) for d in rng.uniform(0.06, 0.16, size=len(onsets)))
    colour, shape = str(rng.choice(list(OBJECT_COLOURS))), str(rng.choice(LIGHT_SHAPES))
    background = str(rng.choice(list(BACKGROUNDS)))
    intensity = light_intensity(onsets, durations, spec.num_frames, float(spec.fps))
    frames = render_light(intensity, colour, shape, background, spec.height, spec.width, bare=var.bare_lamp)
    lamp = cap.with_colour(colour, cap.pick(rng, cap.LIGHT_NOUNS[shape]))
    where = cap.place(rng, None, background)
    if still:
        return _still_clip(seed, rng, spec, frames, f"{lamp} switched off{where}, "
                                                    f"{cap.pick(rng, cap.STILL_TAILS)}")
    pitch = var.beep_pitch()
    wave = beep_sound(list(onsets), list(durations), colour, spec.sample_rate, spec.num_samples, pitch)
    word = COLOUR_PITCH_WORD[colour] if pitch is None else pitch_word(pitch)
    audio = f"{word} {cap.pick(rng, cap.BEEP_SOUNDS)}, over a faint hiss"
    return Clip(frames, finish_wave(wave, rng), spec.fps, spec.sample_rate,
                f"{lamp} {cap.pick(rng, cap.LIGHT_VERBS)}{where}", audio, "", "flash", onsets, None, seed)


def _syllables(rng: np.random.Generator, duration: float) -> list[Syllable]:
    """Syllables at about 2.5 per second (fast attack, slow release) with short gaps and occasional pauses,
    ending before the clip does."""
    syllables, t = [], float(rng.uniform(0.1, 0.4))
    while t < duration - 0.25:
        attack, hold, release = rng.uniform(0.01, 0.025), rng.uniform(0.03, 0.1), rng.uniform(0.12, 0.22)
        vowel = str(rng.choice(list(VOWEL_FORMANTS)))
        syllables.append(Syllable(t, float(attack), float(hold), float(release), float(rng.uniform(0.6, 1.0)),
                                  vowel))
        pause = rng.uniform(0.25, 0.5) if rng.random() < 0.15 else rng.uniform(0.0, 0.08)
        t += float(attack + hold + release + pause)
    return syllables


def _transcript(rng: np.random.Generator, syllables: list[Syllable]) -> str:
    """Nonsense words: one consonant-vowel pair per syllable (its vowel sets the formants), 1-3 a word."""
    sounds = [str(rng.choice(list(CONSONANTS))) + s.vowel for s in syllables]
    words, i = [], 0
    while i < len(sounds):
        n = int(rng.integers(1, 4))
        words.append("".join(sounds[i:i + n]))
        i += n
    return " ".join(words)


def mouth_track(syllables: list[Syllable], num_frames: int, fps: float, sub: int = 8) -> torch.Tensor:
    """[F] mouth opening: frame k shows the loudest the voice was over ((k - 1) / fps, k / fps] (frame 0: at
    time 0), so a syllable starting inside that interval opens the mouth on frame k, as impacts show."""
    if not syllables:
        return torch.zeros(num_frames)
    offsets = torch.arange(sub, dtype=torch.float32) / sub                             # [S] frame fractions
    times = (torch.arange(num_frames, dtype=torch.float32)[:, None] - offsets) / fps    # [F, S]
    env = syllable_envelope(syllables, times.clamp_min(0.0).flatten()).amax(0)         # [F * S]
    return env.reshape(num_frames, sub).amax(1).clamp(0.0, 1.0)


def _make_speaker(seed: int, rng: np.random.Generator, spec: SceneSpec, var: Variation,
                  still: bool = False) -> Clip:
    syllables = [] if still else _syllables(rng, float(spec.duration))
    deep = bool(rng.random() < 0.5)
    background, face = str(rng.choice(list(BACKGROUNDS))), str(rng.choice(list(FACE_COLOURS)))
    mouth = mouth_track(syllables, spec.num_frames, float(spec.fps))
    frames = render_speaker(mouth, background, face, spec.height, spec.width)
    who, where = cap.with_colour(face, cap.pick(rng, cap.FACE_NOUNS)), cap.place(rng, None, background)
    if still:
        return _still_clip(seed, rng, spec, frames, f"{who} with a closed mouth{where}, "
                                                    f"{cap.pick(rng, cap.STILL_TAILS)}", mouth)
    f0 = var.voice_f0(float(rng.uniform(100, 125) if deep else rng.uniform(190, 230)))
    deep = f0 < DEEP_BELOW_HZ
    wave = voice_sound(syllables, f0, spec.sample_rate, spec.num_samples, rng, plain=var.plain_voice)
    voice = cap.pick(rng, cap.VOICE_WORDS[deep])
    audio_caption = f"{cap.article(voice)} {voice} {cap.pick(rng, cap.TALK_VERBS)}, over a faint hiss"
    return Clip(frames, finish_wave(wave, rng), spec.fps, spec.sample_rate,
                f"{who} {cap.pick(rng, cap.TALK_VERBS)}{where}", audio_caption, _transcript(rng, syllables),
                "speaker", tuple(s.onset for s in syllables), mouth, seed)


def _still_clip(seed: int, rng: np.random.Generator, spec: SceneSpec, frames: torch.Tensor, caption: str,
                mouth: torch.Tensor | None = None) -> Clip:
    """A still scene: its frames, the noise floor for sound, no events."""
    return Clip(frames, _silence(rng, spec), spec.fps, spec.sample_rate, caption,
                cap.pick(rng, cap.SILENT_AUDIO), "", "still", (), mouth, seed)


_MAKERS = {"impact": _make_impact, "speaker": _make_speaker, "drum": _make_drum, "flash": _make_flash}


def make_clip(seed: int, spec: SceneSpec, variation: Variation | None = None) -> Clip:
    """Generate one clip of `spec.kind`; a pure function of (seed, spec). A "still" clip draws which
    family it shows (at rest, silent) from the seed. `variation` replaces the departures that
    `spec.variety` would draw (synthetic_variety.py)."""
    rng = np.random.default_rng(seed)
    var = draw_variation(seed, spec.variety) if variation is None else variation
    if spec.kind == "still":
        family = str(rng.choice(list(_MAKERS)))
        return _MAKERS[family](seed, rng, spec, var, still=True)
    return _MAKERS[spec.kind](seed, rng, spec, var)


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip `index` of the stream started by `seed` (independent streams via SeedSequence)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def stream_clip(seed: int, index: int, spec: SceneSpec, kinds: Sequence[str] = KINDS,
                variation: Variation | None = None) -> Clip:
    """Clip `index` of the stream `seed`; kinds alternate (index mod len(kinds)) so batches are balanced."""
    if not kinds:
        raise ValueError(f"kinds must name at least one scene kind of {KINDS}")
    return make_clip(clip_seed(seed, index), replace(spec, kind=kinds[index % len(kinds)]), variation)


class SyntheticClips(Dataset):
    """Map-style dataset of `length` clips: item i is `stream_clip(seed, i, spec, kinds)`."""

    def __init__(self, seed: int, length: int, spec: SceneSpec = SceneSpec(),
                 kinds: Sequence[str] = KINDS) -> None:
        self.seed, self.length, self.spec, self.kinds = seed, length, spec, tuple(kinds)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Clip:
        if not 0 <= index < self.length:
            raise IndexError(f"clip index {index} out of range 0..{self.length - 1}")
        return stream_clip(self.seed, index, self.spec, self.kinds)


def synthetic_batches(seed: int, batch_size: int, spec: SceneSpec = SceneSpec(),
                      kinds: Sequence[str] = KINDS, num_batches: int | None = None) -> Iterator[list[Clip]]:
    """Yield lists of `batch_size` clips from the stream `seed` (endless when num_batches is None)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batch = 0
    while num_batches is None or batch < num_batches:
        start = batch * batch_size
        yield [stream_clip(seed, start + i, spec, kinds) for i in range(batch_size)]
        batch += 1
