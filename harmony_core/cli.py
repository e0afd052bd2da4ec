"""`python -m harmony_core {info,generate,convert,bench,eval-sync,train,ablate,eval-demo}`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .config import GUIDANCE_KINDS, MAX_TAKES, PRESETS, SCHEDULES, SEED_MAX

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .model.kit import MemoryKit
    from .pipeline import HarmonyPipeline
    from .sampling import Guidance

log = logging.getLogger("harmony_core")

DEFAULT_PROMPT = "a red circle bouncing on a grey floor"


# ------------------------------------------------------------------------------------------------
# info
# ------------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from collections import Counter

    from .loading.checkpoint import config_of, read_header

    if args.checkpoint is not None and args.preset is not None:
        raise ValueError("info: give a checkpoint file (or folder) or --preset NAME, not both")
    if args.checkpoint is None and args.preset is None:
        raise ValueError("info: give a checkpoint file (or folder), e.g. harmony_core/assets/harmony_demo.safetensors, "
                         f"or --preset NAME ({', '.join(PRESETS)})")
    if args.preset is not None:
        return _preset_info(args.preset)
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


def _preset_info(name: str) -> int:
    """Parameter counts of a preset, built on the meta device (nothing allocated)."""
    from .config import preset
    from .model.count import parameter_counts

    cfg = preset(name)
    counts = parameter_counts(cfg)
    info = {"preset": name, "parameters": counts, "total_parameters": sum(counts.values()),
            "bf16_weights_gib": round(2 * sum(counts.values()) / 2**30, 2), "config": cfg.to_dict()}
    print(json.dumps(info, indent=2))  # noqa: T201
    return 0


# ------------------------------------------------------------------------------------------------
# generate
# ------------------------------------------------------------------------------------------------


def _check_generate_args(args: argparse.Namespace) -> Path:
    """Check what needs no model (seed, takes, --out); returns the output: an .mp4 path or a folder."""
    if not 1 <= args.takes <= MAX_TAKES:
        raise ValueError(f"--takes must be 1..{MAX_TAKES}, got {args.takes}")
    if args.takes > 1 and args.batch > 1:
        raise ValueError(f"--takes {args.takes} and --batch {args.batch} cannot be combined: --takes "
                         f"generates one take after another (seeds {args.seed}, {args.seed + 1}, ...) and "
                         f"keeps the best; --batch generates several in one pass and keeps them all. "
                         f"Pick one")
    last = args.seed + args.takes - 1
    if not 0 <= args.seed <= SEED_MAX or last > SEED_MAX:
        what = f"--seed {args.seed}" if args.takes == 1 else f"--seed {args.seed} with --takes {args.takes}"
        raise ValueError(f"{what} is out of range: seeds must be 0..{SEED_MAX} (2**64 - 1, what "
                         f"torch.Generator accepts)")
    return _resolve_out(args.out)


def _resolve_out(out: str) -> Path:
    """An existing folder (or a path ending in '/'): write inside it. A name without a suffix: `.mp4` is
    appended (logged). `.mp4`: that file (a taken name gets `_00001`, ...). Anything else: an error."""
    path = Path(out)
    if path.is_dir() or out.endswith(("/", "\\")):
        return path
    if not path.suffix:
        log.info("--out %s has no extension: writing %s (pass an existing folder to write inside it)",
                 out, path.with_suffix(".mp4"))
        return path.with_suffix(".mp4")
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"--out {out}: only .mp4 files are written, not {path.suffix!r}; use a name ending "
                         f"in .mp4 (e.g. {path.with_suffix('.mp4')}) or an existing folder")
    return path


def _load_inputs(args: argparse.Namespace, pipe: HarmonyPipeline) -> dict:
    from . import timeline
    from .media import read_audio, read_video

    inputs = {}
    sr = pipe.audio_codec.sample_rate
    if args.audio:
        inputs["audio"] = _finite_audio(read_audio(args.audio, sr, mono=True)[0][0], args.audio)
    if args.ref_audio:
        inputs["ref_audio"] = _finite_audio(read_audio(args.ref_audio, sr, mono=True)[0][0], args.ref_audio)
    grid = pipe.grid
    d = pipe.model.cfg.defaults
    size = (args.height or d.height, args.width or d.width)
    if args.video:
        frames, fps = read_video(args.video, size=size, grid=grid, as_float=True, min_frames=5,
                                 max_frames=args.frames)
        stride = pipe.video_codec.temporal_stride
        usable = timeline.causal_frames_within(frames.shape[0], stride)
        if usable < frames.shape[0]:
            log.info("%s: using the first %d of %d frames (the video codec needs %d*k + 1 frames)",
                     args.video, usable, frames.shape[0], stride)
        inputs["video"] = torch_frames(frames[:usable])
        inputs["fps"] = str(fps)
    if args.image:
        frames, _ = read_video(args.image, size=size, grid=grid, as_float=True, max_frames=1)
        inputs["image"] = torch_frames(frames[:1])[:, 0]
    return inputs


def _finite_audio(wave: torch.Tensor, path: str) -> torch.Tensor:
    """Refuse a decoded wave [L] with NaN/Inf samples (a float wav can hold them; decoded video frames are
    uint8 and cannot), naming the file and the count."""
    import torch

    from .checks import require_finite

    return require_finite(torch.as_tensor(wave), path, "audio samples", "the file is corrupt, re-export it")


def torch_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[F, H, W, 3] float in [0, 1] -> [3, F, H, W] in [-1, 1]."""
    import torch
    return torch.as_tensor(frames).float().permute(3, 0, 1, 2) * 2 - 1


