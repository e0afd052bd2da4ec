"""Pictures of the synthetic scenes: bouncing shapes with a flash/squash on impact, and a talking face glyph.

Rendering is vectorised over frames with soft (anti-aliased) signed-distance masks, so sub-pixel motion shows.
Frame i shows the scene at time i / fps. An impact at time t_e lights up the first frame after it,
k = ceil(t_e * fps), and the flash fades as (1 - j / FLASH_FRAMES)^2 over the next frames, so the frame
difference into k (the jump) is several times larger than any difference during the fade, which shrinks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RGB = tuple[float, float, float]

BACKGROUNDS: dict[str, RGB] = {"grey": (0.55, 0.55, 0.57), "beige": (0.86, 0.80, 0.66),
                               "dark grey": (0.22, 0.22, 0.25), "pale blue": (0.66, 0.78, 0.90),
                               "pale green": (0.70, 0.86, 0.70)}
FLOORS: dict[str, RGB] = {"brown": (0.45, 0.30, 0.18), "dark grey": (0.15, 0.15, 0.17),
                          "black": (0.04, 0.04, 0.05), "dark green": (0.10, 0.30, 0.15)}
OBJECT_COLOURS: dict[str, RGB] = {"red": (0.90, 0.15, 0.12), "green": (0.15, 0.78, 0.22),
                                  "blue": (0.15, 0.30, 0.95), "yellow": (0.95, 0.85, 0.10)}
SHAPES = ("circle", "square", "triangle")
FACE_COLOURS: dict[str, RGB] = {"yellow": (0.96, 0.84, 0.30), "pink": (0.96, 0.70, 0.70),
                                "orange": (0.95, 0.58, 0.22), "white": (0.95, 0.95, 0.92)}
MOUTH_RGB: RGB = (0.35, 0.04, 0.08)
EYE_RGB: RGB = (0.08, 0.08, 0.10)
FLOOR_FRACTION = 0.15  # floor band height / frame height
GRAVITY = 5.0          # frame heights per s^2
SPLASH_WIDTH = 2.4     # splash half-width in object radii
SPLASH_HEIGHT = 4.0    # splash half-height in px at 64 px frame height
FLASH_FRAMES = 8       # the flash jumps to 1 and fades quadratically to 0 over this many frames


@dataclass(frozen=True)
class BouncingObject:
    """One object of an impact scene: look, horizontal position and radius (px), impact times (s)."""

    shape: str
    colour: str
    x: float
    radius: float
    impacts: tuple[float, ...]
    arc_before: float  # duration (s) of the arc ending at the first impact
    arc_after: float   # duration (s) of the arc starting at the last impact


def _grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates: ys [1, H, 1], xs [1, 1, W]."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5)[None, :, None]
    xs = (torch.arange(width, dtype=torch.float32) + 0.5)[None, None, :]
    return ys, xs


def _coverage(sdf: torch.Tensor) -> torch.Tensor:
    """Signed distance (px, negative inside) -> soft coverage in [0, 1]."""
    return (0.5 - sdf).clamp(0.0, 1.0)


def _shape_sdf(shape: str, dx: torch.Tensor, dy: torch.Tensor, rx: torch.Tensor,
               ry: torch.Tensor) -> torch.Tensor:
    """Approximate signed distance of a shape with half-extents rx, ry centred at the origin."""
    if shape == "circle":
        return (torch.sqrt((dx / rx) ** 2 + (dy / ry) ** 2) - 1.0) * torch.minimum(rx, ry)
    if shape == "square":
        return torch.maximum(dx.abs() - 0.85 * rx, dy.abs() - 0.85 * ry)
    if shape == "triangle":  # apex up, base at dy = +ry
        side = (2 * ry * dx.abs() - rx * (dy + ry)) / torch.sqrt(4 * ry**2 + rx**2)
        return torch.maximum(side, dy - ry)
    raise ValueError(f"unknown shape {shape!r}; accepted: {SHAPES}")


def _span(centre: float, half: float, size: int) -> slice:
    """Pixel index range covering centre +- half (plus one pixel of antialiasing), clipped to [0, size)."""
    return slice(max(0, math.floor(centre - half) - 1), min(size, math.ceil(centre + half) + 2))


def _paint(image: torch.Tensor, alpha: torch.Tensor, rgb: torch.Tensor, rows: slice, cols: slice) -> None:
    """In place: image[:, rows, cols] ([F, h, w, 3]) blended towards rgb ([3] or [F, 1, 1, 3]) by alpha
    ([F or 1, h, w])."""
    region = image[:, rows, cols]  # [F, h, w, 3] view
    region.lerp_(rgb.expand_as(region), alpha[..., None].expand_as(region))


def flash_intensity(impacts: tuple[float, ...], num_frames: int, fps: float) -> torch.Tensor:
    """[F] flash of one object: 1 on the first frame after each impact, fading quadratically to 0."""
    idx = torch.arange(num_frames, dtype=torch.float32)
    flash = torch.zeros(num_frames)
    for t_e in impacts:
        k = math.ceil(t_e * fps - 1e-6)
        fade = (1.0 - (idx - k) / FLASH_FRAMES).clamp(0.0, 1.0) ** 2 * (idx >= k)
        flash = torch.maximum(flash, fade)
    return flash


def bounce_height(obj: BouncingObject, times: torch.Tensor, max_height: float,
                  gravity: float) -> torch.Tensor:
    """Height above the floor (px) at `times` [F]: parabolic arcs between consecutive impacts."""
    knots = torch.tensor([obj.impacts[0] - obj.arc_before, *obj.impacts, obj.impacts[-1] + obj.arc_after])
    arc = torch.searchsorted(knots, times, right=True).clamp(1, len(knots) - 1) - 1  # [F] arc index
    start, end = knots[arc], knots[arc + 1]
    span = end - start
    u = ((times - start) / span).clamp(0.0, 1.0)
    peak = (gravity * span**2 / 8.0).clamp(max=max_height)
    return peak * 4.0 * u * (1.0 - u)


def render_impact(objects: list[BouncingObject], background: str, floor: str, num_frames: int, height: int,
                  width: int, fps: float, plain: bool = False) -> torch.Tensor:
    """Frames [F, H, W, 3] in [0, 1] of objects bouncing on a floor, with a squash and flash on impact
    (`plain`: the squash alone, no splash and no brightening)."""
    ys, xs = _grid(height, width)
    floor_y = height * (1.0 - FLOOR_FRACTION)
    still = torch.tensor(BACKGROUNDS[background]).expand(1, height, width, 3).clone()  # [1, H, W, 3]
    _paint(still, _coverage(floor_y - ys).expand(1, height, width), torch.tensor(FLOORS[floor]),
           slice(None), slice(None))
    image = still.expand(num_frames, -1, -1, -1).clone()  # [F, H, W, 3]
    times = torch.arange(num_frames, dtype=torch.float32) / fps
    white = torch.ones(3)
    for obj in objects:
        flash = flash_intensity(obj.impacts, num_frames, fps)[:, None, None]  # [F, 1, 1]
        cols = _span(obj.x, SPLASH_WIDTH * obj.radius, width)
        if not plain:
            half_h = SPLASH_HEIGHT * height / 64.0
            rows = _span(floor_y, half_h, height)
            splash = _shape_sdf("circle", xs[..., cols] - obj.x, ys[:, rows] - floor_y,
                                torch.tensor(SPLASH_WIDTH * obj.radius), torch.tensor(half_h))
            _paint(image, _coverage(splash) * 0.9 * flash, white, rows, cols)  # white splash where it lands
        squash = 0.3 * flash
        rx, ry = obj.radius * (1.0 + squash), obj.radius * (1.0 - squash)  # [F, 1, 1]
        max_height = floor_y - 2.0 * obj.radius - 2.0
        lift = bounce_height(obj, times, max_height, gravity=GRAVITY * height)[:, None, None]  # [F, 1, 1]
        cy = floor_y - ry - lift
        mask = _coverage(_shape_sdf(obj.shape, xs[..., cols] - obj.x, ys - cy, rx, ry))  # [F, H, w]
        base = torch.tensor(OBJECT_COLOURS[obj.colour])
        colour = base if plain else base + 0.6 * flash[..., None] * (white - base)  # [F, 1, 1, 3] on impact
        _paint(image, mask, colour, slice(None), cols)
    return image


def render_speaker(mouth: torch.Tensor, background: str, face: str, height: int, width: int) -> torch.Tensor:
    """Frames [F, H, W, 3] of a face glyph whose mouth opening follows `mouth` [F] in [0, 1]."""
    ys, xs = _grid(height, width)
    scale = min(height, width) / 64.0
    cx, cy = width / 2.0, height / 2.0 + 2.0 * scale
    everything = slice(None)
    still = torch.tensor(BACKGROUNDS[background]).expand(1, height, width, 3).clone()  # [1, H, W, 3]
    r_face = torch.tensor(23.0 * scale)
    face_mask = _coverage(_shape_sdf("circle", xs - cx, ys - cy, r_face, r_face))  # [1, H, W]
    _paint(still, face_mask, torch.tensor(FACE_COLOURS[face]), everything, everything)
    r_eye = torch.tensor(2.6 * scale)
    for side in (-1.0, 1.0):
        ex, ey = cx + side * 8.0 * scale, cy - 7.0 * scale
        eye = _coverage(_shape_sdf("circle", xs - ex, ys - ey, r_eye, r_eye))  # [1, H, W]
        _paint(still, eye, torch.tensor(EYE_RGB), everything, everything)
    image = still.expand(mouth.shape[0], -1, -1, -1).clone()  # [F, H, W, 3]
    opening = mouth[:, None, None]  # [F, 1, 1]
    half_w, half_h = (6.5 + 2.0 * opening) * scale, (0.8 + 6.5 * opening) * scale
    my = cy + 9.0 * scale
    rows, cols = _span(my, 7.5 * scale, height), _span(cx, 8.5 * scale, width)
    lips = _coverage(_shape_sdf("circle", xs[..., cols] - cx, ys[:, rows] - my, half_w, half_h))  # [F, h, w]
    _paint(image, lips, torch.tensor(MOUTH_RGB), rows, cols)
    return image
