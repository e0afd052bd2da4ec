"""Timing and peak-memory measurement shared by every benchmark.

- Each measured call runs in a fresh Python subprocess (`run_in_subprocess`), so earlier work and the
  allocator's cache neither hide nor inflate the figure.
- CPU peak memory: right before the call the child resets the kernel's peak-RSS counter (writes "5" to
  /proc/self/clear_refs, Linux >= 4.0) and reads VmRSS; afterwards it reads VmHWM. The figure is the
  resident growth during the call (activations, caches, outputs; weights and inputs excluded). Where
  clear_refs cannot be written it falls back to getrusage's lifetime peak (an upper bound); the row's
  `peak_method` says which.
- CUDA: torch.cuda.max_memory_allocated() growth over memory_allocated() before the call.
"""
from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_REPO = Path(__file__).resolve().parents[2]
_CHILD = "import sys; from harmony_core.bench.measure import _child_main; _child_main(sys.argv[1], sys.argv[2])"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(f"{field} not in /proc/self/status")


def reset_peak(device: torch.device) -> tuple[str, float]:
    """Start a peak-memory window; returns (method, MB in use now)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return "cuda max_memory_allocated", torch.cuda.memory_allocated(device) / 2**20
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM after clear_refs", _status_mb("VmRSS")
    except OSError:
        return "ru_maxrss (lifetime peak)", _status_mb("VmRSS")


def peak_growth(device: torch.device, method: str, before: float) -> float:
    """Peak MB above `before` since `reset_peak`."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    elif method.startswith("VmHWM"):
        peak = _status_mb("VmHWM")
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux reports KiB
    return max(0.0, peak - before)


def measured(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float, float, str]:
    """One call of `fn`: (result, seconds, peak MB growth, method)."""
    method, before = reset_peak(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return result, seconds, peak_growth(device, method, before), method


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


def _child_main(target: str, payload: str) -> None:
    """Subprocess side: call `module:function(args) -> dict` and print it as one JSON line."""
    module, name = target.rsplit(":", 1)
    args = json.loads(payload)
    torch.set_num_threads(int(args.get("threads") or torch.get_num_threads()))
    with torch.no_grad():
        result = getattr(importlib.import_module(module), name)(args)
    sys.stdout.write(json.dumps(result) + "\n")


def run_in_subprocess(fn: Callable[[dict[str, Any]], dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
    """Run `fn(args)` (a module-level function) in a fresh interpreter and return its dict (JSON round trip).
    The child imports `fn` by its module and name, so it must be importable, not a closure or a lambda."""
    target = f"{fn.__module__}:{fn.__qualname__}"
    if "<" in fn.__qualname__ or "." in fn.__qualname__:
        raise ValueError(f"{target}: give a module-level function (the subprocess imports it by name)")
    path = os.pathsep.join(filter(None, [str(_REPO), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", _CHILD, target, json.dumps(args)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": path}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark {target} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
