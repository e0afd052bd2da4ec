"""Stand-in for `comfy.utils.ProgressBar` (ComfyUI @ 783545f).

Without a server the global hook is None and updates only move `current`; under `main.py` the hook
(`hijack_progress`) first calls `throw_exception_if_processing_interrupted()`, so every update is a cancel
point. Tests install such a hook with `set_progress_bar_global_hook`. Updates are throttled like the real
bar: the first, the final and any with a preview are always sent, others at most every 0.1 s and 0.5 %.
"""
from __future__ import annotations

import time

PROGRESS_BAR_HOOK = None
PROGRESS_THROTTLE_MIN_INTERVAL = 0.1
PROGRESS_THROTTLE_MIN_PERCENT = 0.5


def set_progress_bar_global_hook(function) -> None:
    global PROGRESS_BAR_HOOK
    PROGRESS_BAR_HOOK = function


class ProgressBar:
    def __init__(self, total, node_id=None):
        self.total, self.current, self.node_id = total, 0, node_id
        self.hook = PROGRESS_BAR_HOOK
        self._last_time, self._last_value = 0.0, -1

    def update_absolute(self, value, total=None, preview=None):
        if total is not None:
            self.total = total
        value = min(value, self.total)
        self.current = value
        if self.hook is None:
            return
        now = time.perf_counter()
        forced = preview is not None or self._last_value < 0 or value >= self.total
        percent = (value - max(0, self._last_value)) / self.total * 100 if self.total > 0 else 100
        if forced or (now - self._last_time >= PROGRESS_THROTTLE_MIN_INTERVAL
                      and percent >= PROGRESS_THROTTLE_MIN_PERCENT):
            self.hook(self.current, self.total, preview, node_id=self.node_id)
            self._last_time, self._last_value = now, value

    def update(self, value):
        self.update_absolute(self.current + value)