GUIDANCE_FLAGS = {  # flag (dashes for underscores) -> what it sets: Guidance.<sync|text|rescale>.<rest>
    "sync_video_scale": "SyncCFG video scale: motion follows the audio (1 = off)",
    "sync_audio_scale": "SyncCFG audio scale: sounds follow the motion (1 = off)",
    "sync_start": "SyncCFG starts at this fraction of the steps",
    "sync_end": "SyncCFG ends at this fraction of the steps",
    "text_video_scale": "text CFG on the video (1 = off; needs --negative or an empty negative)",
    "text_audio_scale": "text CFG on the audio (1 = off)",
    "rescale_video": "CFG-rescale on the video, 0..1: pulls the guided velocity toward the per-sample std of the "
                     "unguided prediction, against the saturation guidance adds (0 = off, 1 = full; arXiv "
                     "2305.08891 uses 0.7)",
    "rescale_audio": "CFG-rescale on the audio, 0..1: pulls the guided velocity toward the per-sample std of the "
                     "unguided prediction, against the loudness guidance adds (0 = off, 1 = full)",
}


def _with_prefix(given: dict[str, float], prefix: str) -> dict[str, float]:
    """The flags that start with `prefix`, keyed by the rest of the name (`sync_video_scale` -> `video_scale`)."""
    return {k.removeprefix(prefix): v for k, v in given.items() if k.startswith(prefix)}


def _guidance(args: argparse.Namespace, default: Guidance) -> Guidance:
    """The checkpoint's guidance for the mode with the flags the user gave (`--sync-video-scale` sets
    `guidance.sync.video_scale`, `--text-audio-scale` sets `guidance.text.audio_scale`, ...). With UniAVGen's
    guidance (`--guidance uniavgen`) the text scales are its MA-CFG scales; `--rescale-*` (`guidance.rescale`)
    applies to both kinds."""
    given = {k: getattr(args, k) for k in GUIDANCE_FLAGS if getattr(args, k) is not None}
    rescale = replace(default.rescale, **_with_prefix(given, "rescale_"))
    if default.macfg is not None:
        sync = [k for k in given if k.startswith("sync_")]
        if sync:
            raise ValueError(f"--{sync[0].replace('_', '-')}: UniAVGen guidance has no SyncCFG; choose "
                             "--guidance synccfg for it, or set --text-video-scale / --text-audio-scale")
        return replace(default, macfg=replace(default.macfg, **_with_prefix(given, "text_")), rescale=rescale)
    return replace(default, sync=replace(default.sync, **_with_prefix(given, "sync_")),
                   text=replace(default.text, **_with_prefix(given, "text_")), rescale=rescale)


