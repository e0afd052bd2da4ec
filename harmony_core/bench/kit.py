"""`python -m harmony_core bench memory`: the memory kit on the CPU (issue #12), ratios in one run.

One forward of the `mid_config` model at 8 layers of width 384 (GLDI; random weights, float32, one thread) per
setting, each in a fresh subprocess: no kit, fp8 weights, half / all of the layers block-swapped, fp8 + all
swapped. Columns:
- `peak_rss_mb` (measured): the process's peak resident memory during the forward (VmHWM after clear_refs)
  above its resident memory before the model was built: weights + activations + the kit's staging.
- `device_mb` (counted from the tensors): the weights the accelerator would hold at once: the resident ones
  plus the most swapped-layer bytes `BlockSwap` held at a time (`peak_bytes`).
- `*_ratio`: against the row without the kit; `bit_identical` / `rel_err`: the outputs against that row's.
On a CPU the "accelerator" is the CPU itself: a swapped layer's home copy and its streamed copy are both in
the same RSS, so block swap cannot lower `peak_rss_mb` here (its rows show the staging it adds: at most two
layers); `device_mb` is what it saves on a GPU. fp8 lowers both.
"""
from __future__ import annotations

import ctypes
import gc
import os
import tempfile
from typing import Any

import torch

from ..config import AudioConfig, HarmonyConfig, VideoConfig, preset
from .measure import run_in_subprocess

