"""The demo model's evaluation (issue 14): sync in all three directions, prompt adherence, silence, loudness.

Every generated clip is written as an mp4 (what a user gets) and measured from that file exactly as
`python -m harmony_core eval-sync <folder>/*.mp4` measures it, so each table can be re-checked by hand:
- joint: `clips` prompts of the stream `seed` (families impact / speaker / drum / flash in turn, never
  trained on: training uses stream 0), generation seed = index;
- still: `still` silent/still prompts of the stream `seed + 1`: their RMS and motion against the joint
  clips' medians;
- a2v: `clips` driving sounds of eval_inputs.py (clicks, tone bursts, syllable trains, speech), video
  generated; v2a: `clips` driving pictures (flashing, jumping, bouncing, talking face), audio generated;
- the prompt classifier (classify.py) reads family and colour from each joint and still clip;
- loudness (RMS, peak, clipped samples) of every generated wave, before the mp4's AAC encoder.
Each sync figure is beside its mismatched-pair baseline (picture of clip i with sound of clip j != i).
"""
from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import torch

from ..config import GenerationDefaults
from ..media import read_audio, read_video, write_mp4
from ..metrics import AVPair, SyncConfig, clipped_fraction, evaluate_clips, motion_energy, peak, rms
from ..metrics.report import bootstrap_stat
from ..pipeline import HarmonyPipeline, Media, Request, Sampling
from ..request import default_guidance
from ..sampling import Guidance, Rescale, SyncCFG
from . import classify
from .ablate import EVENT_KINDS, sample_requests
from .eval_inputs import DrivingItem, audio_items, video_items
from .synthetic import Clip, SceneSpec, stream_clip

log = logging.getLogger(__name__)

EVAL_SEED = 2_026_1207          # joint prompts; still prompts use EVAL_SEED + 1 (training streams: --seed)
DRIVE_SEED = 7_000_000          # driving media of eval_inputs.py
FAMILIES = EVENT_KINDS   # impact, speaker, drum, flash
DIRECTIONS = ("joint", "still", "a2v", "v2a")
RECOGNISED = 0.2   # classify.py: grey, black and noise clips score below this for every family


@dataclass(frozen=True)
class GuidanceOverride:
    """Guidance settings that replace the checkpoint's per-mode defaults (None keeps the default)."""

    sync_video: float | None = None
    sync_audio: float | None = None
    rescale_video: float | None = None
    rescale_audio: float | None = None
    text_video: float | None = None
    text_audio: float | None = None

    def apply(self, d: GenerationDefaults, mode: str) -> Guidance:
        g = default_guidance(d, mode)
        sync = SyncCFG(_pick(self.sync_video, g.sync.video_scale), _pick(self.sync_audio, g.sync.audio_scale),
                       g.sync.start, g.sync.end)
        rescale = Rescale(_pick(self.rescale_video, g.rescale.video), _pick(self.rescale_audio, g.rescale.audio))
        text = replace(g.text, video_scale=_pick(self.text_video, g.text.video_scale),
                       audio_scale=_pick(self.text_audio, g.text.audio_scale))
        return replace(g, sync=sync, rescale=rescale, text=text)


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class EvalPlan:
    """What to generate: `clips` per sync direction, `still` silent prompts, `batch` joint prompts per
    sampler call; `guidance`: changes to the checkpoint's per-mode guidance defaults; `steps` None: the
    checkpoint's; `shift` None: the checkpoint's."""

    clips: int = 40
    still: int = 20
    batch: int = 8
    seed: int = EVAL_SEED
    drive_seed: int = DRIVE_SEED
    directions: tuple[str, ...] = DIRECTIONS
    guidance: GuidanceOverride = GuidanceOverride()
    steps: int | None = None
    shift: float | None = None


def joint_prompts(n: int, seed: int = EVAL_SEED) -> list[Clip]:
    return [stream_clip(seed, i, SceneSpec(), FAMILIES) for i in range(n)]


def still_prompts(n: int, seed: int = EVAL_SEED) -> list[Clip]:
    return [stream_clip(seed + 1, i, SceneSpec(), ("still",)) for i in range(n)]


