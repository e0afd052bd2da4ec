"""Evaluation of trained models on held-out synthetic prompts, and the demo-scale ablation (issue 5).

Held-out clips come from the stream HELDOUT_SEED (training streams use the run's --seed, 0 for the demo),
so no evaluated prompt, transcript or timing was trained on. For each clip the model generates a clip
from its captions and transcript (joint mode, generation seed = clip index), and the metrics
(`metrics.evaluate_clips`) compare the generated picture with the generated sound, beside the
shuffled-pair baseline.

Ablation cells (paper Table 3 at demo scale): (i) Cross-Task Synergy vs joint-only training, measured at
several step counts (the paper's Fig. 3 claim is faster alignment learning); (ii) GLDI vs Ovi-style global
cross-attention at equal steps; (iii) plain text CFG vs SyncCFG over scales. Every training run and every
evaluation is cached in the output folder (a rerun continues where it stopped).
"""
from __future__ import annotations

import argparse
import functools
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..build import load_pipeline
from ..metrics import AVPair, SyncConfig, SyncReport, evaluate_clips, to_json
from ..model.conditioning import HarmonyDenoiser, stack
from ..pipeline import HarmonyPipeline, Layout, Request, Sampling
from ..sampling import UNCOND, Guidance, SyncAnchors, SyncCFG, TextCFG, joint, plan_passes, sample, sigmas_for
from .synthetic import KINDS, Clip, SceneSpec, stream_clip

log = logging.getLogger(__name__)

HELDOUT_SEED = 999_331
GUIDANCE_KINDS = ("sync", "text")


@dataclass(frozen=True)
class EvalSettings:
    """One evaluation: `clips` held-out prompts (kinds alternate), generated `batch` at a time with
    `guidance` ("sync" = SyncCFG, "text" = plain CFG against the empty prompt) at `scale` (video, audio)
    or, when None, the model's own defaults. steps None = the model's default."""

    clips: int = 64
    batch: int = 16
    guidance: str = "sync"
    scale: tuple[float, float] | None = None
    steps: int | None = None
    seed: int = HELDOUT_SEED

    def __post_init__(self) -> None:
        if self.guidance not in GUIDANCE_KINDS:
            raise ValueError(f"guidance {self.guidance!r} is not one of {GUIDANCE_KINDS}")
        if self.clips < 2 or self.batch < 1:
            raise ValueError(f"need clips >= 2 (a shuffled baseline) and batch >= 1, got {self.clips}, "
                             f"{self.batch}")


EVENT_KINDS = tuple(k for k in KINDS if k != "still")   # sync needs events: still scenes have none


def heldout_clips(n: int, seed: int = HELDOUT_SEED, spec: SceneSpec = SceneSpec()) -> list[Clip]:
    """The first `n` clips of the held-out stream (the scene kinds with events, in turn)."""
    return [stream_clip(seed, i, spec, EVENT_KINDS) for i in range(n)]


def _request(pipe: HarmonyPipeline, clip: Clip, settings: EvalSettings, seed: int) -> Request:
    d = pipe.model.cfg.defaults
    sv, sa = settings.scale if settings.scale is not None else (d.sync_video_scale, d.sync_audio_scale)
    if settings.guidance == "text":
        guidance = Guidance(sync=SyncCFG(1.0, 1.0), text=TextCFG(sv, sa))
    else:
        guidance = Guidance(sync=SyncCFG(sv, sa), text=TextCFG(1.0, 1.0))
    return pipe.resolve(Request(prompt=clip.video_caption, audio_prompt=clip.audio_caption,
                                transcript=clip.transcript, num_frames=clip.frames.shape[0],
                                height=clip.frames.shape[1], width=clip.frames.shape[2], fps=str(clip.fps),
                                sampling=Sampling(steps=settings.steps, seed=seed), guidance=guidance))


@torch.no_grad()
def sample_requests(pipe: HarmonyPipeline, reqs: Sequence[Request]) -> tuple[torch.Tensor, torch.Tensor, Layout]:
    """Joint-mode latents of several requests of one size and one guidance in ONE sampler call:
    (video [B, Cv, Tv, h, w], audio [B, Ca, Ta], layout).

    Same as one `pipe.sample(r)` per request: noise drawn per request from its own seed, SyncCFG anchors =
    silence and a mid-grey still, as the pipeline builds them."""
    reqs = [pipe.resolve(r) for r in reqs]
    r0, lay = reqs[0], pipe.layout(reqs[0])
    mode = joint(lay.video_frames, lay.audio_frames)
    passes = {p for step in plan_passes(r0.guidance, mode, r0.steps) for p in step}
    anchors = SyncAnchors(
        mute_audio=pipe.audio_codec.silence_latent(lay.audio_frames),
        static_video=pipe.video_codec.static_latent(None, lay.num_frames, lay.height, lay.width))
    positive = functools.reduce(stack, [pipe.conditioning(r) for r in reqs])
    negative = pipe.conditioning(r0.with_batch(len(reqs)), negative=True) if UNCOND in passes else None
    noise = [pipe.initial_noise(r, lay) for r in reqs]               # per request, from its own seed
    noise_v = torch.cat([v for v, _ in noise])                      # [B, Cv, Tv, h, w]
    noise_a = torch.cat([a for _, a in noise])                      # [B, Ca, Ta]
    s = r0.sampling
    video, audio = sample(HarmonyDenoiser(pipe.model, positive, negative), noise_v, noise_a,
                          mode, replace(r0.guidance, anchors=anchors),
                          sigmas_for(s.schedule, s.steps, s.shift), solver=s.solver)
    return video, audio, lay


