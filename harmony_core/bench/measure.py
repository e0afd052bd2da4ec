"""Timing and peak-memory measurement that works on CPU and GPU.

Peak memory on CPU: each measured call runs in a fresh spawned subprocess; the figure is the growth of
the process's peak resident set (ru_maxrss) over its resident size just before the call, after inputs
are built. On CUDA it is torch.cuda.max_memory_allocated() growth over the allocation before the call.
"""
from __future__ import annotations

import importlib
import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Measurement:
    seconds: float      # best of `repeats` wall-clock runs
    peak_mb: float      # peak memory growth during one call


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux reports KiB


def time_call(fn: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> float:
    """Best wall-clock seconds of `repeats` calls after `warmup` calls (synchronising CUDA)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _child(target: str, kwargs: dict[str, Any], threads: int, queue: mp.Queue) -> None:
    try:
        torch.set_num_threads(threads)
        module, name = target.rsplit(":", 1)
        factory = getattr(importlib.import_module(module), name)
        fn = factory(**kwargs)                      # builds inputs, returns the call to measure
        with torch.no_grad():
            if torch.cuda.is_available() and kwargs.get("device", "cpu") != "cpu":
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                fn()
                peak = (torch.cuda.max_memory_allocated() - before) / 2**20
            else:
                before = _rss_mb()
                fn()
                peak = max(0.0, _peak_rss_mb() - before)
            seconds = time_call(fn, repeats=kwargs.get("repeats", 2), warmup=0)
        queue.put(Measurement(seconds, peak))
    except BaseException as exc:  # report any failure to the parent, then exit
        queue.put(exc)


def measure(target: str, threads: int | None = None, timeout: float = 900.0, **kwargs: Any) -> Measurement:
    """Run `module:factory(**kwargs)()` in a fresh process; returns its time and peak memory."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, kwargs, threads or torch.get_num_threads(), queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    if isinstance(result, BaseException):
        raise RuntimeError(f"benchmark {target} failed: {result!r}") from result
    return result
