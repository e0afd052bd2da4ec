"""Parameter counts and state-dict shapes of a config, from a model built on the meta device (no memory,
no weights): what `python -m harmony_core info --preset NAME` prints, and what the full-size tests compare."""
from __future__ import annotations

from collections import Counter

from ..config import HarmonyConfig
from .load import build_empty


def state_shapes(cfg: HarmonyConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the model's state dict (our names) -> its shape."""
    return {k: tuple(v.shape) for k, v in build_empty(cfg).state_dict().items()}


def parameter_count(cfg: HarmonyConfig) -> int:
    """Parameters of the model `cfg` describes (e.g. 7,056,424,223 for preset("uniavgen"))."""
    return sum(p.numel() for p in build_empty(cfg).parameters())


def parameter_counts(cfg: HarmonyConfig) -> dict[str, int]:
    """Parameters per top-level part: video, audio, interaction (and text_encoder when there is one)."""
    counts: Counter[str] = Counter()
    for name, p in build_empty(cfg).named_parameters():
        counts[name.split(".", 1)[0]] += p.numel()
    return dict(counts)