def cmd_generate(args: argparse.Namespace) -> int:
    from .budget import available_memory, check_budget
    from .build import CodecFiles, load_pipeline
    from .cli_takes import check_scorable, generate_with_progress, run_takes
    from .media import write_mp4
    from .request import Media, Request, Sampling, default_guidance

    out = _check_generate_args(args)
    pipe = load_pipeline(args.model, CodecFiles(args.video_vae, args.audio_vae, args.vocoder), device=args.device,
                         attention=_attention(args.attention), allow_untrained=args.allow_untrained,
                         kit=_kit(args))
    inputs = _load_inputs(args, pipe)
    mode = args.mode or ("audio_driven" if args.audio else "video_driven" if args.video else "joint")
    defaults = pipe.model.cfg.defaults
    req = Request(mode=mode, prompt=args.prompt, audio_prompt=args.audio_prompt, transcript=args.transcript,
                  ref_transcript=args.ref_transcript, language=args.language, negative_prompt=args.negative,
                  num_frames=args.frames if not args.video else None, width=args.width, height=args.height,
                  fps=inputs.pop("fps", args.fps), media=Media(**inputs),
                  sampling=Sampling(steps=args.steps, shift=args.shift, solver=args.solver, schedule=args.schedule,
                                    seed=args.seed, batch=args.batch),
                  guidance=_guidance(args, default_guidance(replace(defaults, guidance=args.guidance or
                                                                    defaults.guidance), mode)))
    req = pipe.resolve(req)
    if args.takes > 1:
        check_scorable(req.num_frames)
    if not args.skip_memory_check:  # takes run one after another: one take's memory
        plan = pipe.memory_plan(req.with_batch(1) if args.takes > 1 else req,
                                next(pipe.model.parameters()).element_size())
        check_budget(plan, available_memory(pipe.device),
                     "use a smaller --width/--height, fewer --frames or a smaller --batch (or --skip-memory-check "
                     "if you know better)")
    meta = {"prompt": args.prompt, "audio_prompt": args.audio_prompt or "", "transcript": args.transcript,
            "mode": mode, "seed": str(args.seed), "model": str(args.model or "bundled demo")}
    if args.takes > 1:
        return run_takes(args, pipe, req, out, meta)
    result, elapsed = generate_with_progress(pipe, req, f"harmony {mode}", args.quiet)
    for take in range(result.frames.shape[0]):
        path = write_mp4(out, result.frames[take], result.fps, result.wave[take][None], result.sample_rate,
                         metadata=meta)
        print(f"wrote {path} ({result.frames.shape[1]} frames at {result.fps} fps, "  # noqa: T201
              f"{result.wave.shape[1] / result.sample_rate:.2f} s audio) in {elapsed:.1f} s")
    return 0


def _attention(name: str) -> str:
    """The attention backend, checked before loading: a missing package or GPU is a clear error."""
    from .attention import AttentionUnavailable, resolve

    try:
        resolve(name)
    except AttentionUnavailable as exc:
        raise ValueError(f"--attention {name}: {exc}; 'sdpa' always works") from exc
    return name


def _kit(args: argparse.Namespace) -> MemoryKit:
    from .model.kit import MemoryKit

    return MemoryKit(fp8=args.fp8, fp8_scaling=args.fp8_scaling, swap_blocks=args.swap_blocks,
                     compile=args.compile).validate()


# ------------------------------------------------------------------------------------------------
# convert --fp8 IN OUT
# ------------------------------------------------------------------------------------------------
def cmd_convert(args: argparse.Namespace) -> int:
    from .model.convert import convert_fp8

    if not args.fp8:
        raise ValueError("convert: say what to convert to; the one conversion is --fp8")
    summary = convert_fp8(args.src, args.dst, scaling=args.fp8_scaling, overwrite=args.overwrite)
    print(json.dumps(summary, indent=2))  # noqa: T201
    return 0


