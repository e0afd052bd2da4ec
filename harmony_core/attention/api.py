"""Attention backends: one layout, a registry, resolution at model build time.

Layout: q [B, Lq, H, D], k and v [B, Lk, H, D]; `key_mask` is None or bool [B, Lk] (True = attend).
Returns [B, Lq, H, D]. Scale 1/sqrt(D), no causal mask. Rows of q whose keys are all masked are not
allowed (callers guarantee at least one valid key per row).

A backend that cannot honour a call (missing package, a mask it does not support, a dtype or head
dimension it rejects) raises `AttentionUnavailable`; nothing falls back silently.
"""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import cancel

CANCEL_SCORES = 1 << 26  # query rows x keys per piece of a large call (see Backend.__call__)

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


class AttentionUnavailable(RuntimeError):
    """The requested attention backend is missing or cannot honour the call."""


@dataclass(frozen=True)
class Backend:
    name: str
    fn: AttentionFn
    requires: str | None = None            # importable module the backend needs
    supports_mask: bool = True
    dtypes: tuple[torch.dtype, ...] | None = None   # None: any floating dtype
    max_head_dim: int | None = None
    needs_cuda: bool = False

    def available(self) -> str | None:
        """None when usable here, else the reason it is not."""
        if self.requires and importlib.util.find_spec(self.requires) is None:
            return f"attention backend {self.name!r} needs the '{self.requires}' package, which is not installed"
        if self.needs_cuda and not torch.cuda.is_available():
            return f"attention backend {self.name!r} needs a CUDA GPU"
        return None

    def check_call(self, q: torch.Tensor, key_mask: torch.Tensor | None) -> None:
        if key_mask is not None and not self.supports_mask:
            raise AttentionUnavailable(
                f"attention backend {self.name!r} cannot apply a key mask; use 'sdpa' for this model")
        if self.dtypes is not None and q.dtype not in self.dtypes:
            raise AttentionUnavailable(
                f"attention backend {self.name!r} accepts {[str(d) for d in self.dtypes]}, got {q.dtype}; "
                "load the model in fp16/bf16 or use 'sdpa'")
        if self.max_head_dim is not None and q.shape[-1] > self.max_head_dim:
            raise AttentionUnavailable(
                f"attention backend {self.name!r} supports head_dim <= {self.max_head_dim}, got {q.shape[-1]}")

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 key_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.check_call(q, key_mask)
        rows = max(1, CANCEL_SCORES // max(1, k.shape[1]))  # query rows per piece
        if q.shape[1] <= rows:
            return self.fn(q, k, v, key_mask)
        # Large calls run in pieces of query rows (each row's softmax only sees its own scores, so the pieces
        # give the rows of the whole), with a cancel check between pieces: one call over 100k tokens can
        # take minutes on a CPU, and a cancel must not wait for it.
        out = []
        for piece in q.split(rows, dim=1):
            cancel.check()
            out.append(self.fn(piece, k, v, key_mask))  # [B, rows, H, D]
        return torch.cat(out, dim=1)


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    _REGISTRY[backend.name] = backend
    return backend


def names() -> list[str]:
    return sorted(_REGISTRY)


def available_names() -> list[str]:
    return [n for n in names() if _REGISTRY[n].available() is None]


def resolve(name: str) -> Backend:
    """The backend called `name`, or AttentionUnavailable saying why it cannot be used here."""
    if name not in _REGISTRY:
        raise AttentionUnavailable(f"unknown attention backend {name!r}; known: {names()}")
    backend = _REGISTRY[name]
    reason = backend.available()
    if reason:
        raise AttentionUnavailable(f"{reason}. Available here: {available_names()}")
    return backend
