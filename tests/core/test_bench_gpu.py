"""`python -m harmony_core bench gpu` (bench/gpu.py, bench/flops.py), without a GPU: it skips with a reason, its
FLOP formula agrees with a hand count and with torch's own count of the tiny configs, and its measuring code
runs end to end on the CPU at toy sizes (the GPU run is the same code at the real sizes)."""
from __future__ import annotations

import re

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harmony_core import timeline
from harmony_core.bench import gpu
from harmony_core.bench.flops import Layout, forward_flops, mmdit_block, wan_block
from harmony_core.bench.run import run
from harmony_core.cli import main
from harmony_core.config import preset
from harmony_core.model.conditioning import Conditioning
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.transcript import encode_transcripts


def test_skips_with_a_reason_without_cuda(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rows = gpu.rows()
    assert rows == [{"suite": "gpu", "status": gpu.SKIP}]
    assert "no CUDA device" in gpu.SKIP and "bench gpu" in gpu.SKIP
    assert main(["bench", "gpu"]) == 0
    assert "skipped: no CUDA device" in capsys.readouterr().out
    assert "skipped" in run("gpu", quick=True)


def test_wan_and_mmdit_blocks_by_hand():
    L, T, C, F = 120, 16, 64, 128                   # tiny: 5 latent frames x (8/2) x (12/2) tokens, 16 text rows
    hand = (4 * 2 * L * C * C + 4 * L * L * C             # self-attention: q, k, v, o; q k^T and p v
            + 2 * 2 * L * C * C + 2 * 2 * T * C * C + 4 * L * T * C   # cross: q, o on L; k, v on T; scores
            + 2 * 2 * L * C * F)                           # FFN
    assert wan_block(L, T, C, F) == hand == 14_270_464
    la, lc = 31 + 7, 16                                    # target + reference audio latents, caption rows
    stream = [4 * 2 * n * C * C + 2 * 2 * n * C * F for n in (la, lc)]
    assert mmdit_block(la, lc, C, F) == sum(stream) + 4 * (la + lc) ** 2 * C == 4_285_440


def _counted(model, args):
    """torch's FLOP count per module (reference attention: its einsums are counted; CPU SDPA kernels are not)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*args)
    per = {k.removeprefix("HarmonyModel."): sum(v.values()) for k, v in counter.get_flop_counts().items()}
    return lambda prefix: sum(v for k, v in per.items() if re.fullmatch(re.escape(prefix) + r"\d+", k))


def test_formula_matches_torch_on_tiny():
    cfg = preset("tiny")
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    cond = Conditioning(torch.randn(1, 6, 32, generator=g), torch.randn(1, 4, 32, generator=g),
                        encode_transcripts(["hello"]), torch.randn(1, 20, 7, generator=g))
    args = (torch.randn(1, 48, 5, 8, 12, generator=g), torch.randn(1, 20, 31, generator=g), torch.rand(1, 5),
            torch.rand(1, 31), cond)
    count = _counted(HarmonyModel(cfg, attention="reference").eval(), args)
    flops = forward_flops(cfg, Layout(frames=5, per_frame=24, audio=31, ref_audio=7, context=16, transcript=16))
    assert count("video.blocks.") == flops["video"] == 2 * 14_270_464
    assert count("audio.blocks.") == flops["audio"] == 2 * 4_285_440
    # GLDI by hand: A2V windows of 10, 13, 13, 13, 10 audio latents; V2A: 81 frame reads over 31 latents
    assert int(timeline.a2v_windows(5, 31, 0.5).valid.sum()) == 59
    lin = 2 * 120 * 64 * 64                                   # a projection of the 120 video tokens
    small = 2 * 31 * 64 * 64                                  # of the 31 audio latents
    a2v = 2 * lin + 2 * small + 4 * 24 * 59 * 64
    v2a = 2 * lin + 2 * small + 4 * 24 * 64 * 81
    style = 2 * lin + 2 * (2 * 7 * 64 * 64) + 4 * 7 * 120 * 64
    assert flops["interaction"] == 2 * (a2v + v2a + style)


def test_formula_matches_torch_on_uniavgen_tiny():
    cfg = preset("uniavgen-tiny")
    model = HarmonyModel(cfg, attention="reference").eval()
    lay = gpu.layout_for(cfg, 21, 96, 128)
    args = gpu.inputs(cfg, lay, 1, torch.device("cpu"), 96, 128)
    lay = gpu.layout_for(cfg, 21, 96, 128, transcript=args[4].transcript.shape[1])
    assert (lay.frames, lay.per_frame, lay.audio) == (7, 12, 131)
    count = _counted(model, args)
    flops = forward_flops(cfg, lay)
    assert count("video.blocks.") == flops["video"]
    assert count("audio.blocks.") == flops["audio"]
    assert count("interaction.") == flops["interaction"] > 0


def test_real_layouts_and_their_flops():
    uni, h5 = gpu.layout_for(preset("uniavgen"), 109), gpu.layout_for(preset("harmony-5b"), 109)
    assert (uni.frames, uni.per_frame, uni.audio) == (29, 858, 681)     # 28 latent frames + the reference frame
    assert (h5.frames, h5.per_frame, h5.audio) == (28, 858, 137)        # 4.36 s x 31.25 latents/s
    total = forward_flops(preset("uniavgen"), uni)
    assert 4e14 < total["total"] < 6e14 and total["video"] / total["total"] > 0.9


def test_peak_lookup(monkeypatch):
    monkeypatch.delenv("HARMONY_PEAK_TFLOPS", raising=False)
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3") == 989.4
    assert gpu.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu.peak_tflops("NVIDIA GeForce RTX 4090") == 165.2
    assert gpu.peak_tflops("Some Future GPU") is None
    monkeypatch.setenv("HARMONY_PEAK_TFLOPS", "123")
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3") == 123.0


def test_the_measuring_code_runs_on_the_cpu_at_toy_sizes():
    rows = gpu.measure_model("uniavgen-tiny", preset("uniavgen-tiny"), torch.device("cpu"), (21,), 1, 1.0, 96, 128)
    assert [(r["setting"], r["step"], r["rows"]) for r in rows] == [
        ("bf16", "joint", 1), ("bf16", "SyncCFG", 3), ("fp8", "joint", 1), ("fp8", "SyncCFG", 3),
        ("fp8 + swap 2", "joint", 1), ("fp8 + swap 2", "SyncCFG", 3)]
    assert all(r["s_per_step"] > 0 and r["tflop_per_step"] > 0 and r["peak_vram_gib"] is None for r in rows)
    assert rows[1]["tflop_per_step"] == pytest.approx(3 * rows[0]["tflop_per_step"])