def text_request(clip: Clip | DrivingItem, seed: int, guidance: Guidance, mode: str = "joint",
                 media: Media = Media(), steps: int | None = None, shift: float | None = None) -> Request:
    prompt = getattr(clip, "video_caption", None) or clip.prompt
    audio = getattr(clip, "audio_caption", None) or clip.audio_prompt
    return Request(mode=mode, prompt=prompt, audio_prompt=audio, transcript=clip.transcript, media=media,
                   sampling=Sampling(steps=steps, shift=shift, seed=seed), guidance=guidance)


def _save(folder: Path, name: str, frames: torch.Tensor, fps: Fraction, wave: torch.Tensor, sr: int) -> dict:
    """Write one clip and return its loudness figures (of the wave before AAC)."""
    write_mp4(folder / f"{name}.mp4", frames, fps, wave[None], sr, overwrite=True)
    return {"name": name, "rms": rms(wave), "peak": peak(wave), "clipped": clipped_fraction(wave),
            "motion": float(motion_energy(frames)[1:].mean())}


def _generate_joint(pipe: HarmonyPipeline, clips: Sequence[Clip], plan: EvalPlan, folder: Path,
                    first_seed: int) -> list[dict]:
    rows = []
    for start in range(0, len(clips), plan.batch):
        part = clips[start:start + plan.batch]
        guidance = plan.guidance.apply(pipe.model.cfg.defaults, "joint")
        reqs = [text_request(c, first_seed + start + i, guidance, steps=plan.steps, shift=plan.shift) for i, c in enumerate(part)]
        video, audio, lay = sample_requests(pipe, reqs)
        res = pipe.decode(video, audio, lay)
        for i, clip in enumerate(part):
            guess = classify.classify_frames(res.frames[i])
            row = _save(folder, f"{start + i:03d}_{clip.kind}", res.frames[i], res.fps, res.wave[i],
                        res.sample_rate)
            # a clip that shows nothing the classifier recognises (every family score < 0.2) is a miss
            seen = max(guess.family_scores.values()) >= RECOGNISED
            row.update(prompt=clip.video_caption, kind=clip.kind, family=guess.family if seen else "none",
                       colour=guess.colour if seen else "none",
                       want_family=classify.family_of_caption(clip.video_caption),
                       want_colour=list(classify.colours_of_caption(clip.video_caption)))
            rows.append(row)
        log.info("%s: %d/%d", folder.name, len(rows), len(clips))
    return rows


def _generate_driven(pipe: HarmonyPipeline, items: Sequence[DrivingItem], plan: EvalPlan, folder: Path,
                     mode: str) -> list[dict]:
    rows = []
    for i, item in enumerate(items):
        if mode == "audio_driven":
            media = Media(audio=item.wave)
        else:
            media = Media(video=(item.frames * 2 - 1).permute(3, 0, 1, 2).contiguous())   # [3, F, H, W]
        guidance = plan.guidance.apply(pipe.model.cfg.defaults, mode)
        res = pipe.generate(text_request(item, plan.drive_seed + i, guidance, mode, media, plan.steps, plan.shift))
        row = _save(folder, f"{i:03d}_{item.kind}", res.frames[0], res.fps, res.wave[0], res.sample_rate)
        row.update(prompt=item.prompt, kind=item.kind)
        rows.append(row)
        log.info("%s: %d/%d", folder.name, len(rows), len(items))
    return rows


def measure_folder(folder: Path, kinds: Sequence[str]) -> dict:
    """eval-sync over the folder's mp4s (sorted): the sync report as JSON-able dict."""
    pairs = []
    for path, kind in zip(sorted(folder.glob("*.mp4")), kinds):
        frames, fps = read_video(path)
        wave, sr = read_audio(path, mono=True)
        pairs.append(AVPair(frames=frames, fps=fps, wave=wave[0], sample_rate=sr, name=path.name, kind=kind))
    report = evaluate_clips(pairs, SyncConfig())
    return {"summary": _stats(report.summary), "shuffled": _stats(report.shuffled_summary),
            "rows": [{"name": r.name, "lag0": r.lag0, "within_one": r.within_one, "best_lag": r.best_lag}
                     for r in report.rows]}


def _stats(summary: dict) -> dict:
    return {group: {k: [s.mean, s.lo, s.hi, s.n] for k, s in stats.items()} for group, stats in summary.items()}


