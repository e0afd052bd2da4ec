"""Tables of the demo evaluation (eval_demo.py) in markdown, paired comparisons of two evaluations on the same
prompts and seeds (e.g. SyncCFG on / off), and the contact sheet of generated clips."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..media import contact_sheet, read_video, write_png
from ..metrics.report import bootstrap_stat
from ..pipeline import HarmonyPipeline, Request, Sampling

DIRECTION_LABELS = {"joint": "joint (text -> audio + video)", "a2v": "audio-driven video",
                    "v2a": "video-driven audio"}


def _ci(stat: Sequence[float], digits: int = 2) -> str:
    mean, lo, hi = stat[:3]
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def sync_table(result: dict) -> str:
    """Per direction and input kind: best correlation within +-1 frame and lag 0, beside mismatched pairs."""
    lines = ["| direction | inputs | n | within ±1 frame | lag 0 | mismatched, within ±1 | mismatched, lag 0 |",
             "|---|---|---|---|---|---|---|"]
    for direction, label in DIRECTION_LABELS.items():
        if direction not in result:
            continue
        sync = result[direction]["sync"]
        for group, stats in sync["summary"].items():
            shuffled = sync["shuffled"].get(group)
            mis = (_ci(shuffled["within_one"]), _ci(shuffled["lag0"])) if shuffled else ("", "")
            name = label if group == "all" else ""
            lines.append(f"| {name} | {group} | {stats['lag0'][3]} | {_ci(stats['within_one'])} | "
                         f"{_ci(stats['lag0'])} | {mis[0]} | {mis[1]} |")
    return "\n".join(lines)


def adherence_table(result: dict) -> str:
    """Prompt classifier hit rates and the still prompts' loudness / motion against the joint clips."""
    lines = ["| prompts | n | family recovered | colour recovered |", "|---|---|---|---|"]
    for key in ("joint", "still"):
        if key in result:
            r = result[key]
            lines.append(f"| {key} | {r['family'][3]} | {_ci(r['family'])} | {_ci(r['colour'])} |")
    if "still" in result:
        s = result["still"]["silence"]
        lines += ["", "| still prompts vs joint clips | mean ratio [95% CI] | max ratio | share within target |",
                  "|---|---|---|---|",
                  f"| audio RMS / median RMS (target <= 0.1) | {_ci(s['rms']['ratio'], 3)} | "
                  f"{s['rms']['max_ratio']:.3f} | {s['rms']['share_within']:.2f} |",
                  f"| motion / median motion (target <= 0.2) | {_ci(s['motion']['ratio'], 3)} | "
                  f"{s['motion']['max_ratio']:.3f} | {s['motion']['share_within']:.2f} |"]
    return "\n".join(lines)


def loudness_table(results: dict[str, dict]) -> str:
    """Median RMS, max peak and clipped clips of each named evaluation and direction."""
    lines = ["| setting | direction | median RMS | max peak | clips with clipped samples |", "|---|---|---|---|---|"]
    for name, result in results.items():
        for direction in ("joint", "v2a"):
            if direction in result:
                loud = result[direction]["loudness"]
                lines.append(f"| {name} | {direction} | {loud['median_rms']:.3f} | {loud['max_peak']:.3f} | "
                             f"{loud['clipped_clips']} |")
    return "\n".join(lines)


def paired(a: dict, b: dict, direction: str, key: str = "within_one") -> list[float]:
    """Mean [95% CI] of a - b over clips present in both (same prompts and seeds), n."""
    rows_a = {r["name"]: r[key] for r in a[direction]["sync"]["rows"]}
    rows_b = {r["name"]: r[key] for r in b[direction]["sync"]["rows"]}
    diffs = [rows_a[n] - rows_b[n] for n in sorted(rows_a) if n in rows_b]
    stat = bootstrap_stat(diffs)
    return [stat.mean, stat.lo, stat.hi, stat.n]


def paired_table(a: dict, b: dict, names: tuple[str, str]) -> str:
    """`names[0]` minus `names[1]` per direction, within +-1 frame and lag 0, paired over the same clips."""
    lines = [f"| direction | n | {names[0]} within ±1 | {names[1]} within ±1 | difference [95% CI] | "
             f"lag-0 difference [95% CI] |", "|---|---|---|---|---|---|"]
    for direction, label in DIRECTION_LABELS.items():
        if direction in a and direction in b:
            d1, d0 = paired(a, b, direction), paired(a, b, direction, "lag0")
            sa = a[direction]["sync"]["summary"]["all"]["within_one"]
            sb = b[direction]["sync"]["summary"]["all"]["within_one"]
            lines.append(f"| {label} | {d1[3]} | {_ci(sa)} | {_ci(sb)} | {_ci(d1, 3)} | {_ci(d0, 3)} |")
    return "\n".join(lines)


def load(folder: str | Path) -> dict:
    return json.loads((Path(folder) / "summary.json").read_text())


def sheet(clips: Sequence[Path], out: Path, frames_per_clip: int = 6, overwrite: bool = True) -> Path:
    """A PNG with one row per clip: `frames_per_clip` frames evenly spread over it, upscaled 2x."""
    clips_frames = [read_video(path, as_float=True)[0] for path in clips]           # [F, H, W, 3] in [0, 1]
    return _write_sheet(clips_frames, out, frames_per_clip, overwrite)


def _write_sheet(clips: Sequence[torch.Tensor], out: Path, frames_per_clip: int, overwrite: bool) -> Path:
    """One row per clip ([F, H, W, 3] in [0, 1]): `frames_per_clip` frames evenly spread over it, 2x."""
    tiles = []
    for frames in clips:
        idx = torch.linspace(0, frames.shape[0] - 1, frames_per_clip).round().long()
        tiles += [frames[i] for i in idx]
    write_png(out, contact_sheet(tiles, columns=frames_per_clip, scale=2, gap=2), overwrite=overwrite)
    return out


# Twelve prompts in a user's words (none is a training caption): four families, colours, synonyms, still.
SHEET_PROMPTS = (
    ("a red ball bouncing on a brown floor", "a mid-pitched ping each time it lands"),
    ("a blue cube hopping on a black floor", "a low knock"),
    ("a yellow pyramid jumping", "a bright clink"),
    ("a green drum being hit with a stick", "a booming drum"),
    ("a red drum struck by a mallet in front of a beige wall", "drum hits"),
    ("a blue lamp blinking in front of a dark grey wall", "low beeps"),
    ("a yellow light flashing", "very high beeping"),
    ("a pink cartoon face talking", "a woman's voice speaking"),
    ("an orange face chanting in front of a pale blue wall", "a deep voice chanting"),
    ("a white smiley face speaking", "a child's voice saying something"),
    ("a green ball resting on the floor, silent and still", "silence"),
    ("a yellow cartoon face with a closed mouth, silent and still", "no sound"),
)


def prompt_sheet(pipe: HarmonyPipeline, out: Path, seed: int = 0, frames_per_clip: int = 6,
                 prompts: Sequence[tuple[str, str]] = SHEET_PROMPTS, steps: int | None = None) -> Path:
    """Generate one clip per prompt (the checkpoint's defaults, seed `seed`) and write their contact sheet:
    a row per prompt, `frames_per_clip` frames evenly spread over the clip."""
    clips = [pipe.generate(Request(prompt=video, audio_prompt=audio,
                                   sampling=Sampling(steps=steps, seed=seed))).frames[0]
             for video, audio in prompts]
    return _write_sheet(clips, out, frames_per_clip, overwrite=True)
