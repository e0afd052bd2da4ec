"""Declarative key maps: which source formats we read and how their names become ours.

A format is recognised from its keys after stripping wrapper prefixes (ComfyUI saves diffusion models
under `model.diffusion_model.`). Renames are prefix rules, applied in order, first match wins; a key no rule
matches keeps its name (and is then reported as unexpected by the strict check).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import UNIAVGEN_LAYERS

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

    def invert(self, key: str) -> str:
        """Our name -> the source format's (the rule with the longest matching target prefix)."""
        hits = [(src, dst) for src, dst in self.rules if key.startswith(dst)]
        if not hits:
            return key
        src, dst = max(hits, key=lambda r: len(r[1]))
        return src + key[len(dst):]


HARMONY = KeyMap("harmony", "Harmony checkpoint (this project's format)", (),
                 ("video", "audio", "interaction", "text_encoder"))
WAN22 = KeyMap("wan2.2", "plain Wan2.2-TI2V DiT: video tower only (the paper's initialisation)",
               (("", "video."),), ("video",))

# UniAVGen (github.com/MCG-NJU/Sora2-mini WanModel.state_dict(), HF MCG-NJU/UniAVGen): the Wan2.2 video tower
# with Wan's `text_embedding` renamed `text_embedding_video` (UniAVGen's `text_embedding` is the F5
# transcript embedding), the mel audio tower, and module N of a2v_blocks / v2a_blocks on layer 2N (the
# reference's hard-coded map). Specific prefixes first: `head.` must not catch `head_audio.`.
_UNIAVGEN_INTERACTION = tuple(
    (f"{kind}_blocks.{n}.", f"interaction.{layer}.{kind}.")
    for n, layer in enumerate(UNIAVGEN_LAYERS) for kind in ("a2v", "v2a"))
UNIAVGEN = KeyMap(
    "uniavgen", "UniAVGen joint audio-video DiT (MCG-NJU/UniAVGen)",
    (("text_embedding_video.", "video.text_embedding."),
     ("text_embedding.", "audio.transcript_embedding."),
     ("text_proj.", "audio.transcript_embedding.proj."),
     ("audio_embedding.", "audio.embedding."),
     ("audio_padding", "audio.padding"),
     ("time_embedding_audio.", "audio.time_embedding."),
     ("time_projection_audio.", "audio.time_projection."),
     ("audio_blocks.", "audio.blocks."),
     ("head_audio.", "audio.head."),
     *_UNIAVGEN_INTERACTION,
     ("patch_embedding.", "video.patch_embedding."),
     ("time_embedding.", "video.time_embedding."),
     ("time_projection.", "video.time_projection."),
     ("blocks.", "video.blocks."),
     ("head.", "video.head.")),
    ("video", "audio", "interaction"))
UNIAVGEN_MARKERS = ("text_embedding_video.", "a2v_blocks.", "v2a_blocks.", "audio_blocks.", "head_audio.")

FORMATS = {k.name: k for k in (HARMONY, WAN22, UNIAVGEN)}


def detect(keys: list[str]) -> KeyMap:
    """Which format a (wrapper-stripped) key list is in; ValueError naming what was expected."""
    if any(k.startswith("video.") for k in keys):
        return HARMONY
    if any(k.startswith(UNIAVGEN_MARKERS) for k in keys):
        return UNIAVGEN
    if "patch_embedding.weight" in keys and any(k.startswith("blocks.") for k in keys):
        return WAN22
    sample = ", ".join(sorted(keys)[:5])
    raise ValueError(
        "not a Harmony or Wan2.2 DiT checkpoint (nor UniAVGen): expected keys under 'video.' (Harmony), "
        f"{', '.join(repr(m + '*') for m in UNIAVGEN_MARKERS[:2])} (UniAVGen) or "
        f"'patch_embedding.weight' + 'blocks.*' (Wan2.2), optionally prefixed by {WRAPPER_PREFIXES}; "
        f"found e.g. {sample}")
