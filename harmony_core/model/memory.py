"""Activation memory of one Harmony forward, estimated from shapes (no allocation).

Schedulers that must make room before sampling (ComfyUI's `load_models_gpu(memory_required=...)`) need
the figure before the first step. What stays alive through the forward: both residual streams in float32
(the Wan tower keeps x in float32), their modulated copies and the audio tower's per-token [6, dim]
modulation; what peaks inside one block: q, k, v and the attention output plus the FFN hidden layer and
its activation, in the compute dtype, for the wider of the two towers (they run one after the other).
Attention itself is assumed memory-efficient (SDPA flash / mem-efficient kernels, or the gathered local
attention): no [N, N] score matrix. `MARGIN` covers the allocator's rounding and small temporaries
(norms, RoPE, GLDI windows).
"""
from __future__ import annotations

from ..config import HarmonyConfig
from .uniavgen_interaction import V2A_PIECE

FLOAT32 = 4
MARGIN = 1.25


def forward_bytes(cfg: HarmonyConfig, rows: int, video_tokens: int, audio_tokens: int,
                  element_size: int) -> int:
    """Peak activation bytes of one forward over `rows` batch rows (takes x guidance passes), with
    `video_tokens` patches and `audio_tokens` latents (+ reference audio) per row, weights of
    `element_size` bytes (2 for bf16/fp16, 4 for fp32)."""
    v, a = cfg.video, cfg.audio
    if a.kind == "mel":   # UniAVGen: one timestep per sample, the transcript as cross-attention context
        return _mel_bytes(cfg, rows, video_tokens, audio_tokens, element_size)
    audio_rows = audio_tokens + a.text_len                  # MM-DiT attends over [caption; audio]
    alive = FLOAT32 * (2 * video_tokens * v.dim + 2 * audio_rows * a.dim + 6 * audio_tokens * a.dim)
    video_block = video_tokens * (4 * v.dim + 2 * v.ffn_dim)
    audio_block = audio_rows * (4 * a.dim + 2 * a.ffn_dim)
    return int(MARGIN * rows * (alive + element_size * max(video_block, audio_block)))


def _mel_bytes(cfg: HarmonyConfig, rows: int, video_tokens: int, audio_tokens: int, element_size: int) -> int:
    """UniAVGen's variant: the reference frame adds video_tokens / frames tokens (callers count it in); the
    V2A keys of one piece of audio tokens (k, its norm, v, RoPE'd k) peak inside the interaction."""
    v, a = cfg.video, cfg.audio
    alive = FLOAT32 * (2 * video_tokens * v.dim + 2 * audio_tokens * a.dim)
    video_block = video_tokens * (4 * v.dim + 2 * v.ffn_dim)
    audio_block = audio_tokens * (4 * a.dim + 2 * a.ffn_dim)
    v2a = 4 * V2A_PIECE if cfg.interaction.kind == "uniavgen" else 0
    return int(MARGIN * rows * (alive + element_size * max(video_block, audio_block, v2a)))