# ------------------------------------------------------------------------------------------------
# bench, eval-sync
# ------------------------------------------------------------------------------------------------
def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.run import run

    run(args.which, quick=args.quick, as_json=args.json)
    return 0


def cmd_eval_sync(args: argparse.Namespace) -> int:
    from .media import read_audio, read_video
    from .metrics.report import AVPair, SyncConfig, evaluate_clips, format_table, to_json

    if args.max_lag < 1:
        raise ValueError(f"--max-lag must be >= 1 frame (the +-1-frame figure needs lags -1..1), got "
                         f"{args.max_lag}")
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


def _add_eval_sync(sub: argparse._SubParsersAction) -> None:
    from .metrics.report import TIMING_NOTE

    p = sub.add_parser(
        "eval-sync", help="synchronization metrics of mp4 clips (with a shuffled-pair baseline)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Synchronization of picture and sound in mp4 clips: per clip the correlation of motion\n"
                    "energy with audio onset strength at lag 0 and its best value within ±1 video frame,\n"
                    "the best lag, and event hit rate / offset; mean [95% bootstrap CI] over the clips, beside\n"
                    "a shuffled-pair baseline (video i with audio j != i). Loudness-invariant: a gain on a\n"
                    "clip's audio does not change any figure.",
        epilog=TIMING_NOTE)
    p.add_argument("clips", nargs="+", help="mp4 files with video and audio (2 or more give the shuffled baseline)")
    p.add_argument("--max-lag", type=int, default=8, help="lags searched, in frames either way (default 8)")
    p.add_argument("--json", help="also write the report as JSON")
    p.set_defaults(func=cmd_eval_sync)


# ------------------------------------------------------------------------------------------------
# parser
# ------------------------------------------------------------------------------------------------
def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate an mp4 with synchronized sound (default: the bundled demo model)")
    p.add_argument("--model", help="Harmony checkpoint (.safetensors); default: the bundled demo model")
    p.add_argument("--prompt", default=DEFAULT_PROMPT, help="video caption (what is seen)")
    p.add_argument("--audio-prompt", default=None, help="audio caption (how it sounds); default: the prompt")
    p.add_argument("--transcript", default="", help="words to speak")
    p.add_argument("--negative", default="", help="negative prompt (used when --text-*-scale > 1)")
    p.add_argument("--mode", choices=["joint", "audio_driven", "video_driven"],
                   help="default: audio_driven with --audio, video_driven with --video, else joint")
    p.add_argument("--audio", help="driving audio file (audio-driven video)")
    p.add_argument("--video", help="driving video file (video-driven audio)")
    p.add_argument("--image", help="reference image (first frame)")
    p.add_argument("--ref-audio", help="reference voice clip (1-3 s)")
    for name, kind in (("frames", int), ("width", int), ("height", int), ("steps", int), ("shift", float)):
        p.add_argument(f"--{name}", type=kind, default=None, help=f"{name} (default: the model's)")
    for name, what in GUIDANCE_FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=float, default=None, help=f"{what} (default: the model's)")
    p.add_argument("--fps", default=None, help="frame rate, e.g. 25 or 30000/1001 (default: the model's)")
    p.add_argument("--solver", choices=["euler", "dpmpp_2m"], default=None)
    p.add_argument("--schedule", choices=list(SCHEDULES), default=None,
                   help="sigma schedule (default: the model's; UniAVGen checkpoints use 'uniavgen')")
    p.add_argument("--guidance", choices=list(GUIDANCE_KINDS), default=None,
                   help="synccfg (Harmony's) or uniavgen (MA-CFG + skip-layer guidance); default: the model's")
    p.add_argument("--ref-transcript", default="", help="what the --ref-audio voice says (UniAVGen)")
    p.add_argument("--language", choices=["en", "zh"], default="en", help="language of the transcripts")
    p.add_argument("--seed", type=int, default=0, help=f"noise seed, 0..{SEED_MAX}")
    p.add_argument("--batch", type=int, default=1, help="takes to generate in one pass (all are written)")
    p.add_argument("--takes", type=int, default=1,
                   help=f"1..{MAX_TAKES}: generate this many takes one after another (seeds seed, "
                        "seed+1, ...; memory of one take), score each one's sync and write the best to "
                        "--out; prints a score table. Not with --batch")
    p.add_argument("--keep-all", action="store_true",
                   help="with --takes: also write the other takes, as <out>_take<i>.mp4 (i = take number)")
    p.add_argument("--out", default="out/harmony.mp4",
                   help="an .mp4 file, or an existing folder to write harmony_00001.mp4 inside (a path "
                        "ending in / is a folder, created when missing); a name without an extension gets "
                        ".mp4. An existing file is never overwritten: the next free name_00001.mp4 is used")
    p.add_argument("--device", default="cpu")
    p.add_argument("--attention", default="sdpa", choices=["sdpa", "flash", "sage"],
                   help="attention kernel: sdpa works everywhere; flash / sage need their package and a CUDA GPU")
    _add_kit_arguments(p)
    p.add_argument("--video-vae", help="Wan2.2 VAE (.safetensors) for real models")
    p.add_argument("--audio-vae", help="MMAudio VAE (.safetensors) for real models")
    p.add_argument("--vocoder", help="BigVGAN vocoder (.safetensors) for real models")
    p.add_argument("--allow-untrained", action="store_true",
                   help="if the bundled demo model is missing, use the untrained demo preset (noise!)")
    p.add_argument("--skip-memory-check", action="store_true",
                   help="generate even when the size's memory estimate exceeds the memory available")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_generate)


