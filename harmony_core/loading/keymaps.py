"""Declarative key maps: which source formats we read and how their names become ours.

A format is recognised from its keys after stripping wrapper prefixes (ComfyUI saves diffusion models
under `model.diffusion_model.`). Renames are prefix rules, applied in order, first match wins.
"""
from __future__ import annotations

from dataclasses import dataclass

WRAPPER_PREFIXES = ("model.diffusion_model.", "diffusion_model.")


@dataclass(frozen=True)
class KeyMap:
    name: str
    description: str
    rules: tuple[tuple[str, str], ...]   # (source prefix, our prefix)
    parts: tuple[str, ...]               # top-level parts of our model the format provides

    def apply(self, key: str) -> str:
        for src, dst in self.rules:
            if key.startswith(src):
                return dst + key[len(src):]
        return key


HARMONY = KeyMap("harmony", "Harmony checkpoint (this project's format)", (),
                 ("video", "audio", "interaction", "text_encoder"))
WAN22 = KeyMap("wan2.2", "plain Wan2.2-TI2V DiT: video tower only (the paper's initialisation)",
               (("", "video."),), ("video",))
FORMATS = {k.name: k for k in (HARMONY, WAN22)}


def detect(keys: list[str]) -> KeyMap:
    """Which format a (wrapper-stripped) key list is in; ValueError naming what was expected."""
    if any(k.startswith("video.") for k in keys):
        return HARMONY
    if "patch_embedding.weight" in keys and any(k.startswith("blocks.") for k in keys):
        return WAN22
    sample = ", ".join(sorted(keys)[:5])
    raise ValueError(
        "not a Harmony or Wan2.2 DiT checkpoint: expected keys under 'video.' (Harmony) or "
        f"'patch_embedding.weight' + 'blocks.*' (Wan2.2), optionally prefixed by {WRAPPER_PREFIXES}; "
        f"found e.g. {sample}")
