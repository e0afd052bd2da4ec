"""Cooperative cancellation for long loops: codec chunks and tiles, anchor building, takes, muxing.

harmony_core knows no UI. A host registers its "stop if the user cancelled" function once (the ComfyUI pack
registers `comfy.model_management.throw_exception_if_processing_interrupted`); every long loop calls `check()`
between steps of bounded size, so a cancel takes effect within one chunk / tile / frame batch instead of at the
end of the job. With nothing registered `check()` does nothing (on the CLI, Ctrl-C raises KeyboardInterrupt
between these same steps).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_check: Callable[[], None] | None = None


def set_check(fn: Callable[[], None] | None) -> Callable[[], None] | None:
    """Register the host's cancel check (it raises to cancel); returns the one it replaces."""
    global _check
    previous, _check = _check, fn
    return previous


def check() -> None:
    """Raise the host's cancel exception if the user cancelled; cheap enough to call per chunk."""
    if _check is not None:
        _check()


@contextmanager
def cancel_check(fn: Callable[[], None] | None) -> Iterator[None]:
    """Use `fn` as the cancel check inside the block (tests, nested hosts)."""
    previous = set_check(fn)
    try:
        yield
    finally:
        set_check(previous)
