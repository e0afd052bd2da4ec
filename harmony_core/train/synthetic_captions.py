"""Captions of the synthetic scenes: what is seen and heard, in varied words, never when.

Each family has its own nouns and verbs (so the demo's hashed-word caption encoder can tell the families
apart from any one word) and several synonyms per idea (so prompts a user writes in other words still hit
trained buckets). The colour word is always present. Still scenes say so with words no other family uses
("still", "silent", "silence", "quiet", "resting", "no sound", "switched off", "closed").
"""
from __future__ import annotations

import numpy as np

SHAPE_NOUNS = {"circle": ("ball", "circle", "sphere", "round ball"),
               "square": ("box", "square", "block", "cube"),
               "triangle": ("triangle", "pyramid", "triangular block")}
BOUNCE_VERBS = ("bouncing", "bouncing up and down", "jumping", "hopping")
DRUM_VERBS = ("being hit by a mallet", "struck by a stick", "being drummed", "hit with a drumstick")
LIGHT_NOUNS = {"circle": ("light", "lamp", "bulb", "round lamp"), "square": ("light", "lamp", "light panel",
                                                                              "square lamp")}
LIGHT_VERBS = ("flashing", "blinking", "flashing on and off", "blinking on and off")
FACE_NOUNS = ("cartoon face", "face", "cartoon head", "smiley face")
TALK_VERBS = ("talking", "speaking", "chanting", "saying something")
VOICE_WORDS = {True: ("deep voice", "low voice", "man's voice"), False: ("high voice", "woman's voice",
                                                                         "child's voice")}
STILL_TAILS = ("still and silent", "silent and still", "in silence", "nothing moves, no sound",
               "quiet and motionless")
SILENT_AUDIO = ("silence", "no sound", "complete silence, no sound at all", "quiet, nothing to hear")
DRUM_SOUNDS = ("drum hits", "thumping drum", "drum strokes", "booming drum")
BEEP_SOUNDS = ("beeps", "beeping tones", "short electronic beeps", "a beeping signal")


def pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One of `options`, drawn with the clip's generator."""
    return str(options[int(rng.integers(0, len(options)))])


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def with_colour(colour: str, noun: str) -> str:
    """"a red ball" / "an orange face"."""
    return f"{article(colour)} {colour} {noun}"


def place(rng: np.random.Generator, floor: str | None, background: str) -> str:
    """Where the scene is, in one of two phrasings (sometimes left out)."""
    if rng.random() < 0.25:
        return ""
    if floor is None:
        return f" in front of {article(background)} {background} wall"
    return f" on {article(floor)} {floor} floor" + (f" in front of {article(background)} {background} wall"
                                                    if rng.random() < 0.6 else "")
