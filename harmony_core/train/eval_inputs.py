"""Driving media for evaluating the demo model's audio-driven and video-driven modes, made by generators
that the training data never used (issue 14): other sound sources, other pictures, other timing laws.

Audio (A2V): click trains, tone bursts, syllable trains (a sawtooth "ba ba ba" voice) and running speech
(a sawtooth voice with a gliding pitch, uneven syllables and noise consonants). Video (V2A): a shape that
flashes on a plain background (no lamp, no stand), a square that jumps and a ball whose bounces lose
height (both squash for two frames on landing, no flash or splash: a jump seen only by its path has no
frame change at the landing, since the frames either side of it show the object at the same height), and a face glyph whose mouth follows an open/close process of its own.
Each item carries the prompt a user would write for it and its event times (s). Everything is a pure
function of (kind, seed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from .synthetic_scenes import FACE_COLOURS, _coverage, _grid, _shape_sdf, render_speaker

AUDIO_KINDS = ("clicks", "tone_bursts", "syllables", "speech")
VIDEO_KINDS = ("flashing", "jumping", "bouncing", "talking_face")
FPS = Fraction(25)
NUM_FRAMES = 81
SAMPLE_RATE = 16000
SIZE = 64
PALETTE = {"red": (0.85, 0.1, 0.1), "green": (0.1, 0.7, 0.2), "blue": (0.1, 0.25, 0.9),
           "yellow": (0.95, 0.8, 0.1)}
WALLS = ((0.1, 0.1, 0.1), (0.5, 0.5, 0.5), (0.9, 0.9, 0.85), (0.35, 0.3, 0.45))


@dataclass(frozen=True, eq=False)
class DrivingItem:
    """One driving input: audio wave [L] (A2V) or frames [F, H, W, 3] (V2A), and the prompt for it."""

    kind: str
    name: str
    prompt: str
    audio_prompt: str
    events: tuple[float, ...]
    wave: torch.Tensor | None = None
    frames: torch.Tensor | None = None
    transcript: str = ""


def _rng(kind: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, sum(map(ord, kind))])


def _times(rng: np.random.Generator, gap: tuple[float, float], end: float = 3.0) -> list[float]:
    """Event times from ~0.2 s on with gaps drawn from `gap` (s), before `end`."""
    t, out = float(rng.uniform(0.15, 0.6)), []
    while t < end:
        out.append(t)
        t += float(rng.uniform(*gap))
    return out


def _colour(rng: np.random.Generator) -> str:
    return str(rng.choice(list(PALETTE)))


def _normalise(wave: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    wave = wave / max(1e-6, float(np.abs(wave).max())) * float(rng.uniform(0.3, 0.9))
    return torch.from_numpy((wave + 0.002 * rng.standard_normal(wave.shape[0])).astype(np.float32))


def _saw_voice(rng: np.random.Generator, onsets: list[float], lengths: list[float], glide: bool) -> np.ndarray:
    """Sawtooth voice (f0 90-260 Hz) gated per syllable (10 ms attack, decay over its length), one-pole
    low-passed; with `glide` the pitch wanders and each syllable starts with a noise consonant."""
    n = round(NUM_FRAMES / FPS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = float(rng.uniform(90, 260))
    pitch = f0 * (1 + (0.15 * np.sin(2 * np.pi * float(rng.uniform(0.3, 1.2)) * t) if glide else 0))
    saw = 2 * np.mod(np.cumsum(pitch) / SAMPLE_RATE, 1.0) - 1
    env = np.zeros(n)
    for on, length in zip(onsets, lengths):
        rel = t - on
        env = np.maximum(env, np.clip(rel / 0.01, 0, 1) * np.exp(-np.clip(rel, 0, None) / (0.45 * length))
                         * (rel >= 0) * (rel < length * 1.6))
    voice = np.zeros(n)
    alpha = 0.25
    acc = 0.0
    for i, x in enumerate(saw * env):  # one-pole low-pass (darker than a raw saw)
        acc += alpha * (x - acc)
        voice[i] = acc
    if glide:
        for on in onsets:
            i = round(on * SAMPLE_RATE)
            m = min(n - i, int(0.03 * SAMPLE_RATE))
            voice[i:i + m] += 0.3 * rng.standard_normal(m) * np.exp(-np.arange(m) / (0.008 * SAMPLE_RATE))
    return voice


def driving_audio(kind: str, seed: int) -> DrivingItem:
    """One driving sound of `kind` (AUDIO_KINDS) with the prompt a user would give it."""
    rng, n = _rng(kind, seed), round(NUM_FRAMES / FPS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    colour = _colour(rng)
    if kind == "clicks":
        events = _times(rng, (0.25, 0.7))
        wave = np.zeros(n)
        for e in events:
            i = round(e * SAMPLE_RATE)
            m = min(n - i, 80)
            wave[i:i + m] += rng.standard_normal(m) * np.exp(-np.arange(m) / 20.0)
        prompt, audio = f"a {colour} ball bouncing on the floor", "sharp clicks"
    elif kind == "tone_bursts":
        events = _times(rng, (0.3, 0.8))
        wave = np.zeros(n)
        for e in events:
            f, dur = float(rng.uniform(300, 2000)), float(rng.uniform(0.05, 0.2))
            rel = t - e
            gate = np.clip(rel / 0.004, 0, 1) * np.clip((dur - rel) / 0.004, 0, 1) * (rel >= 0)
            wave += gate * np.sin(2 * np.pi * f * t)
        prompt, audio = f"a {colour} light flashing", "electronic beeps"
    elif kind in ("syllables", "speech"):
        glide = kind == "speech"
        events = _times(rng, (0.2, 0.45) if glide else (0.3, 0.5), end=3.0)
        lengths = [float(rng.uniform(0.08, 0.25) if glide else rng.uniform(0.12, 0.2)) for _ in events]
        wave = _saw_voice(rng, events, lengths, glide)
        face = str(rng.choice(list(FACE_COLOURS)))
        prompt = f"a {face} cartoon face {'speaking' if glide else 'chanting'}"
        audio = "a person speaking" if glide else "a voice chanting syllables"
    else:
        raise ValueError(f"unknown driving audio kind {kind!r}; accepted: {AUDIO_KINDS}")
    return DrivingItem(kind, f"{kind}_{seed}", prompt, audio, tuple(events), wave=_normalise(wave, rng))


def _frame_events(rng: np.random.Generator, gap: tuple[float, float]) -> list[float]:
    """Event times half-way between frames ((k - 0.5) / fps)."""
    fps = float(FPS)
    return [(math.ceil(e * fps) - 0.5) / fps for e in _times(rng, gap, end=(NUM_FRAMES - 2) / fps)]


def _arcs(events: list[float], times: torch.Tensor, heights: list[float]) -> torch.Tensor:
    """[F] height above the ground: parabolic arcs landing at `events`, arc i reaching heights[i] (px)."""
    knots = [events[0] - 0.5, *events, events[-1] + 0.6]
    out = torch.zeros_like(times)
    for i in range(len(knots) - 1):
        a, b = knots[i], knots[i + 1]
        u = ((times - a) / (b - a)).clamp(0, 1)
        inside = (times >= a) & (times < b)
        out = torch.where(inside, heights[min(i, len(heights) - 1)] * 4 * u * (1 - u), out)
    return out


def driving_video(kind: str, seed: int) -> DrivingItem:
    """One driving picture of `kind` (VIDEO_KINDS) with the prompt a user would give it."""
    rng = _rng(kind, seed)
    times = torch.arange(NUM_FRAMES, dtype=torch.float32) / float(FPS)
    ys, xs = _grid(SIZE, SIZE)
    wall = torch.tensor(WALLS[int(rng.integers(0, len(WALLS)))])
    frames = wall.expand(NUM_FRAMES, SIZE, SIZE, 3).clone()
    colour = _colour(rng)
    rgb = torch.tensor(PALETTE[colour])
    if kind == "flashing":
        events = _frame_events(rng, (0.3, 0.8))
        on = torch.zeros(NUM_FRAMES)
        for e in events:
            k = math.ceil(e * float(FPS))
            on[k:k + int(rng.integers(2, 6))] = 1.0
        shape = str(rng.choice(["square", "circle"]))
        r = torch.tensor(float(rng.uniform(9, 15)))
        mask = _coverage(_shape_sdf(shape, xs - SIZE / 2, ys - SIZE / 2, r, r))      # [1, H, W]
        level = (0.25 + 0.75 * on)[:, None, None, None]                                 # [F, 1, 1, 1]
        frames = torch.lerp(frames, (rgb * level).expand_as(frames), mask[..., None].expand_as(frames))
        prompt, audio = f"a {colour} light flashing", "beeps"
    elif kind in ("jumping", "bouncing"):
        ball = kind == "bouncing"
        events = _frame_events(rng, (0.4, 0.9))
        r = float(rng.uniform(7, 11))
        top = float(rng.uniform(18, 30))
        heights = [top * (0.8 ** i if ball else 1.0) for i in range(len(events) + 1)]
        ground = SIZE - 6.0
        squash = torch.zeros(NUM_FRAMES)   # cartoon squash on the frames right after each landing
        for e in events:
            k = math.ceil(e * float(FPS))
            squash[k:k + 2] = torch.tensor([0.35, 0.15])[: NUM_FRAMES - k]
        ry = r * (1 - squash)[:, None, None]                                           # [F, 1, 1]
        rx = r * (1 + squash)[:, None, None]
        cy = ground - ry - _arcs(events, times, heights)[:, None, None]                # [F, 1, 1]
        sdf = _shape_sdf("circle" if ball else "square", xs - SIZE / 2 + float(rng.uniform(-12, 12)), ys - cy,
                         rx, ry)
        frames[:, int(ground):] = torch.tensor((0.25, 0.2, 0.15))
        frames = torch.lerp(frames, rgb.expand_as(frames), _coverage(sdf)[..., None].expand_as(frames))
        prompt = f"a {colour} {'ball bouncing' if ball else 'box jumping'}"
        audio = "thuds as it lands"
    elif kind == "talking_face":
        events = _times(rng, (0.25, 0.6), end=3.0)
        mouth = torch.zeros(NUM_FRAMES)
        for e in events:
            k = math.ceil(e * float(FPS))
            hold = int(rng.integers(2, 5))
            mouth[k:k + hold] = torch.maximum(mouth[k:k + hold], torch.tensor(float(rng.uniform(0.5, 1.0))))
        face = str(rng.choice(list(FACE_COLOURS)))
        frames = render_speaker(mouth, "grey", face, SIZE, SIZE)
        prompt, audio = f"a {face} cartoon face talking", "a person talking"
        colour = face
    else:
        raise ValueError(f"unknown driving video kind {kind!r}; accepted: {VIDEO_KINDS}")
    return DrivingItem(kind, f"{kind}_{seed}", prompt, audio, tuple(events), frames=frames.clamp(0, 1))


def audio_items(n: int, seed: int) -> list[DrivingItem]:
    """`n` driving sounds, kinds in turn."""
    return [driving_audio(AUDIO_KINDS[i % len(AUDIO_KINDS)], seed + i) for i in range(n)]


def video_items(n: int, seed: int) -> list[DrivingItem]:
    """`n` driving pictures, kinds in turn."""
    return [driving_video(VIDEO_KINDS[i % len(VIDEO_KINDS)], seed + i) for i in range(n)]