def sample_latents(pipe: HarmonyPipeline, clips: Sequence[Clip], settings: EvalSettings,
                   first_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Layout]:
    """`sample_requests` for held-out clips' captions/transcripts, generation seed first_seed + i."""
    return sample_requests(pipe, [_request(pipe, c, settings, first_seed + i) for i, c in enumerate(clips)])


def generate_pairs(pipe: HarmonyPipeline, clips: Sequence[Clip], settings: EvalSettings,
                   first_seed: int = 0) -> list[AVPair]:
    """`sample_latents` decoded into clips the metrics read (frames [F, H, W, 3], wave [L])."""
    video, audio, lay = sample_latents(pipe, clips, settings, first_seed)
    result = pipe.decode(video, audio, lay)
    return [AVPair(result.frames[i], result.fps, result.wave[i], result.sample_rate,
                   name=f"heldout{first_seed + i}", kind=clip.kind) for i, clip in enumerate(clips)]


def evaluate_pipeline(pipe: HarmonyPipeline, settings: EvalSettings = EvalSettings(),
                      sync: SyncConfig = SyncConfig()) -> SyncReport:
    """Generate `settings.clips` held-out clips and measure them (with the shuffled baseline)."""
    clips = heldout_clips(settings.clips, settings.seed)
    pairs: list[AVPair] = []
    for start in range(0, len(clips), settings.batch):
        pairs += generate_pairs(pipe, clips[start:start + settings.batch], settings, first_seed=start)
        log.info("generated %d/%d held-out clips", len(pairs), len(clips))
    return evaluate_clips(pairs, sync)


def evaluate_file(model_path: str | Path, settings: EvalSettings, cache: Path | None = None) -> dict:
    """Evaluate a model file; the report's JSON is cached at `cache` (reused when present)."""
    if cache is not None and cache.is_file():
        return json.loads(cache.read_text())
    pipe = load_pipeline(model_path)
    report = json.loads(to_json(evaluate_pipeline(pipe, settings)))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(report))
    return report


# ------------------------------------------------------------------------------------------------
# The ablation command
# ------------------------------------------------------------------------------------------------
CELLS = {   # name -> (interaction override, task set); all else is the demo recipe
    "global_joint": ("global", "joint_only"),    # paper Table 3 baseline: Ovi-style global cross-attention
    "gldi_joint": (None, "joint_only"),          # + GLDI
    "gldi_cts": (None, "cts"),                   # + Cross-Task Synergy (the demo model's recipe)
}
SWEEP_SEED = HELDOUT_SEED + 1   # the stream the demo's default scales were chosen on (not the report's)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ablate`."""
    p.add_argument("--out", default="out/ablation", help="folder for runs, cached evaluations and the report")
    p.add_argument("--steps", type=int, default=3000, help="training steps of every cell (demo recipe)")
    p.add_argument("--curve-steps", default="500,1000,2000,3000",
                   help="snapshots evaluated for sync vs steps")
    p.add_argument("--stop-at", type=int, default=None,
                   help="train and compare the cells up to this step only (the schedule still spans --steps)")
    p.add_argument("--batch", type=int, default=8, help="training clips per step")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the demo recipe's)")
    p.add_argument("--ema", type=float, default=None, help="EMA decay (default: the demo recipe's)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every cell")
    p.add_argument("--clips", type=int, default=64, help="held-out clips per evaluated cell")
    p.add_argument("--eval-batch", type=int, default=16, help="clips generated per sampler call")
    p.add_argument("--scales", default="1,1.5,2,3", help="guidance scales of the CFG vs SyncCFG sweep")
    p.add_argument("--run", action="append", default=[], metavar="CELL=DIR",
                   help=f"use an existing run folder for a cell ({', '.join(CELLS)}), e.g. the demo run")
    p.add_argument("--cells", default=",".join(CELLS), help="cells to train/evaluate")
    p.add_argument("--skip-train", action="store_true", help="evaluate only what is already trained")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--report", default=None, help="write the markdown tables here (default OUT/ablation.md)")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _train_cell(name: str, folder: Path, args: argparse.Namespace, snapshot_every: int) -> None:
    from .data import DataConfig
    from .losses import LossConfig
    from .trainer import STATE_FILE, TrainConfig, Trainer
    interaction, tasks = CELLS[name]
    recipe = {k: v for k, v in (("lr", args.lr), ("ema", args.ema)) if v is not None}
    config = TrainConfig(interaction=interaction, steps=args.steps, seed=args.seed, save_every=snapshot_every,
                         loss=LossConfig(tasks=tasks), data=DataConfig(seed=args.seed, batch=args.batch),
                         **recipe)
    trainer = Trainer(config, folder)
    if (folder / STATE_FILE).is_file():
        trainer.resume()
    log.info("ablation cell %s: training %s from step %d to %d", name, folder, trainer.step, args.steps)
    trainer.run(snapshot_every=snapshot_every, stop_at=args.stop_at)


