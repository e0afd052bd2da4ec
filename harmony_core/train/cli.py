"""Command-line front ends: `python -m harmony_core train ...` and `python -m harmony_core ablate ...`.

`harmony_core/cli.py` adds these subcommands with add_train_arguments / run_train and
add_ablate_arguments / run_ablate. Distributed training: `torchrun --nproc_per_node N -m harmony_core
train ...` (each rank reads WORLD_SIZE / RANK from the environment; rank 0 logs and saves).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ..config import PREDICTIONS
from .data import DataConfig
from .losses import SCHEDULES, SIGMA_DISTRIBUTIONS, TASK_SETS, VIDEO_WEIGHTINGS, LossConfig
from .synthetic import SceneSpec
from .trainer import TrainConfig, Trainer, init_distributed, stop_step

log = logging.getLogger(__name__)

SMOOTHED = ("loss", "joint_video", "joint_audio", "audio_driven", "video_driven")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `train` (defaults: the recipe of the bundled demo model, see docs/demo_model.md)."""
    d, lc = TrainConfig(), LossConfig()
    p.add_argument("--preset", default=d.preset, help="model preset (demo, tiny)")
    p.add_argument("--data", default="synthetic", choices=["synthetic"], help="training data source")
    p.add_argument("--steps", type=int, default=d.steps, help="total optimisation steps")
    p.add_argument("--out", required=True, help="run folder: train_state / model .safetensors, log.jsonl")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of model init, clip stream and noise")
    p.add_argument("--tasks", default=lc.tasks, choices=TASK_SETS, help="Cross-Task Synergy or joint only")
    p.add_argument("--task-weights", default=",".join(f"{w:g}" for w in lc.weights),
                   help="Cross-Task Synergy weights joint,audio-driven,video-driven (paper: 1,0.1,0.3; "
                        "the demo model: 1,0.7,0.7)")
    p.add_argument("--schedule", default=lc.schedule, choices=SCHEDULES,
                   help="sample: one task per item (prob. ~ weights); all: every task for every item")
    p.add_argument("--batch", type=int, default=DataConfig().batch, help="clips per step (per rank)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW)")
    p.add_argument("--warmup", type=int, default=d.warmup, help="linear warmup steps")
    p.add_argument("--ema", type=float, default=d.ema, help="EMA decay of the exported weights (0 = off)")
    p.add_argument("--interaction", default=None, choices=["gldi", "global", "none"],
                   help="override the preset's interaction (ablation: global = Ovi-style)")
    p.add_argument("--prediction", default=None, choices=PREDICTIONS,
                   help="override what the preset's towers predict (velocity or clean latents x0)")
    p.add_argument("--frame-noise-share", type=float, default=None,
                   help="override the share of the video noise common to all latent frames (default 0: i.i.d.)")
    p.add_argument("--sigma", default=lc.sigma, choices=SIGMA_DISTRIBUTIONS, help="base noise-level draw")
    p.add_argument("--video-weighting", default=lc.video_weighting, choices=VIDEO_WEIGHTINGS,
                   help="video loss per latent channel: uniform, or pixel (what each channel decodes to)")
    p.add_argument("--sigma-floor", type=float, default=lc.sigma_floor,
                   help="scale the loss of rows below this noise level by (sigma/floor)^2 (0 = off)")
    p.add_argument("--motion-weight", type=float, default=lc.motion_weight,
                   help="extra video loss weight where the clean latents change between frames (0 = off)")
    p.add_argument("--temporal-weight", type=float, default=lc.temporal_weight,
                   help="add this multiple of the video error's frame-to-frame change to the loss (0 = off)")
    p.add_argument("--text-dropout", type=float, default=lc.text_dropout, help="caption+transcript dropout")
    p.add_argument("--ref-prob", type=float, default=lc.ref_prob,
                   help="share of batches with reference audio")
    p.add_argument("--variety", type=float, default=DataConfig().spec.variety,
                   help="chance (0..1) of each plainer event mark / jittered timing in a training clip")
    p.add_argument("--cond-variety", type=float, default=DataConfig().cond_variety,
                   help="chance (0..1) of each plainer event mark in what a driven task is given")
    p.add_argument("--reuse", type=float, default=DataConfig().reuse, help="average steps each clip serves")
    p.add_argument("--save-every", type=int, default=d.save_every, help="steps between saved states")
    p.add_argument("--stop-at", type=int, default=None,
                   help="stop after this step; the schedule still spans --steps and --resume continues")
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="also keep the inference model every N steps (for sync-vs-steps curves)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (1 is fastest on a shared 2-core machine)")
    p.add_argument("--export", default=None, help="also write the final model here (e.g. the bundled demo)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the parsed arguments describe."""
    loss = LossConfig(tasks=args.tasks, schedule=args.schedule, sigma=args.sigma,
                      weights=parse_task_weights(args.task_weights),
                      text_dropout=args.text_dropout, ref_prob=args.ref_prob,
                      video_weighting=args.video_weighting, sigma_floor=args.sigma_floor,
                      motion_weight=args.motion_weight, temporal_weight=args.temporal_weight)
    data = DataConfig(seed=args.seed, batch=args.batch, reuse=args.reuse,
                      spec=SceneSpec(variety=args.variety), cond_variety=args.cond_variety)
    overrides = tuple((k, v) for k, v in (("prediction", args.prediction),
                                          ("frame_noise_share", args.frame_noise_share)) if v is not None)
    return TrainConfig(preset=args.preset, interaction=args.interaction, steps=args.steps, lr=args.lr,
                       overrides=overrides,
                       warmup=args.warmup, ema=args.ema, seed=args.seed, save_every=args.save_every,
                       loss=loss, data=data)


def parse_task_weights(text: str) -> tuple[float, float, float]:
    """"1,0.7,0.7" -> (1.0, 0.7, 0.7); three finite non-negative numbers, the joint one positive."""
    try:
        weights = tuple(float(w) for w in text.split(","))
    except ValueError:
        weights = ()
    if len(weights) != 3 or not all(w >= 0 and w < float("inf") for w in weights) or weights[0] <= 0:
        raise ValueError(f"--task-weights takes three numbers joint,audio-driven,video-driven (joint > 0, "
                         f"the others >= 0), e.g. 1,0.7,0.7; got {text!r}")
    return weights  # type: ignore[return-value]


class _Progress:
    """tqdm bar with exponentially smoothed losses (rank 0 only)."""

    def __init__(self, start: int, total: int, disable: bool) -> None:
        from tqdm import tqdm
        self.bar = tqdm(total=total, initial=start, desc="train", unit="step", disable=disable)
        self.avg: dict[str, float] = {}

    def __call__(self, figures: dict[str, float]) -> None:
        for key in SMOOTHED:
            if key in figures:
                old = self.avg.get(key)
                self.avg[key] = figures[key] if old is None else 0.9 * old + 0.1 * figures[key]
        shown = {k.replace("joint_", "j_"): f"{v:.3f}" for k, v in self.avg.items()}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_train(args: argparse.Namespace) -> int:
    """`train`: build, optionally resume, train to --steps, export."""
    if args.threads:
        torch.set_num_threads(args.threads)
    rank, world, device = init_distributed()
    config = train_config(args)
    trainer = Trainer(config, args.out, rank, world, device)
    if args.resume:
        log.info("resumed %s at step %d", args.out, trainer.resume())
    if rank == 0:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        log.info("training %s (%.2f M parameters) for %d steps on %d process(es), %s", config.preset,
                 sum(p.numel() for p in trainer.model.parameters()) / 1e6, config.steps, world, device)
    end = stop_step(config.steps, args.stop_at)
    progress = _Progress(trainer.step, end, disable=args.quiet or rank != 0)
    try:
        trainer.run(progress, snapshot_every=args.snapshot_every, stop_at=end)
    finally:
        progress.close()
    if args.export and rank == 0:
        log.info("exported %s", trainer.export(args.export, {"train_command": _command(args)}))
    return 0


def _command(args: argparse.Namespace) -> str:
    """The reproducing command line of a run (stored in the exported file's metadata)."""
    skip = {"func", "out", "resume", "export", "quiet", "threads", "command", "snapshot_every", "verbose",
            "stop_at"}
    parts = ["python -m harmony_core train"]
    for key, value in sorted(vars(args).items()):
        if key in skip or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        parts.append(flag if value is True else f"{flag} {value}")
    return " ".join(parts)


def add_ablate_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ablate` (see ablate.py)."""
    from .ablate import add_arguments
    add_arguments(p)


def run_ablate(args: argparse.Namespace) -> int:
    """`ablate`: train/evaluate the ablation cells and write the report."""
    from .ablate import run
    return run(args)


def add_eval_demo_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `eval-demo` (eval_demo.py)."""
    from .eval_demo import DIRECTIONS, EVAL_SEED, EvalPlan
    d = EvalPlan()
    p.add_argument("--model", default=None, help="checkpoint (default: the bundled demo model)")
    p.add_argument("--out", default="out/eval_demo", help="folder for the clips (one mp4 each) and summary.json")
    p.add_argument("--clips", type=int, default=d.clips, help="prompts / driving inputs per sync direction")
    p.add_argument("--still", type=int, default=d.still, help="silent/still prompts")
    p.add_argument("--batch", type=int, default=d.batch, help="joint prompts per sampler call")
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="prompt stream (training streams use --seed of train)")
    p.add_argument("--directions", default=",".join(DIRECTIONS), help=f"any of {', '.join(DIRECTIONS)}")
    p.add_argument("--sync-video-scale", type=float, default=None, help="override the checkpoint's SyncCFG")
    p.add_argument("--sync-audio-scale", type=float, default=None, help="override the checkpoint's SyncCFG")
    p.add_argument("--rescale-video", type=float, default=None, help="override the CFG-rescale mix (0..1)")
    p.add_argument("--rescale-audio", type=float, default=None, help="override the CFG-rescale mix (0..1)")
    p.add_argument("--text-video-scale", type=float, default=None, help="override the checkpoint's text CFG")
    p.add_argument("--text-audio-scale", type=float, default=None, help="override the checkpoint's text CFG")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the checkpoint's)")
    p.add_argument("--shift", type=float, default=None, help="sampling shift (default: the checkpoint's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--sheet", default=None,
                   help="instead: write a contact sheet PNG of 12 fixed prompts (eval_demo_report.SHEET_PROMPTS)")


def run_eval_demo(args: argparse.Namespace) -> int:
    """`eval-demo`: generate the evaluation clips, measure them, print summary.json's headline figures."""
    import json

    from ..build import DEMO_CHECKPOINT, load_pipeline
    from .eval_demo import EvalPlan, GuidanceOverride, evaluate_demo, headline
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model or DEMO_CHECKPOINT)
    if args.sheet:
        from .eval_demo_report import prompt_sheet
        log.info("wrote %s", prompt_sheet(pipe, Path(args.sheet)))
        return 0
    guidance = GuidanceOverride(args.sync_video_scale, args.sync_audio_scale, args.rescale_video,
                                args.rescale_audio, args.text_video_scale, args.text_audio_scale)
    plan = EvalPlan(clips=args.clips, still=args.still, batch=args.batch, seed=args.seed,
                    directions=tuple(x for x in args.directions.split(",") if x), guidance=guidance,
                    steps=args.steps, shift=args.shift)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = evaluate_demo(pipe, out, plan)
    print(json.dumps(headline(result), indent=1))  # noqa: T201  (CLI output)
    return 0
