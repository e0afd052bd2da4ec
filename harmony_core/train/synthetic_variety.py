"""Training-only variety of the synthetic scenes (`SceneSpec.variety`, off by default).

The standard scenes always mark an event the same way: a landing flashes and splashes, a lamp stands on
a stand with a halo, a beep sounds at its colour's pitch, a voice carries vowel formants and a consonant
burst on every syllable, and every event sits half-way between two frames. A model trained only on those
learns the marks, not the timing, and misses events that arrive without them (a landing seen only as a
squash, a bare shape lighting up, a plain buzz starting). With `variety` p > 0 each clip switches each
departure below on with probability p, drawn from a generator of its own (seeded by the clip's seed), so
the standard stream (p = 0) stays the same clip for clip, and the evaluation prompts never vary.

Two ways to train with it: `SceneSpec.variety` varies whole clips (what the model sees and generates), and
`DataConfig.cond_variety` (`condition_variation`) varies only the given modality of the driven tasks: a
video-driven row hears the standard sound for a plainly drawn picture, an audio-driven row draws the
standard picture for a plainly made sound, and joint rows stay standard, so what the model generates keeps
the standard marks while it learns to read inputs without them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .synthetic_audio import COLOUR_PITCH_WORD
from .synthetic_families import BEEP_PITCH_HZ

FREE_BEEP_HZ = (300.0, 2000.0)   # free beep pitch range (log-uniform)
PLAIN_VOICE_F0 = (90.0, 260.0)   # plain voice pitch range (Hz); below DEEP_BELOW_HZ it is called deep
DEEP_BELOW_HZ = 160.0
JITTER = (0.1, 0.9)              # event offset before frame k, in frames, when jittered (standard: 0.5)
_STREAM = 0x5EED                 # second seed word of the variety generator
_MARKS = {"impact": ("plain_landing",), "flash": ("bare_lamp", "free_beep"), "speaker": ("plain_voice",)}


@dataclass(frozen=True, eq=False)
class Variation:
    """Which departures one clip takes (all False: the standard scene)."""

    plain_landing: bool = False  # impacts squash the object only: no flash, no splash, no brightening
    bare_lamp: bool = False      # the lamp is its shape alone: no stand, no halo
    free_beep: bool = False      # beeps at a random pitch in FREE_BEEP_HZ instead of the colour's
    plain_voice: bool = False    # a formant-free buzz, no consonant bursts, f0 anywhere in PLAIN_VOICE_F0
    jitter: bool = False         # events anywhere inside their frame interval instead of half-way
    rng: np.random.Generator | None = field(default=None, repr=False)

    def event_time(self, k: int, fps: float) -> float:
        """Time (s) of an event first shown on frame k: inside ((k - 1) / fps, k / fps)."""
        offset = float(self.rng.uniform(*JITTER)) if self.jitter and self.rng is not None else 0.5
        return (k - offset) / fps

    def beep_pitch(self) -> float | None:
        """A free beep pitch (Hz), or None for the colour's own."""
        if not self.free_beep or self.rng is None:
            return None
        lo, hi = FREE_BEEP_HZ
        return float(math.exp(self.rng.uniform(math.log(lo), math.log(hi))))

    def voice_f0(self, standard: float) -> float:
        """The voice's pitch (Hz): `standard`, or one anywhere in PLAIN_VOICE_F0 for a plain voice."""
        if self.plain_voice and self.rng is not None:
            return float(self.rng.uniform(*PLAIN_VOICE_F0))
        return standard


STANDARD = Variation()


def draw_variation(seed: int, p: float) -> Variation:
    """The departures of the clip with `seed`, each on with probability p (p = 0: STANDARD)."""
    if p <= 0:
        return STANDARD
    rng = np.random.default_rng([seed, _STREAM])
    flags = rng.random(5) < p
    return Variation(*(bool(f) for f in flags), rng=rng)


def condition_variation(seed: int, p: float, kind: str) -> Variation | None:
    """The departures for a driven task's given modality in a clip of `kind`: draw_variation's marks without
    the jitter (so the events fall where the standard clip's do); None when the clip takes none that changes
    a `kind` clip (drums and still scenes never change)."""
    var = draw_variation(seed, p)
    if not any(getattr(var, mark) for mark in _MARKS.get(kind, ())):
        return None
    return replace(var, jitter=False)


def pitch_word(pitch_hz: float) -> str:
    """The caption word ("low" ... "very high") of the beep colour whose pitch is nearest on a log scale."""
    nearest = min(BEEP_PITCH_HZ, key=lambda c: abs(math.log(BEEP_PITCH_HZ[c] / pitch_hz)))
    return COLOUR_PITCH_WORD[nearest]