def run(args: argparse.Namespace) -> int:
    """Train the missing cells, evaluate every needed (cell, steps, guidance) and write the report."""
    from .ablate_report import markdown
    from .trainer import snapshot_name, stop_step
    if args.threads:
        torch.set_num_threads(args.threads)
    out, curve = Path(args.out), [int(x) for x in args.curve_steps.split(",") if x.strip()]
    cells = [c for c in args.cells.split(",") if c]
    unknown = set(cells) - set(CELLS)
    if unknown:
        raise ValueError(f"unknown cells {sorted(unknown)}; accepted: {sorted(CELLS)}")
    given = dict(item.split("=", 1) for item in args.run)
    folders = {c: Path(given.get(c, out / c)) for c in cells}
    final = stop_step(args.steps, args.stop_at)
    curve = [n for n in curve if n <= final]
    every = functools.reduce(math.gcd, curve + [final])             # snapshots hit every curve step
    for cell in cells:
        if not args.skip_train and not (folders[cell] / snapshot_name(final)).is_file():
            _train_cell(cell, folders[cell], args, every)

    def evaluate(cell: str, steps: int, guidance: str = "sync", scale: float | tuple[float, float] = 1.0,
                 ) -> dict | None:
        if cell not in folders or not (folders[cell] / snapshot_name(steps)).is_file():
            return None
        sv, sa = scale if isinstance(scale, tuple) else (scale, scale)
        settings = EvalSettings(clips=args.clips, batch=args.eval_batch, guidance=guidance, scale=(sv, sa))
        name = f"{sv:g}" if sv == sa else f"v{sv:g}_a{sa:g}"
        cache = out / "eval" / f"{cell}_{steps}_{guidance}_{name}_{args.clips}.json"
        return evaluate_file(folders[cell] / snapshot_name(steps), settings, cache)

    sections = _sections(evaluate, cells, curve, final, _floats(args.scales))
    schedule = "" if final == args.steps else f" of a {args.steps}-step schedule"
    text = markdown(sections, [f"Held-out stream seed {HELDOUT_SEED}, {args.clips} clips per cell, {final} "
                               f"training steps{schedule} per cell (demo recipe), 95% bootstrap CIs."])
    report = Path(args.report) if args.report else out / "ablation.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(text)
    print(text, flush=True)  # noqa: T201  (CLI output: the tables)
    log.info("wrote %s", report)
    return 0


def _sections(evaluate: Callable[..., dict | None], cells: list[str], curve: list[int], steps: int,
              scales: list[float]) -> list[tuple[str, str]]:
    from ..config import preset
    from .ablate_report import steps_table, sweep_table, table3
    d = preset("demo").defaults
    rows = [("Ovi-style global, joint only", "", "", "", evaluate("global_joint", steps)),
            ("GLDI, joint only", "x", "", "", evaluate("gldi_joint", steps)),
            ("GLDI + CTS", "x", "x", "", evaluate("gldi_cts", steps)),
            (f"GLDI + CTS + SyncCFG {d.sync_video_scale:g} / {d.sync_audio_scale:g} (the demo's default)", "x", "x", "x",
             evaluate("gldi_cts", steps, "sync", (d.sync_video_scale, d.sync_audio_scale)))]
    runs = {c: {n: evaluate(c, n) for n in curve} for c in ("gldi_joint", "gldi_cts") if c in cells}
    runs = {c: {n: r for n, r in v.items() if r is not None} for c, v in runs.items()}
    text = {s: evaluate("gldi_cts", steps, "text", s) for s in scales if s != 1.0}
    sync = {s: evaluate("gldi_cts", steps, "sync", s) for s in scales}
    return [("Table 3 at demo scale (no guidance unless marked)", table3(rows)),
            ("Sync against training steps (no guidance)", steps_table(curve, runs)),
            ("Plain CFG vs SyncCFG (GLDI + CTS model)",
             sweep_table(scales, {k: v for k, v in text.items() if v}, {k: v for k, v in sync.items() if v}))]
