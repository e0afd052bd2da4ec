"""Attention backends (layout [B, L, H, D]); resolve a name when the model is built."""
from . import backends as _backends  # noqa: F401  (registers the shipped backends)
from .api import AttentionUnavailable, Backend, available_names, names, register, resolve
from .backends import reference_attention

__all__ = ["AttentionUnavailable", "Backend", "available_names", "names", "register", "resolve",
           "reference_attention"]
