"""`python -m harmony_core {info,generate,bench,eval-sync,train,ablate}`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("harmony_core")

DEFAULT_PROMPT = "a red circle bouncing on a grey floor"


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from collections import Counter

    from .loading.checkpoint import config_of, read_header

    header = read_header(args.checkpoint)
    cfg = config_of(header)
    counts: Counter[str] = Counter()
    for key, shape in header.shapes.items():
        n = 1
        for d in shape:
            n *= d
        counts[header.keymap.apply(key).split(".", 1)[0]] += n
    info = {"file": str(header.path), "format": header.keymap.description, "wrapper_prefix": header.prefix,
            "dtypes": dict(Counter(header.dtypes.values())), "parameters": dict(counts),
            "total_parameters": sum(counts.values()), "config": cfg.to_dict()}
    print(json.dumps(info, indent=2))  # noqa: T201
    return 0


# ------------------------------------------------------------------------------------------------
# generate
# ------------------------------------------------------------------------------------------------
def _load_inputs(args: argparse.Namespace, pipe) -> dict:
    from .media import read_audio, read_video

    inputs = {}
    sr = pipe.audio_codec.sample_rate
    if args.audio:
        inputs["audio"] = read_audio(args.audio, sr, mono=True)[0][0]
    if args.ref_audio:
        inputs["ref_audio"] = read_audio(args.ref_audio, sr, mono=True)[0][0]
    grid = pipe.video_codec.spatial_stride * pipe.model.cfg.video.patch_size[1]
    d = pipe.model.cfg.defaults
    size = (args.height or d.height, args.width or d.width)
    if args.video:
        frames, fps = read_video(args.video, size=size, grid=grid, as_float=True, min_frames=5,
                                 max_frames=args.frames)
        usable = (frames.shape[0] - 1) // pipe.video_codec.temporal_stride * pipe.video_codec.temporal_stride + 1
        inputs["video"] = torch_frames(frames[:usable])
        inputs["fps"] = str(fps)
    if args.image:
        frames, _ = read_video(args.image, size=size, grid=grid, as_float=True, max_frames=1)
        inputs["image"] = torch_frames(frames[:1])[:, 0]
    return inputs


def torch_frames(frames):
    """[F, H, W, 3] float in [0, 1] -> [3, F, H, W] in [-1, 1]."""
    import torch
    return torch.as_tensor(frames).float().permute(3, 0, 1, 2) * 2 - 1


def cmd_generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .loading.bundle import load_pipeline
    from .media import write_mp4
    from .pipeline import Request

    pipe = load_pipeline(args.model, device=args.device, attention=args.attention,
                         video_codec_path=args.video_vae, audio_vae_path=args.audio_vae,
                         vocoder_path=args.vocoder, allow_untrained=args.allow_untrained)
    inputs = _load_inputs(args, pipe)
    mode = args.mode or ("audio_driven" if args.audio else "video_driven" if args.video else "joint")
    req = Request(prompt=args.prompt, audio_prompt=args.audio_prompt, transcript=args.transcript,
                  negative_prompt=args.negative, mode=mode, num_frames=args.frames if not args.video else None,
                  width=args.width, height=args.height, fps=inputs.pop("fps", args.fps), steps=args.steps,
                  shift=args.shift, solver=args.solver, sync_video=args.sync_video, sync_audio=args.sync_audio,
                  sync_start=args.sync_start, sync_end=args.sync_end, text_video=args.cfg_video,
                  text_audio=args.cfg_audio, seed=args.seed, batch=args.batch, **inputs)
    req = pipe.resolve(req)
    start = time.perf_counter()
    with tqdm(total=req.steps, desc=f"harmony {mode}", unit="step", disable=args.quiet) as bar:
        result = pipe.generate(req, callback=lambda step, total, *_: bar.update(1))
    elapsed = time.perf_counter() - start
    meta = {"prompt": args.prompt, "audio_prompt": args.audio_prompt or "", "transcript": args.transcript,
            "mode": mode, "seed": str(args.seed), "model": str(args.model or "bundled demo")}
    for take in range(result.frames.shape[0]):
        path = write_mp4(args.out, result.frames[take], result.fps, result.wave[take][None], result.sample_rate,
                         metadata=meta)
        print(f"wrote {path} ({result.frames.shape[1]} frames at {result.fps} fps, "  # noqa: T201
              f"{result.wave.shape[1] / result.sample_rate:.2f} s audio) in {elapsed:.1f} s")
    return 0


# ------------------------------------------------------------------------------------------------
# bench, eval-sync
# ------------------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.run import run

    run(args.which, quick=args.quick)
    return 0


def cmd_eval_sync(args: argparse.Namespace) -> int:
    from .media import read_audio, read_video
    from .metrics.report import AVPair, SyncConfig, evaluate_clips, format_table, to_json

    pairs = []
    for path in args.clips:
        frames, fps = read_video(path)
        wave, sr = read_audio(path, mono=True)
        pairs.append(AVPair(frames=frames, fps=fps, wave=wave[0], sample_rate=sr, name=Path(path).name))
    report = evaluate_clips(pairs, SyncConfig(max_lag=args.max_lag))
    print(format_table(report))  # noqa: T201
    if args.json:
        Path(args.json).write_text(to_json(report))
    return 0


# ------------------------------------------------------------------------------------------------
# parser
# ------------------------------------------------------------------------------------------------
def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate an mp4 with synchronized sound (default: the bundled demo model)")
    p.add_argument("--model", help="Harmony checkpoint (.safetensors); default: the bundled demo model")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="video caption (what is seen)")
    p.add_argument("--audio-prompt", default=None, help="audio caption (how it sounds); default: the prompt")
    p.add_argument("--transcript", default="", help="words to speak")
    p.add_argument("--negative", default="", help="negative prompt (used when --cfg-* > 1)")
    p.add_argument("--mode", choices=["joint", "audio_driven", "video_driven"],
                   help="default: audio_driven with --audio, video_driven with --video, else joint")
    p.add_argument("--audio", help="driving audio file (audio-driven video)")
    p.add_argument("--video", help="driving video file (video-driven audio)")
    p.add_argument("--image", help="reference image (first frame)")
    p.add_argument("--ref-audio", help="reference voice clip (1-3 s)")
    for name, kind in (("frames", int), ("width", int), ("height", int), ("steps", int), ("shift", float),
                       ("sync-video", float), ("sync-audio", float), ("cfg-video", float), ("cfg-audio", float)):
        p.add_argument(f"--{name}", type=kind, default=None, help=f"{name} (default: the model's)")
    p.add_argument("--fps", default=None, help="frame rate, e.g. 25 or 30000/1001 (default: the model's)")
    p.add_argument("--solver", choices=["euler", "dpmpp_2m"], default=None)
    p.add_argument("--sync-start", type=float, default=0.0, help="SyncCFG start (fraction of the schedule)")
    p.add_argument("--sync-end", type=float, default=1.0, help="SyncCFG end (fraction of the schedule)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=1, help="takes to generate")
    p.add_argument("--out", default="out/harmony.mp4", help="output file or folder (never overwritten)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--attention", default="sdpa")
    p.add_argument("--video-vae", help="Wan2.2 VAE (.safetensors) for real models")
    p.add_argument("--audio-vae", help="MMAudio VAE (.safetensors) for real models")
    p.add_argument("--vocoder", help="BigVGAN vocoder (.safetensors) for real models")
    p.add_argument("--allow-untrained", action="store_true",
                   help="if the bundled demo model is missing, use the untrained demo preset (noise!)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harmony_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="config, parameter counts and dtypes of a checkpoint")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)
    _add_generate(sub)
    p = sub.add_parser("bench", help="benchmarks (ratios measured in one run)")
    p.add_argument("which", nargs="?", default="all", choices=["attention", "guidance", "codecs", "memory", "all"])
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("eval-sync", help="synchronization metrics of mp4 clips (with a shuffled-pair baseline)")
    p.add_argument("clips", nargs="+")
    p.add_argument("--max-lag", type=int, default=8)
    p.add_argument("--json", help="also write the report as JSON")
    p.set_defaults(func=cmd_eval_sync)
    _add_training(sub)
    return parser


def _add_training(sub: argparse._SubParsersAction) -> None:
    try:
        from .train import cli as train_cli
    except ImportError as exc:  # the trainer is optional at import time; say why it is missing
        log.debug("training commands unavailable: %s", exc)
        return
    p = sub.add_parser("train", help="Cross-Task Synergy training")
    train_cli.add_train_arguments(p)
    p.set_defaults(func=train_cli.run_train)
    p = sub.add_parser("ablate", help="ablation at demo scale (writes a report)")
    train_cli.add_ablate_arguments(p)
    p.set_defaults(func=train_cli.run_ablate)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