BENCH_LAYERS = 8
BENCH_CONFIG = {"layers": BENCH_LAYERS, "dim": 384, "ffn": 1024, "heads": 6}   # 55 M parameters
SETTINGS = {"none": (False, 0), "fp8": (True, 0), "swap half": (False, BENCH_LAYERS // 2),
            "swap all": (False, BENCH_LAYERS), "fp8 + swap all": (True, BENCH_LAYERS)}
BENCH_INPUT = (9, 32, 32, 63)   # latent frames, latent height, width (48 channels), audio latents (20 channels)
TEST_INPUT = (5, 16, 16, 31)


def mid_config(layers: int = 4, dim: int = 256, ffn: int = 768, heads: int = 4) -> HarmonyConfig:
    """The `tiny` preset scaled up (widths 256, 4 heads of 64, 4 layers, GLDI on every layer: 12 M parameters):
    a forward over 320 video tokens takes a fraction of a second on one core. For tests; `bench memory` runs it
    at widths 384 and 8 layers (`BENCH_CONFIG`)."""
    return HarmonyConfig(
        name="mid",
        video=VideoConfig(dim=dim, ffn_dim=ffn, freq_dim=64, text_dim=64, text_len=16, num_heads=heads,
                          num_layers=layers),
        audio=AudioConfig(dim=dim, ffn_dim=ffn, freq_dim=64, text_dim=64, text_len=16, num_heads=heads,
                          num_layers=layers, transcript_dim=64, transcript_conv_layers=1),
        codecs={"video": "wan2.2-vae", "audio": "mmaudio-16k"},
    ).validate()


def mid_model(seed: int = 0, cfg: HarmonyConfig | None = None) -> torch.nn.Module:
    """`mid_config` with random weights; the interaction's zero-initialised output projections get N(0, 0.02)
    so that every path carries signal (as a trained model's do)."""
    from ..model.harmony import HarmonyModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HarmonyModel(cfg or mid_config()).eval()
        with torch.no_grad():
            for name, p in model.interaction.named_parameters():
                if p.ndim == 2 or name.endswith(".o.bias"):
                    p.normal_(0, 0.02)
    return model


def mid_inputs(cfg: HarmonyConfig, size: tuple[int, int, int, int] = TEST_INPUT, batch: int = 1,
               seed: int = 1) -> tuple:
    """(video, audio, t_video, t_audio, cond) for `HarmonyModel.forward` at `size` = (Tv, h, w, Ta)."""
    from ..model.conditioning import Conditioning
    from ..model.transcript import encode_transcripts

    tv, h, w, ta = size
    g = torch.Generator().manual_seed(seed)
    cond = Conditioning(torch.randn(batch, 8, cfg.video.text_dim, generator=g),
                        torch.randn(batch, 8, cfg.audio.text_dim, generator=g),
                        encode_transcripts(["a door slams twice"] * batch), torch.randn(batch, cfg.audio.in_dim, 9,
                                                                                        generator=g))
    return (torch.randn(batch, cfg.video.in_dim, tv, h, w, generator=g),
            torch.randn(batch, cfg.audio.in_dim, ta, generator=g),
            torch.rand(batch, tv, generator=g), torch.rand(batch, ta, generator=g), cond)


def _return_freed_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: RSS may then include freed heap
        pass


def forward_with_kit(args: dict[str, Any]) -> dict[str, Any]:
    """Subprocess side: build, set up the kit on the CPU, warm up, measure one forward."""
    from safetensors.torch import load_file, save_file

    from ..model.kit import MemoryKit, apply_kit
    from ..model.memory import module_bytes
    from .measure import _status_mb, measured

    base = _status_mb("VmRSS")
    cfg = mid_config(**BENCH_CONFIG)
    model = mid_model(cfg=cfg)
    apply_kit(model, MemoryKit(fp8=args["fp8"], swap_blocks=args["swap"]), "cpu")
    _return_freed_memory()    # the float32 weights fp8 replaced: give the heap back, so RSS shows what is held
    swap = model.block_swap
    swapped = sum(swap.layer_bytes(i) for i in swap.swapped) if swap is not None else 0
    device_weights = module_bytes([model], 4) - swapped
    x = mid_inputs(cfg, tuple(args["size"]))
    model(*mid_inputs(cfg, (2, 8, 8, 8)))                        # warm-up: thread pools, allocator, kernels
    (video, audio), seconds, _, method = measured(lambda: model(*x), torch.device("cpu"))
    peak = _status_mb("VmHWM")
    if args["reference"] is None:
        save_file({"video": video.contiguous(), "audio": audio.contiguous()}, args["save"])
        rel, same = 0.0, True
    else:
        ref = load_file(args["reference"])
        rel = max(float((a - ref[k]).norm() / ref[k].norm()) for k, a in (("video", video), ("audio", audio)))
        same = bool(torch.equal(video, ref["video"]) and torch.equal(audio, ref["audio"]))
    staged = swap.peak_bytes if swap is not None else 0
    return {"peak_rss_mb": peak - base, "device_mb": (device_weights + staged) / 2**20, "forward_s": seconds,
            "rel_err": rel, "bit_identical": same, "peak_method": method}


def rows(quick: bool = False) -> list[dict]:
    size = TEST_INPUT if quick else BENCH_INPUT
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = os.path.join(tmp, "reference.safetensors")
        for name, (fp8, swap) in SETTINGS.items():
            r = run_in_subprocess(forward_with_kit, {"fp8": fp8, "swap": swap, "size": size, "threads": 1,
                                                     "reference": None if name == "none" else ref, "save": ref})
            out.append({"setting": name, **r})
    first = out[0]
    for r in out:
        r["rss_ratio"] = r["peak_rss_mb"] / first["peak_rss_mb"]
        r["device_ratio"] = r["device_mb"] / first["device_mb"]
    keys = ("setting", "peak_rss_mb", "rss_ratio", "device_mb", "device_ratio", "bit_identical", "rel_err",
            "forward_s")
    return [{k: r[k] for k in keys} for r in out]


def small_gldi() -> tuple[torch.nn.Module, tuple]:
    """A 2-layer GLDI model (64 wide, global style) and its forward inputs: the tests' model for layer handling."""
    cfg = mid_config(layers=2, dim=64, ffn=128, heads=2)
    return mid_model(cfg=cfg), mid_inputs(cfg, (3, 4, 4, 11))


def small_uniavgen() -> tuple[torch.nn.Module, tuple]:
    """uniavgen-tiny with random weights, its zero-initialised interaction weights drawn N(0, 0.05) so that every
    path carries signal, and its forward inputs (5 latent frames of 32x32)."""
    from .gpu import build_on_device, inputs, layout_for

    cfg = preset("uniavgen-tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_on_device(cfg, torch.device("cpu"), torch.float32).eval()
        with torch.no_grad():
            for p in model.interaction.parameters():
                if p.ndim == 2:
                    p.normal_(0, 0.05)
    return model, inputs(cfg, layout_for(cfg, 5, 32, 32), 1, torch.device("cpu"), 32, 32)


SMALL_MODELS = {"gldi": small_gldi, "uniavgen": small_uniavgen}