def _add_kit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fp8", action="store_true",
                   help="store the big linear layers as float8_e4m3fn (about half the bf16 memory), computed in "
                        "the load dtype; quantized while loading")
    p.add_argument("--fp8-scaling", choices=["row", "tensor"], default="row",
                   help="fp8 scale per output row (default, more accurate) or one per tensor (ComfyUI's layout)")
    p.add_argument("--swap-blocks", type=int, default=0, metavar="N",
                   help="keep the last N layers of each tower on the CPU and stream them to --device just "
                        "before use (overlapped with compute; same output as without)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each transformer block (the first step compiles; falls back to eager "
                        "with a log line where compiling is unavailable)")


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="write a checkpoint with its big linear layers in fp8 (one .safetensors)")
    p.add_argument("--fp8", action="store_true", help="quantize to float8_e4m3fn with float32 scales (required)")
    p.add_argument("--fp8-scaling", choices=["row", "tensor"], default="row",
                   help="<layer>.scale_weight per output row [out, 1] (default) or per tensor [] (ComfyUI's)")
    p.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    p.add_argument("src", help="a checkpoint: .safetensors file, sharded folder or its index")
    p.add_argument("dst", help="the .safetensors file to write")
    p.set_defaults(func=cmd_convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harmony_core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="config, parameter counts and dtypes of a checkpoint (or of a preset)")
    p.add_argument("checkpoint", nargs="?", help="a .safetensors file, or a folder with a sharded index")
    p.add_argument("--preset", help="a preset's counts instead, built without allocating (e.g. uniavgen)")
    p.set_defaults(func=cmd_info)
    _add_generate(sub)
    _add_convert(sub)
    p = sub.add_parser("bench", help="benchmarks (ratios measured in one run)")
    p.add_argument("which", nargs="?", default="all",
                   choices=["attention", "gldi", "guidance", "uniavgen", "codecs", "memory", "gpu", "cpu",
                            "all"])
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--json", action="store_true",
                   help="also print the results as one JSON object, on the last line (gldi: its summary)")
    p.set_defaults(func=cmd_bench)
    _add_eval_sync(sub)
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
    p = sub.add_parser("eval-demo", help="the demo model's evaluation: sync in 3 directions, prompts, silence")
    train_cli.add_eval_demo_arguments(p)
    p.set_defaults(func=train_cli.run_eval_demo)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted (Ctrl-C); files already written are kept")
        return 130


if __name__ == "__main__":
    sys.exit(main())
