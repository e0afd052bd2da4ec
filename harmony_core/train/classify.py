"""Prompt adherence of the demo model (issue 14): which scene family and colour a clip shows, and which ones
its prompt asks for.

`classify_frames` is a hand-written, deterministic reader of the synthetic scenes (synthetic_scenes.py,
synthetic_families.py); nothing is fitted. Frames are brought to 64 x 64 px (the renderers' geometry, which
fixes every region below) and mostly read from the "rest frame" R, the per-pixel median over time (a lamp
is lit, a mouth open and a bouncing object in flight for less than half of the frames):
- wall = median colour of the top 4 rows of R; a pixel of R is foreground when > FG_DISTANCE from it (RGB);
- scene: the top 4 rows of the frames lie within WALL_TOLERANCE of the wall (ramp 30 % -> 60 % of them),
  which uniform noise and textures fail; every score is multiplied by it;
- floor: the median colour of the bottom two rows of R differs from the wall (ramp 0.04 -> 0.08; the
  closest pair, dark grey floor on dark grey wall, is 0.13 apart; a lamp's foot ends above these rows);
- no floor: a face covers its lower half (rows 44-52, x 20-44) and both sides (rows 30-38, x 10-17 and
  47-54), which a lamp (radius 13 px at row 27, thin stand) leaves empty; a lamp fills its core (rows
  20-34, x 25-39);
- floor: the drum is a 30 px wide body at the centre: the half-maximum width of the wall distance over rows
  44-52 through x = 32 (30-32 px on renders, raw or through the codec) scores 1 from 29 to 37 px and 0
  outside 26-40; one object is at most 24.4 px wide, and two leave the centre empty;
  "impact" also needs 2-5 % foreground in rows 4-52 of the median frame (an object, not a bare floor).
Each family's score in [0, 1] is a product of linear ramps of these features; `margin` = best - second
(0 when nothing matches, e.g. a uniform or noise clip).

Colour: a face takes the face colour (FACE_COLOURS) nearest in RGB to the median of its pixels in R. Any other
scene votes with its pixels of every second frame (away from wall and floor, chroma > MIN_CHROMA): each
pixel's chroma vector (RGB minus its grey mean) goes to the object colour whose chroma direction is nearest
(cosine), weighted by its length and by how far it lies from wall and floor. The direction is what a colour
keeps when lit (c + k(1 - c)), switched off (0.3 c + 0.12) or blurred by the codec, so an off lamp reads
like its lit colour.

Captions: `family_of_caption`, `colour_of_caption`, `is_still_caption` read a prompt's words with the word
tables of synthetic_captions.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..threads import thread_budget
from . import synthetic_captions as cap
from .synthetic_scenes import FACE_COLOURS, OBJECT_COLOURS

FAMILIES = ("impact", "speaker", "drum", "flash")
SIZE = 64               # px, the renderers' frame size; other sizes are resampled to it
FG_DISTANCE = 0.1       # RGB distance from the wall (and floor) that makes a pixel foreground
WALL_TOLERANCE = 0.2    # RGB distance from the wall colour within which a top-row pixel of a frame is wall
MIN_CHROMA = 0.08       # chroma length below which a pixel is grey and does not vote for a colour


@dataclass(frozen=True)
class SceneGuess:
    """What a clip shows: family, colour, per-class scores in [0, 1] and margins (best - second)."""

    family: str
    colour: str
    family_scores: dict[str, float]
    colour_scores: dict[str, float]
    margin: float
    colour_margin: float


def _ramp(x: torch.Tensor | float, lo: float, hi: float) -> float:
    """0 below lo, 1 above hi, linear between (lo > hi reverses it)."""
    return float(min(max((float(x) - lo) / (hi - lo), 0.0), 1.0))


def _prepare(frames: torch.Tensor) -> torch.Tensor:
    """[F, H, W, 3] in [0, 1] -> float [F, 64, 64, 3]: wide frames keep their centre square, then area
    (shrinking) or bilinear (growing) resampling to 64 x 64 px."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"classify_frames takes frames [F, H, W, 3] in [0, 1], got {tuple(frames.shape)}; "
                         "pass one clip (pipeline results hold [B, F, H, W, 3]: index the batch)")
    x = frames.detach().float().cpu().nan_to_num(0.0).clamp(0.0, 1.0)
    h, w = x.shape[1:3]
    if w > h:  # the renderers centre every scene and scale it with the short side: keep the centre square
        x = x[:, :, (w - h) // 2:(w - h) // 2 + h]
    if x.shape[1:3] != (SIZE, SIZE):
        nchw = x.permute(0, 3, 1, 2)                                           # [F, 3, H, W]
        if x.shape[1] > SIZE:
            nchw = F.interpolate(nchw, size=(SIZE, SIZE), mode="area")
        else:
            nchw = F.interpolate(nchw, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        x = nchw.permute(0, 2, 3, 1)
    return x  # [F, 64, 64, 3]


def _centre_run(profile: torch.Tensor) -> int:
    """Half-maximum width (px) of the bump of a [64] profile through the centre columns 31-32: the run of
    columns above half the level at the centre (0 when the centre is below FG_DISTANCE). Blur keeps it."""
    level = float(profile[31:33].max())
    if level <= FG_DISTANCE:
        return 0
    above = (profile > 0.5 * level).tolist()
    left = 31 if above[31] else 32
    while left > 0 and above[left - 1]:
        left -= 1
    right = 32 if above[32] else 31
    while right < SIZE - 1 and above[right + 1]:
        right += 1
    return right - left + 1


def _features(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Colours and masks the scores and colour votes read (x: [F, 64, 64, 3])."""
    rest = x.median(dim=0).values                                              # [64, 64, 3]
    wall = rest[:4].reshape(-1, 3).median(dim=0).values                       # [3]
    d_wall = (rest - wall).norm(dim=-1)                                       # [64, 64]
    floor_rgb = rest[62:].reshape(-1, 3).median(dim=0).values                 # [3]
    top = (x[:, :4] - wall).norm(dim=-1)                                      # [F, 4, 64] every frame
    frame_fg = (x[:, 4:53] - wall).norm(dim=-1) > FG_DISTANCE                 # [F, 49, 64] above any floor
    return {"rest": rest, "wall": wall, "floor_rgb": floor_rgb, "d_wall": d_wall, "fg": d_wall > FG_DISTANCE,
            "wall_fit": (top < WALL_TOLERANCE).float().mean(), "floor": (floor_rgb - wall).norm(),
            "busy": frame_fg.float().mean(dim=(1, 2)).median()}


def family_scores(x: torch.Tensor) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Per-family scores in [0, 1] of frames x [F, 64, 64, 3] (module docstring), and the features."""
    f = _features(x)
    fg = f["fg"].float()                                                       # [64, 64]
    scene = _ramp(f["wall_fit"], 0.3, 0.6)
    floor = _ramp(f["floor"], 0.04, 0.08)
    sides = torch.cat([fg[30:39, 10:18], fg[30:39, 47:55]], dim=1).mean()
    face = _ramp(0.5 * (fg[44:53, 20:45].mean() + sides), 0.4, 0.7)
    lamp = _ramp(fg[20:35, 25:40].mean(), 0.3, 0.6)
    run = _centre_run(f["d_wall"][44:53].mean(dim=0))
    drum = _ramp(run, 26.0, 29.0) * _ramp(run, 40.0, 37.0)
    thing = _ramp(f["busy"], 0.02, 0.05)
    scores = {"impact": scene * floor * (1.0 - drum) * thing, "speaker": scene * (1.0 - floor) * face,
              "drum": scene * floor * drum, "flash": scene * (1.0 - floor) * (1.0 - face) * lamp}
    return scores, f


def _face_colour(f: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scores of FACE_COLOURS: Gaussian of the RGB distance (sigma 0.1) to the face's median colour."""
    ys, xs = torch.meshgrid(torch.arange(SIZE) + 0.5, torch.arange(SIZE) + 0.5, indexing="ij")
    disc = ((xs - 32.0) ** 2 + (ys - 34.0) ** 2 < 16.0 ** 2) & f["fg"]          # [64, 64]
    pixels = f["rest"][disc] if disc.any() else f["rest"].reshape(-1, 3)
    median = pixels.median(dim=0).values                                        # [3]
    raw = {k: float(torch.exp(-((median - torch.tensor(v)).norm() / 0.1) ** 2 / 2))
           for k, v in FACE_COLOURS.items()}
    total = sum(raw.values()) or 1.0
    return {k: v / total for k, v in raw.items()}


def _object_colour(x: torch.Tensor, f: dict[str, torch.Tensor], floor: bool) -> dict[str, float]:
    """Scores of OBJECT_COLOURS: votes of the foreground pixels of every second frame, each weighted by its
    chroma length and by how surely it is foreground (ramp of its distance from wall and floor, 0.1 -> 0.3,
    so noise around the wall colour does not vote with the wall's hue)."""
    rows = 53 if floor else SIZE                                              # the floor band never votes
    px = x[::2, :rows].reshape(-1, 3)                                         # [N, 3]
    sure = ((px - f["wall"]).norm(dim=-1) - FG_DISTANCE).div(0.2).clamp(0.0, 1.0)  # [N]
    if floor:
        sure = sure * ((px - f["floor_rgb"]).norm(dim=-1) - FG_DISTANCE).div(0.2).clamp(0.0, 1.0)
    chroma = px - px.mean(dim=-1, keepdim=True)                               # [N, 3]
    length = chroma.norm(dim=-1)
    keep = (sure > 0) & (length > MIN_CHROMA)
    chroma, weight = chroma[keep], (length * sure)[keep]
    names = list(OBJECT_COLOURS)
    ref = torch.tensor([OBJECT_COLOURS[k] for k in names])                    # [4, 3]
    ref = F.normalize(ref - ref.mean(dim=-1, keepdim=True), dim=-1)
    votes = torch.zeros(len(names))
    if len(weight):
        cos = F.normalize(chroma, dim=-1) @ ref.T                             # [M, 4]
        best = cos.max(dim=-1)
        votes.index_add_(0, best.indices, weight * best.values.clamp_min(0.0))
    total = float(votes.sum()) or 1.0
    return {k: float(v) / total for k, v in zip(names, votes)}


def _best_two(scores: dict[str, float]) -> tuple[str, float]:
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    return ranked[0][0], ranked[0][1] - (ranked[1][1] if len(ranked) > 1 else 0.0)


def classify_frames(frames: torch.Tensor) -> SceneGuess:
    """Frames [F, H, W, 3] in [0, 1] of one clip -> the family and colour it shows (module docstring)."""
    with thread_budget(0):  # a few ops per pixel: small work, one thread (threads.py) unless overridden
        x = _prepare(frames)
        scores, f = family_scores(x)
        family, margin = _best_two(scores)
        floor = _ramp(f["floor"], 0.04, 0.08) >= 0.5
        colours = _face_colour(f) if family == "speaker" else _object_colour(x, f, floor)
    colour, colour_margin = _best_two(colours)
    return SceneGuess(family, colour, scores, colours, margin, colour_margin)


# ----------------------------------------------------------------------------------------------
# What a prompt asks for
# ----------------------------------------------------------------------------------------------

_STOP = {"a", "an", "the", "and", "on", "off", "up", "down", "by", "with", "of", "in", "at", "to", "being",
         "something"}


def _words(phrases: object) -> set[str]:
    """Every word of a (nested) table of phrases."""
    if isinstance(phrases, str):
        return set(re.findall(r"[a-z']+", phrases.lower()))
    items = phrases.values() if isinstance(phrases, dict) else phrases
    return set().union(*(_words(p) for p in items))


def _family_words() -> dict[str, dict[str, float]]:
    """Word -> weight per family: 1 for words only its caption tables use, 1/n for a word n families share
    ("square" names a box and a square lamp), plus plurals; function words say nothing."""
    raw = {"impact": _words(cap.SHAPE_NOUNS) | _words(cap.BOUNCE_VERBS) | {"bounce", "bounces", "lands"},
           "speaker": _words(cap.FACE_NOUNS) | _words(cap.TALK_VERBS) | {"voice", "mouth"},
           "drum": _words(cap.DRUM_VERBS) | _words(cap.DRUM_SOUNDS) | {"drum", "drumming", "mallet"},
           "flash": _words(cap.LIGHT_NOUNS) | _words(cap.LIGHT_VERBS) | _words(cap.BEEP_SOUNDS) | {"beep"}}
    out: dict[str, dict[str, float]] = {}
    for family, words in raw.items():
        share = {w: 1.0 / sum(w in other for other in raw.values()) for w in words - _STOP}
        out[family] = share | {w + "s": v for w, v in share.items() if not w.endswith("s")}
    return out


FAMILY_WORDS = _family_words()
STILL_WORDS = {"still", "silent", "silence", "quiet", "motionless", "resting", "untouched", "closed"}
STILL_PHRASES = ("no sound", "nothing moves", "nothing to hear", "switched off", "turned off", "at rest",
                 "not moving")
_PLACE_AFTER = {"wall", "walls", "floor", "floors", "background", "ground"}
_PLACE_BEFORE = {"pale", "dark", "light"}


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def family_of_caption(text: str) -> str | None:
    """The family a prompt asks for: the most weight of its words (FAMILY_WORDS), ties to the earliest word,
    then to the order of FAMILIES ("a yellow square resting" is a box); None without any family word."""
    weight: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, word in enumerate(_tokens(text)):
        for family, words in FAMILY_WORDS.items():
            if word in words:
                weight[family] = weight.get(family, 0.0) + words[word]
                first.setdefault(family, i)
    if not weight:
        return None
    return min(weight, key=lambda k: (-weight[k], first[k], FAMILIES.index(k)))


def colours_of_caption(text: str) -> tuple[str, ...]:
    """Object/face colour words of a prompt in order, skipping the wall's and floor's ("a pale green wall",
    "a dark grey floor", "a green floor")."""
    tokens, named = _tokens(text), set(OBJECT_COLOURS) | set(FACE_COLOURS)
    found = []
    for i, word in enumerate(tokens):
        if word not in named or (i > 0 and tokens[i - 1] in _PLACE_BEFORE):
            continue
        if _PLACE_AFTER & set(tokens[i + 1:i + 3]):
            continue
        found.append(word)
    return tuple(dict.fromkeys(found))


def colour_of_caption(text: str) -> str | None:
    """The first object/face colour a prompt names (`colours_of_caption`), or None."""
    found = colours_of_caption(text)
    return found[0] if found else None


def is_still_caption(text: str) -> bool:
    """Whether a prompt asks for a still, silent scene (STILL_WORDS / STILL_PHRASES)."""
    lowered = " ".join(_tokens(text))
    return bool(STILL_WORDS & set(lowered.split())) or any(p in lowered for p in STILL_PHRASES)
