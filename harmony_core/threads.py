"""CPU thread policy: small models run on one torch thread.

Why. Every op of a small model is tiny, so with several OpenMP threads each op pays a fork/join barrier,
and when another process keeps a core busy one thread of the team is descheduled and the others wait for
it at every barrier. Measured on a 2-core machine (2-vCPU VM, torch 2.9, CPU float32):
- the bundled demo model (width 128, FFN 384, 3.6 M parameters) sampling its default clip (24 steps):
  idle, 2.3-2.4 s on 2 threads and 2.9-3.3 s on 1; with another process keeping one core busy,
  9.1-10.1 s on 2 threads and 2.5-3.2 s on 1;
- the whole `python -m harmony_core generate` (wall, with ~3.5 s of imports and loading): idle 6.6-8.7 s
  on 2 threads and 7.4-9.2 s on 1; one core busy 16.6-18.0 s on 2 threads and 8.5-9.8 s on 1
  (3 runs each; runs during which other processes used the CPU were discarded);
- one [1024, d] x [d, 3d] linear + GELU (1, 2 threads idle, 2 threads with one core busy): d = 128
  1.5 / 0.96 / 2.2 ms, d = 256 5.3 / 3.0 / 5.6 ms, d = 512 19 / 9.8 / 20 ms, d = 1024 75 / 38 / 76 ms.
  A second thread halves an op when the machine is idle; with a core busy it costs 44 % at d = 128, 11 %
  at 256, 4 % at 512 and nothing at 1024, and the small ops of a whole forward (norms, attention per
  head, elementwise) lose far more than the widest one.

Criterion. The work per token of the widest matmul, max over the two towers of dim x ffn_dim (MACs):
below `SMALL_MACS_PER_TOKEN` = 2^20 (the d = 512 row above: 3 x 512^2 = 7.9e5) the model is small and
`thread_budget` runs it on one thread, giving up the idle speed-up of a second thread for never being
slower than one thread on a shared machine. The demo model has 128 x 384 = 4.9e4, the Harmony 5B preset
3072 x 14336 = 4.4e7. A codec (any other nn.Module) is small when it has at most `SMALL_CODEC_PARAMS`
learned parameters: the demo codecs are fixed transforms and Griffin-Lim (none); the Wan2.2 VAE and
MMAudio's VAE and vocoder have tens to hundreds of millions. Where everything is small the budget is one
thread; otherwise the count is left as it is. `python -m harmony_core bench all` (suite "cpu") repeats
the generation figures on another machine.

Override. `thread_budget(..., threads=n)`, else the environment variable HARMONY_THREADS=n, sets n threads
whatever the size. torch's thread count is process-wide: the budget is set on entry and the previous count
is restored on exit, also when the body raises.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

log = logging.getLogger(__name__)

ENV = "HARMONY_THREADS"
SMALL_MACS_PER_TOKEN = 1 << 20
SMALL_CODEC_PARAMS = 1_000_000


def macs_per_token(cfg: Any) -> int:
    """Multiply-accumulates per token of the widest matmul of a Harmony config (the FFN's projection)."""
    return max(cfg.video.dim * cfg.video.ffn_dim, cfg.audio.dim * cfg.audio.ffn_dim)


def is_small(work: Any) -> bool:
    """True when `work` is small enough for one thread. `work` is a HarmonyConfig, a module with a `cfg`
    (HarmonyModel), another nn.Module (a codec: judged by its learned parameters) or an int (MACs per
    token)."""
    if isinstance(work, bool) or work is None:
        raise TypeError(f"thread_budget: cannot size {work!r}")
    if isinstance(work, int):
        return work < SMALL_MACS_PER_TOKEN
    cfg = getattr(work, "cfg", work)
    if hasattr(cfg, "video") and hasattr(cfg, "audio"):
        return macs_per_token(cfg) < SMALL_MACS_PER_TOKEN
    if isinstance(work, torch.nn.Module):
        return sum(p.numel() for p in work.parameters()) <= SMALL_CODEC_PARAMS
    raise TypeError(f"thread_budget: cannot size a {type(work).__name__} (give a config, a model, a module "
                    f"or MACs per token)")


def _override(threads: int | None) -> int | None:
    if threads is not None:
        source, value = "threads", threads
    elif os.environ.get(ENV, "").strip():
        source, value = ENV, os.environ[ENV].strip()
    else:
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{source}={value!r} is not accepted: use a whole number of threads >= 1")
    return n


def threads_for(*work: Any, threads: int | None = None) -> int | None:
    """The thread count `thread_budget` sets for `work`, or None where it leaves the count alone."""
    chosen = _override(threads)
    if chosen is not None:
        return chosen
    return 1 if work and all(is_small(w) for w in work) else None


@contextmanager
def thread_budget(*work: Any, threads: int | None = None) -> Iterator[int]:
    """Run the body with the thread count the policy picks for `work` (see the module docstring); yields the
    count in force and restores the previous one on exit, exceptions included."""
    previous = torch.get_num_threads()
    wanted = threads_for(*work, threads=threads)
    if wanted is None or wanted == previous:
        yield previous
        return
    log.debug("torch threads %d -> %d for this call", previous, wanted)
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(previous)