def _share(rows: list[dict], key: str) -> list:
    """Share of clips whose classified `key` is what the prompt asks: its family, or one of its colours (a
    prompt may name two objects). Prompts that name none are left out."""
    def hit(row: dict) -> bool:
        want = row[f"want_{key}"]
        return row[key] in want if isinstance(want, list) else row[key] == want

    hits = [float(hit(r)) for r in rows if r.get(f"want_{key}")]
    stat = bootstrap_stat(hits)
    return [stat.mean, stat.lo, stat.hi, stat.n]


def _silence(still: list[dict], reference: list[dict]) -> dict:
    """Still clips' RMS and motion as multiples of the joint clips' medians (mean [CI], max)."""
    out = {}
    for key in ("rms", "motion"):
        median = statistics.median(r[key] for r in reference)
        ratios = [r[key] / median for r in still]
        stat = bootstrap_stat(ratios)
        out[key] = {"median_reference": median, "ratio": [stat.mean, stat.lo, stat.hi, stat.n],
                    "max_ratio": max(ratios), "share_within": sum(
                        x <= (0.1 if key == "rms" else 0.2) for x in ratios) / len(ratios)}
    return out


def _loudness(rows: list[dict]) -> dict:
    return {"median_rms": statistics.median(r["rms"] for r in rows), "max_peak": max(r["peak"] for r in rows),
            "clipped_clips": sum(r["clipped"] > 0 for r in rows), "clipped_fraction_max": max(
                r["clipped"] for r in rows)}


def evaluate_demo(pipe: HarmonyPipeline, out: Path, plan: EvalPlan = EvalPlan()) -> dict:
    """Generate, write and measure everything `plan` names; returns (and writes out/summary.json) the
    figures."""
    result: dict = {"plan": {"clips": plan.clips, "still": plan.still, "seed": plan.seed,
                             "drive_seed": plan.drive_seed}}
    joint_rows: list[dict] = []
    if "joint" in plan.directions or "still" in plan.directions:
        clips = joint_prompts(plan.clips, plan.seed)
        joint_rows = _generate_joint(pipe, clips, plan, _folder(out, "joint"), 0)
        result["joint"] = {"sync": measure_folder(out / "joint", [c.kind for c in clips]),
                           "family": _share(joint_rows, "family"), "colour": _share(joint_rows, "colour"),
                           "loudness": _loudness(joint_rows), "rows": joint_rows}
    if "still" in plan.directions:
        still = still_prompts(plan.still, plan.seed)
        rows = _generate_joint(pipe, still, plan, _folder(out, "still"), 10_000)
        result["still"] = {"silence": _silence(rows, joint_rows), "family": _share(rows, "family"),
                           "colour": _share(rows, "colour"), "rows": rows}
    for direction, items, mode in (("a2v", audio_items, "audio_driven"), ("v2a", video_items, "video_driven")):
        if direction in plan.directions:
            given = items(plan.clips, plan.drive_seed)
            rows = _generate_driven(pipe, given, plan, _folder(out, direction), mode)
            result[direction] = {"sync": measure_folder(out / direction, [g.kind for g in given]),
                                 "loudness": _loudness(rows), "rows": rows}
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    return result


def _folder(out: Path, name: str) -> Path:
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.mp4"):   # a rerun measures only its own clips
        old.unlink()
    return folder


def headline(result: dict) -> dict:
    """The figures issue 14 sets targets for, from `evaluate_demo`'s result: mean [lo, hi] (n)."""
    out: dict = {}
    for direction in ("joint", "a2v", "v2a"):
        if direction in result:
            sync = result[direction]["sync"]
            out[direction] = {"within_one": sync["summary"]["all"]["within_one"],
                              "lag0": sync["summary"]["all"]["lag0"],
                              "mismatched_within_one": sync["shuffled"]["all"]["within_one"],
                              "median_rms": result[direction]["loudness"]["median_rms"],
                              "clipped_clips": result[direction]["loudness"]["clipped_clips"]}
    if "joint" in result:
        out["joint"].update(family=result["joint"]["family"], colour=result["joint"]["colour"])
    if "still" in result:
        out["still"] = {k: result["still"][k] for k in ("silence", "family", "colour")}
    return out
