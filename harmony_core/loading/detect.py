"""Infer configs from tensor shapes (and from metadata when a file carries it)."""
from __future__ import annotations

import dataclasses
import json
import re

from ..config import UNIAVGEN_LAYERS, AudioConfig, HarmonyConfig, VideoConfig, preset

WAN_HEAD_DIM = 128  # every released Wan2.x DiT uses head_dim 128; shapes cannot tell the head count


def _count_blocks(shapes: dict[str, tuple[int, ...]], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"blocks\.(\d+)\.")
    found = {int(m.group(1)) for k in shapes if (m := pat.match(k))}
    return max(found) + 1 if found else 0


def video_config_from_shapes(shapes: dict[str, tuple[int, ...]], prefix: str = "video.",
                             metadata: dict[str, str] | None = None) -> VideoConfig:
    """Wan2.2 DiT hyper-parameters from its tensor shapes. The head count comes from Wan's
    `constructor_kwargs` metadata when present, else dim / 128 (true for all released Wan models)."""
    p = prefix
    dim, in_dim, *patch = shapes[p + "patch_embedding.weight"]
    ffn_dim = shapes[p + "blocks.0.ffn.0.weight"][0]
    text_dim = shapes[p + "text_embedding.0.weight"][1]
    freq_dim = shapes[p + "time_embedding.0.weight"][1]
    out = shapes[p + "head.head.weight"][0] // (patch[0] * patch[1] * patch[2])
    kwargs = json.loads((metadata or {}).get("constructor_kwargs", "{}"))
    heads = int(kwargs.get("num_heads", max(1, dim // WAN_HEAD_DIM)))
    return VideoConfig(in_dim=in_dim, out_dim=out, dim=dim, ffn_dim=ffn_dim, freq_dim=freq_dim,
                       text_dim=text_dim, text_len=int(kwargs.get("text_len", 512)), num_heads=heads,
                       num_layers=_count_blocks(shapes, p), patch_size=tuple(patch),
                       cross_attn_norm=(p + "blocks.0.norm3.weight") in shapes,
                       qk_norm=(p + "blocks.0.self_attn.norm_q.weight") in shapes)


def config_for_wan(shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None,
                   audio: AudioConfig | None = None) -> HarmonyConfig:
    """A Harmony config around a plain Wan2.2 video tower: the audio tower takes the preset defaults
    (or `audio`) with as many layers as the video tower."""
    video = video_config_from_shapes(shapes, "video.", metadata)
    base = audio or AudioConfig()
    audio_cfg = AudioConfig(**{**base.__dict__, "num_layers": video.num_layers,
                               "text_dim": base.text_dim if audio else video.text_dim})
    return HarmonyConfig(name="wan2.2-init", video=video, audio=audio_cfg).validate()


def _count_sub(shapes: dict[str, tuple[int, ...]], prefix: str) -> int:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in shapes if (m := pat.match(k))}
    return max(found) + 1 if found else 0


def config_for_uniavgen(shapes: dict[str, tuple[int, ...]], metadata: dict[str, str] | None) -> HarmonyConfig:
    """A UniAVGen checkpoint's config from its tensor shapes (our names, after the key map), with head counts and
    text_len from the reference's `constructor_kwargs` metadata when present (else head_dim 128, as released).

    The parts the reference hard-codes are not read from the file: the interaction runs on its layer map
    [0, 2, ..., 28] cut to the depth, with face-mask heads, so a checkpoint missing a module fails the strict
    check instead of building a smaller model. The transcript width and vocabulary come from the shapes (the
    parity fixture shrinks them)."""
    base = preset("uniavgen")
    kwargs = json.loads((metadata or {}).get("constructor_kwargs", "{}"))
    video = dataclasses.replace(video_config_from_shapes(shapes, "video.", metadata), ref_frame=True)
    p = "audio."
    dim, in_dim = shapes[p + "embedding.0.weight"]
    vocab, transcript_dim = shapes[p + "transcript_embedding.text_embed.weight"]
    layers = _count_blocks(shapes, p)
    audio = dataclasses.replace(
        base.audio, in_dim=in_dim, out_dim=shapes[p + "head.head.weight"][0], dim=dim,
        ffn_dim=shapes[p + "blocks.0.ffn.0.weight"][0], freq_dim=shapes[p + "time_embedding.0.weight"][1],
        num_heads=int(kwargs.get("audio_num_heads", max(1, dim // video.head_dim))), num_layers=layers,
        transcript_dim=transcript_dim, transcript_vocab=vocab,
        transcript_conv_layers=_count_sub(shapes, p + "transcript_embedding.text_blocks."),
        qk_norm=video.qk_norm, cross_attn_norm=video.cross_attn_norm)
    interaction = dataclasses.replace(
        base.interaction, layers=tuple(i for i in UNIAVGEN_LAYERS if i < video.num_layers))
    for name in ("uniavgen", "uniavgen-tiny"):   # a known size keeps its preset's name and defaults
        known = preset(name)
        if (known.video, known.audio, known.interaction) == (video, audio, interaction):
            return known
    return dataclasses.replace(base, name="uniavgen-custom", video=video, audio=audio,
                               interaction=interaction).validate()
