"""`generate --takes N`: one take after another, ranked by sync score (the CLI side of best-of-takes)."""
from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .metrics import SyncScore
    from .pipeline import HarmonyPipeline, Request, Result

log = logging.getLogger("harmony_core")


def generate_with_progress(pipe: HarmonyPipeline, req: Request, desc: str, quiet: bool) -> tuple[Result, float]:
    """(Result, seconds) of one pipeline run with a progress bar."""
    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=req.steps, desc=desc, unit="step", disable=quiet) as bar:
        result = pipe.generate(req, callback=lambda step, total, *_: bar.update(1))
    return result, time.perf_counter() - start


@dataclass(frozen=True)
class Take:
    """One finished take: its number (1-based), seed, sync score (None when it could not be scored) and the
    file it was written to (None when not kept)."""

    index: int
    seed: int
    score: SyncScore | None
    path: Path | None = None

    @property
    def rank_key(self) -> float:
        return self.score.score if self.score is not None else -math.inf


def check_scorable(num_frames: int) -> None:
    from .metrics.score import MIN_FRAMES

    if num_frames < MIN_FRAMES:
        raise ValueError(f"--takes ranks takes by their sync score, which needs at least {MIN_FRAMES} "
                         f"frames; this request makes {num_frames}: raise --frames or use --takes 1")


def _take_path(out: Path, index: int) -> Path:
    """Where --keep-all writes take `index`: beside the best (`<stem>_take<i>.mp4`), or inside the folder."""
    if out.suffix.lower() == ".mp4" and not out.is_dir():
        return out.with_name(f"{out.stem}_take{index}.mp4")
    return out / f"harmony_take{index}.mp4"


def _score(result: Result, take: int, seed: int) -> SyncScore | None:
    from .metrics import score_clip

    try:
        return score_clip(result.frames[0], result.fps, result.wave[0], result.sample_rate)
    except ValueError as exc:  # e.g. NaN output: rank the take last instead of losing the others
        log.warning("take %d (seed %d) could not be scored and ranks last: %s", take, seed, exc)
        return None


def _write_take(result: Result, path: Path, seed: int, meta: dict) -> Path:
    from .media import write_mp4

    return write_mp4(path, result.frames[0], result.fps, result.wave[0][None], result.sample_rate,
                     metadata={**meta, "seed": str(seed)})


def _settle(take: Take, result: Result, out: Path, meta: dict, keep: bool) -> Take:
    """A take that is not the best: written beside the best with --keep-all, else dropped."""
    if not keep:
        return take
    return replace(take, path=_write_take(result, _take_path(out, take.index), take.seed, meta))


def run_takes(args: argparse.Namespace, pipe: HarmonyPipeline, req: Request, out: Path, meta: dict) -> int:
    """Generate args.takes takes (seed, seed + 1, ..., batch 1 each), keep the best by sync score.

    Only the best take so far is held in memory; with --keep-all every other take is written as soon as a
    better one is known. Ctrl-C stops after writing the best finished take (exit code 130).
    """
    done: list[Take] = []
    best: tuple[Take, object] | None = None  # (take, its Result)
    interrupted = False
    try:
        for i in range(1, args.takes + 1):
            seed = args.seed + i - 1
            result, elapsed = generate_with_progress(pipe, req.with_seed(seed).with_batch(1), f"take {i}/{args.takes}",
                                        args.quiet)
            take = Take(i, seed, _score(result, i, seed))
            log.info("take %d/%d (seed %d) in %.1f s: %s", i, args.takes, seed, elapsed,
                     "not scored" if take.score is None else f"sync score {take.score.score:+.3f}")
            if best is None or take.rank_key > best[0].rank_key:
                best, loser = (take, result), best
            else:
                loser = (take, result)
            if loser is not None:
                done.append(_settle(*loser, out, meta, args.keep_all))
    except KeyboardInterrupt:
        interrupted = True
        log.warning("interrupted after %d of %d takes", len(done) + (best is not None), args.takes)
    if best is not None:
        done.append(replace(best[0], path=_write_take(best[1], out, best[0].seed, meta)))
    print(_takes_table(done, best[0].index if best else None))  # noqa: T201
    if interrupted:
        log.warning("stopped by Ctrl-C; the files listed above are kept")
        return 130
    return 0


def _takes_table(takes: list[Take], best: int | None) -> str:
    """take, seed, score, best lag (ms) and file of each take, in take order."""
    width = max([4] + [len(str(t.seed)) for t in takes])
    lines = [f"take  {'seed':>{width}}   score  best lag  file"]
    for t in sorted(takes, key=lambda t: t.index):
        score = "   n/a" if t.score is None else f"{t.score.score:+.3f}"
        lag = "     n/a" if t.score is None else f"{t.score.best_lag_seconds * 1000:+5.0f} ms"
        file = "(not kept)" if t.path is None else str(t.path)
        mark = "  <- best" if t.index == best else ""
        lines.append(f"{t.index:>4}  {t.seed:>{width}}  {score}  {lag}  {file}{mark}")
    return "\n".join(lines)
