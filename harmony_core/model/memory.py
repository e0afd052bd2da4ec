"""Activation memory of one Harmony forward, estimated from shapes (no allocation).

Schedulers that must make room before sampling (ComfyUI's `load_models_gpu(memory_required=...)`) need
the figure before the first step. What stays alive through the forward: both residual streams in float32
(the Wan tower keeps x in float32), their modulated copies and the audio tower's per-token [6, dim]
modulation; what peaks inside one block: q, k, v and the attention output plus the FFN hidden layer and
its activation, in the compute dtype, for the wider of the two towers (they run one after the other).
Attention itself is assumed memory-efficient (SDPA flash / mem-efficient kernels, or the gathered local
attention): no [N, N] score matrix. `MARGIN` covers the allocator's rounding and small temporaries
(norms, RoPE, GLDI windows).

The memory kit (model/kit.py) changes what the device holds: `weight_bytes` splits the weights of a config
between the device and the CPU for a kit, and `kit_bytes` is what the kit adds to the activations of a forward
(swapped layers in flight, the compute-dtype copy of an fp8 weight) for a model as it is set up.
"""
from __future__ import annotations

from torch import nn

from ..config import HarmonyConfig
from .fp8 import SCALE_SUFFIX, fp8_layers, is_fp8, quantize_model
from .kit import MemoryKit
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


# ------------------------------------------------------------------------------------------------
# the memory kit (issue #12): fp8 weights and block swap
# ------------------------------------------------------------------------------------------------
SCALE_BYTES = 4   # fp8 scales are float32


def kit_bytes(model: nn.Module, element_size: int) -> int:
    """Device bytes the memory kit adds to a forward's activations, read from the model as it is set up:
    block swap holds at most two swapped layers at once (the one running and the one arriving: twice the
    largest swapped layer), and an fp8 layer casts its weight to the compute dtype (`element_size` bytes) for
    its matmul (the largest fp8 weight, one at a time). 0 for a model without the kit."""
    swap = getattr(model, "block_swap", None)
    staged = 2 * max((swap.layer_bytes(i) for i in swap.swapped), default=0) if swap is not None else 0
    largest = max((m.stored.numel() for _, m in fp8_layers(model)), default=0)
    return staged + largest * element_size


def weight_bytes(cfg: HarmonyConfig, kit: MemoryKit, element_size: int) -> dict[str, int]:
    """Weights of `cfg` with `kit`, from a model built on the meta device: {"device": resident on the
    accelerator, "cpu": swapped layers' homes, "staged": kit_bytes (in flight during a forward)}; float
    tensors take `element_size` bytes, fp8 weights 1 and their scales 4."""
    from .load import build_empty
    from .offload import layer_modules

    model = build_empty(cfg)
    if kit.fp8:
        quantize_model(model, kit.fp8_scaling)
    layers = len(model.video.blocks)
    per_layer = [module_bytes(layer_modules(model, i), element_size) for i in range(layers)]
    swapped = per_layer[layers - kit.swap_blocks:] if kit.swap_blocks else []
    total = module_bytes([model], element_size)
    largest = max((m.stored.numel() for _, m in fp8_layers(model)), default=0)
    staged = 2 * max(swapped, default=0) + largest * element_size
    return {"device": total - sum(swapped), "cpu": sum(swapped), "staged": staged}


def module_bytes(modules: list[nn.Module], element_size: int) -> int:
    """Bytes of the modules' state with float tensors at `element_size` (fp8 weights 1, their scales 4)."""
    n = 0
    for top in modules:
        for name, t in top.state_dict(keep_vars=True).items():
            size = 1 if is_fp8(t) else SCALE_BYTES if name.endswith(SCALE_SUFFIX) else element_size
            n += t.numel() * size if t.is_floating_point() else t.numel() * t.element_size()
    return n
