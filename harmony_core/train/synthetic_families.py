"""Pictures and sounds of the demo v2 scene families beyond bouncing objects and the talking face:
a drum struck by a mallet, a flashing light with beeps, and the still/silent variant of every family.

Same conventions as synthetic_scenes.py / synthetic_audio.py: frame i shows time i / fps; an event at
t_e = (k - 0.5) / fps lights up frame k first (`flash_intensity`), so frame k is the first to show it and
the sound starts inside the frame difference k - 1 -> k. Random draws come from the caller's numpy Generator.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .synthetic_scenes import (
    BACKGROUNDS,
    FLOOR_FRACTION,
    FLOORS,
    OBJECT_COLOURS,
    BouncingObject,
    _coverage,
    _grid,
    _paint,
    _shape_sdf,
    bounce_height,
    flash_intensity,
)

DRUM_HEAD_RGB = (0.93, 0.90, 0.80)
MALLET_RGB = (0.30, 0.18, 0.10)
STAND_RGB = (0.18, 0.18, 0.20)
DRUM_PITCH_HZ = {"blue": 70.0, "red": 100.0, "green": 140.0, "yellow": 190.0}
BEEP_PITCH_HZ = {"blue": 392.0, "red": 660.0, "green": 990.0, "yellow": 1480.0}
LIGHT_SHAPES = ("circle", "square")


def _still(background: str, height: int, width: int, floor: str | None) -> torch.Tensor:
    """[1, H, W, 3] background wall with an optional floor band."""
    ys, _ = _grid(height, width)
    image = torch.tensor(BACKGROUNDS[background]).expand(1, height, width, 3).clone()
    if floor is not None:
        floor_y = height * (1.0 - FLOOR_FRACTION)
        _paint(image, _coverage(floor_y - ys).expand(1, height, width), torch.tensor(FLOORS[floor]),
               slice(None), slice(None))
    return image


def render_drum(hits: tuple[float, ...], colour: str, background: str, floor: str, num_frames: int,
                height: int, width: int, fps: float) -> torch.Tensor:
    """Frames [F, H, W, 3]: a drum (coloured body, pale head) on the floor struck by a mallet that moves in
    slow parabolic arcs and lands on the head at each hit (drum lights up and squashes). No hits: at rest."""
    ys, xs = _grid(height, width)
    s = min(height, width) / 64.0
    image = _still(background, height, width, floor).expand(num_frames, -1, -1, -1).clone()  # [F, H, W, 3]
    floor_y = height * (1.0 - FLOOR_FRACTION)
    cx, half_w, body_h = width / 2.0, 15.0 * s, 16.0 * s
    flash = (flash_intensity(hits, num_frames, fps) if hits else torch.zeros(num_frames))[:, None, None]
    squash = 1.5 * s * flash                                                          # [F, 1, 1] px
    top = floor_y - body_h + squash                                                   # [F, 1, 1]
    body = torch.maximum((xs - cx).abs() - half_w, torch.maximum(top - ys, ys - floor_y))  # [F, H, W]
    base = torch.tensor(OBJECT_COLOURS[colour])
    body_rgb = base + 0.6 * flash[..., None] * (torch.ones(3) - base)                 # [F, 1, 1, 3]
    _paint(image, _coverage(body), body_rgb, slice(None), slice(None))
    head_ry = torch.tensor(3.5 * s)
    head = _shape_sdf("circle", xs - cx, ys - top, torch.tensor(half_w), head_ry)      # [F, H, W]
    head_rgb = torch.tensor(DRUM_HEAD_RGB)
    lit = head_rgb + 0.9 * flash[..., None] * (torch.ones(3) - head_rgb)              # [F, 1, 1, 3]
    _paint(image, _coverage(head), lit, slice(None), slice(None))
    times = torch.arange(num_frames, dtype=torch.float32) / fps
    if hits:
        obj = BouncingObject("circle", colour, cx, 4.0 * s, hits, 0.5, 0.5)
        lift = bounce_height(obj, times, max_height=14.0 * s, gravity=2.5 * height)   # [F]
    else:
        lift = torch.full((num_frames,), 3.0 * s)                                     # resting above the head
    head_y = (top - 4.0 * s - lift[:, None, None]).expand(num_frames, 1, 1)           # [F, 1, 1]
    mx = cx + 3.0 * s
    ball = _shape_sdf("circle", xs - mx, ys - head_y, torch.tensor(4.0 * s), torch.tensor(4.0 * s))
    handle = torch.maximum((xs - (mx + 9.0 * s)).abs() - 9.0 * s, (ys - head_y).abs() - 1.2 * s)
    _paint(image, _coverage(torch.minimum(ball, handle)), torch.tensor(MALLET_RGB), slice(None), slice(None))
    return image


def render_light(intensity: torch.Tensor, colour: str, shape: str, background: str, height: int,
                 width: int, bare: bool = False) -> torch.Tensor:
    """Frames [F, H, W, 3] of a lamp (round bulb or square panel on a stand) whose brightness and glow
    follow `intensity` [F] in [0, 1]; 0 is switched off (a dark version of the colour). `bare`: the shape
    alone, no stand and no halo."""
    ys, xs = _grid(height, width)
    s = min(height, width) / 64.0
    cx, cy, r = width / 2.0, height * 0.42, 13.0 * s
    image = _still(background, height, width, None)                                  # [1, H, W, 3]
    if not bare:
        stand = torch.maximum((xs - cx).abs() - 2.0 * s, torch.maximum(cy - ys, ys - height * 0.93))
        _paint(image, _coverage(stand), torch.tensor(STAND_RGB), slice(None), slice(None))
        foot = torch.maximum((xs - cx).abs() - 10.0 * s, (ys - height * 0.93).abs() - 2.0 * s)
        _paint(image, _coverage(foot), torch.tensor(STAND_RGB), slice(None), slice(None))
    image = image.expand(intensity.shape[0], -1, -1, -1).clone()                     # [F, H, W, 3]
    level = intensity[:, None, None]                                                  # [F, 1, 1]
    on = torch.tensor(OBJECT_COLOURS[colour])
    off = 0.3 * on + 0.12
    rr = torch.tensor(r)
    if not bare:
        dist = torch.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)                            # [1, H, W] px
        halo = ((1.6 * r - dist) / (0.6 * r)).clamp(0.0, 1.0) * 0.5 * level          # [F, H, W]
        _paint(image, halo, on + 0.5 * (torch.ones(3) - on), slice(None), slice(None))
    lamp = _coverage(_shape_sdf(shape, xs - cx, ys - cy, rr, rr))                      # [1, H, W]
    colour_f = off + level[..., None] * (on + 0.35 * (torch.ones(3) - on) - off)      # [F, 1, 1, 3]
    _paint(image, lamp.expand(intensity.shape[0], -1, -1), colour_f, slice(None), slice(None))
    return image


def light_intensity(onsets: tuple[float, ...], durations: tuple[float, ...], num_frames: int,
                    fps: float) -> torch.Tensor:
    """[F] lamp brightness: 1 from the first frame after a beep's onset while the beep holds, then fading
    quadratically over 3 frames (switching off is a visible change too, with no sound onset)."""
    idx = torch.arange(num_frames, dtype=torch.float32)
    out = torch.zeros(num_frames)
    for t_on, dur in zip(onsets, durations):
        k = math.ceil(t_on * fps - 1e-6)
        k_off = max(k + 1, math.ceil((t_on + dur) * fps - 1e-6))
        fade = (1.0 - (idx - k_off) / 3.0).clamp(0.0, 1.0) ** 2
        level = torch.where(idx < k_off, (idx >= k).float(), fade)
        out = torch.maximum(out, level)
    return out


def drum_sound(hits: list[float], colour: str, gains: list[float], sample_rate: int, length: int,
               rng: np.random.Generator) -> torch.Tensor:
    """[L] drum hits: a sine that drops from 1.6x to its pitch in ~30 ms with a 0.2 s decay, plus a 30 ms
    noise burst (the stick on the head). Not normalised."""
    f0 = DRUM_PITCH_HZ[colour]
    n = int(0.9 * sample_rate)
    rel = torch.arange(n, dtype=torch.float32) / sample_rate
    freq = f0 * (1.0 + 0.6 * torch.exp(-rel / 0.03))
    phase = 2 * math.pi * torch.cumsum(freq, 0) / sample_rate
    tone = torch.sin(phase) * torch.exp(-rel / 0.2)
    out = torch.zeros(length)
    for t_e, gain in zip(hits, gains):
        start = round(t_e * sample_rate)
        m = min(n, length - start)
        if m <= 0:
            continue
        noise = torch.from_numpy(rng.standard_normal(m).astype(np.float32)) * torch.exp(-rel[:m] / 0.01)
        out[start:start + m] += gain * (tone[:m] + 0.5 * noise)
    return out


def beep_sound(onsets: list[float], durations: list[float], colour: str, sample_rate: int,
               length: int, pitch_hz: float | None = None) -> torch.Tensor:
    """[L] tone bursts at the colour's pitch (or `pitch_hz`): 3 ms attack, held for the duration, 40 ms
    exponential tail."""
    t = torch.arange(length, dtype=torch.float32) / sample_rate
    env = torch.zeros(length)
    for t_on, dur in zip(onsets, durations):
        rel = t - t_on
        rise = (rel / 0.003).clamp(0.0, 1.0)
        tail = torch.exp(-(rel - dur).clamp_min(0.0) / 0.04)
        env = torch.maximum(env, rise * tail * (rel >= 0))
    f = BEEP_PITCH_HZ[colour] if pitch_hz is None else pitch_hz
    return env * (torch.sin(2 * math.pi * f * t) + 0.3 * torch.sin(4 * math.pi * f * t))
