"""Block swap (model/offload.py), torch.compile per block (model/kit.py) and the memory estimate with the kit
(model/memory.py): issue #12.

Block swap only moves weights: a streamed copy is exact, so outputs must be BIT-identical to running without
swap (torch.equal, no tolerance), with none, half or all of the layers swapped, with skipped layers, and with
fp8 weights. On a CPU-only machine the "device" is the CPU: the streamed copies are real copies (their storage
differs from the homes' during the layer, and they are gone after it), which the tests check. The CUDA path
(pinned homes, side stream, events) runs where there is a GPU and is skipped otherwise.
"""
from __future__ import annotations

import copy
import logging

import pytest
import torch

from harmony_core.bench.kit import mid_config, mid_inputs, mid_model
from harmony_core.config import preset
from harmony_core.loading import save_checkpoint
from harmony_core.model import kit as kit_module
from harmony_core.model.fp8 import quantize_model
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.load import load_model
from harmony_core.model.kit import MemoryKit, apply_kit, compile_blocks, uncompile_blocks
from harmony_core.model.memory import kit_bytes, weight_bytes
from harmony_core.model.offload import enable_block_swap, layer_modules
from harmony_core.passes import PassFlags


@pytest.fixture(scope="module")
def mid():
    cfg = mid_config()
    model = mid_model(cfg=cfg)
    x = mid_inputs(cfg)
    with torch.no_grad():
        ref = model(*x)
    return model, x, ref


def _same(a, b):
    return all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("blocks", [1, 2, 4])
def test_swap_is_bit_identical(mid, blocks):
    model, x, ref = mid
    swapped = copy.deepcopy(model)
    swap = enable_block_swap(swapped, blocks, "cpu")
    with torch.no_grad():
        assert _same(swapped(*x), ref)
        assert _same(swapped(*x), ref)                      # and again: the layers went back to their homes
    layer = max(swap.layer_bytes(i) for i in swap.swapped)
    assert layer <= swap.peak_bytes <= 2 * layer            # the one running and the one arriving


def test_swap_with_skipped_layers_and_fp8(mid):
    model, x, _ = mid
    flags = PassFlags(skip_blocks=(2,))                     # skip-layer guidance: layer 2 (swapped) skipped
    q = copy.deepcopy(model)
    quantize_model(q)
    swapped = copy.deepcopy(q)
    enable_block_swap(swapped, 3, "cpu")
    with torch.no_grad():
        assert _same(swapped(*x, flags=flags), q(*x, flags=flags))
        assert _same(swapped(*x), q(*x))
        assert not _same(swapped(*x, flags=flags), q(*x))  # negative control: skipping changes the output


def test_swap_of_a_loaded_checkpoint_is_bit_identical(mid, tmp_path):
    """Loaded tensors are re-aligned (load._aligned): CPU kernels on safetensors' odd addresses can round
    differently from the aligned copies block swap streams."""
    model, x, _ = mid
    path = save_checkpoint(model, tmp_path / "mid.safetensors")
    plain, swapped = load_model(path)[0], load_model(path)[0]
    enable_block_swap(swapped, 3, "cpu")
    with torch.no_grad():
        assert _same(swapped(*x), plain(*x))


def test_swapped_layers_stream_through_copies(mid):
    model, x, _ = mid
    swapped = copy.deepcopy(model)
    swap = enable_block_swap(swapped, 2, "cpu")
    block = swapped.video.blocks[3]
    homes = {s.home.data_ptr() for s in swap.layers[3]}
    seen = []
    block.register_forward_pre_hook(lambda m, a: seen.append({p.data_ptr() for p in m.parameters()}))
    with torch.no_grad():
        swapped(*x)
    assert seen and not (seen[0] & homes)                   # it ran on streamed copies
    assert {p.data_ptr() for p in block.parameters()} <= homes   # and rests on its homes afterwards


def test_an_error_inside_a_layer_puts_the_homes_back(mid):
    model, x, ref = mid
    swapped = copy.deepcopy(model)
    swap = enable_block_swap(swapped, 2, "cpu")
    handle = swapped.audio.blocks[3].register_forward_hook(lambda *a: (_ for _ in ()).throw(InterruptedError()))
    with torch.no_grad(), pytest.raises(InterruptedError):
        swapped(*x)
    handle.remove()
    homes = {s.home.data_ptr() for i in swap.swapped for s in swap.layers[i]}
    assert {p.data_ptr() for i in swap.swapped for m in layer_modules(swapped, i) for p in m.parameters()} <= homes
    with torch.no_grad():
        assert _same(swapped(*x), ref)


def test_swap_count_is_checked():
    with pytest.raises(ValueError, match="swap blocks"):
        enable_block_swap(HarmonyModel(preset("tiny")), 3, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (pinned memory, side stream, events)")
def test_swap_on_cuda_is_bit_identical_and_saves_memory(mid):
    model, x, _ = mid
    device = torch.device("cuda")
    xs = [t.to(device) for t in x[:4]] + [x[4].to(device)]
    full = copy.deepcopy(model).to(device)
    with torch.no_grad():
        ref = full(*xs)
    resident = torch.cuda.memory_allocated()
    del full
    swapped = copy.deepcopy(model)
    swap = enable_block_swap(swapped, 4, device)
    assert all(s.home.is_pinned() for i in swap.swapped for s in swap.layers[i])
    assert torch.cuda.memory_allocated() < resident
    with torch.no_grad():
        for _ in range(3):                                  # the allocator reuses freed copies across runs
            assert _same(swapped(*xs), ref)
    torch.cuda.synchronize()


# -- torch.compile per block ----------------------------------------------------------------------------------

def test_compile_falls_back_with_a_log_line(mid, monkeypatch, caplog):
    model, x, ref = mid
    m = copy.deepcopy(model)

    def broken(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("no backend here")
        return call
    monkeypatch.setattr(kit_module.torch, "compile", broken)
    with caplog.at_level(logging.WARNING):
        assert compile_blocks(m, torch.device("cpu")) == 2 * len(m.video.blocks)
        with torch.no_grad():
            assert _same(m(*x), ref)
    assert "torch.compile failed for video.blocks.0" in caplog.text and "runs eagerly" in caplog.text
    uncompile_blocks(m)
    assert "forward" not in m.video.blocks[0].__dict__


def test_compile_unavailable_is_logged(mid, monkeypatch, caplog):
    model, _, _ = mid
    monkeypatch.setattr(kit_module, "compile_unavailable", lambda device: "no C++ compiler found")
    with caplog.at_level(logging.WARNING):
        assert compile_blocks(copy.deepcopy(model), torch.device("cpu")) == 0
    assert "torch.compile is unavailable (no C++ compiler found)" in caplog.text


# -- the memory estimate with the kit -------------------------------------------------------------------------

def test_kit_bytes_follow_the_settings(mid):
    model, _, _ = mid
    assert kit_bytes(model, 4) == 0
    m = apply_kit(copy.deepcopy(model), MemoryKit(fp8=True, swap_blocks=2), "cpu")
    largest_fp8 = m.video.blocks[0].ffn[0].stored.numel()
    staged = 2 * max(m.block_swap.layer_bytes(i) for i in m.block_swap.swapped)
    assert kit_bytes(m, 4) == staged + 4 * largest_fp8
    assert kit_bytes(m, 2) == staged + 2 * largest_fp8


def test_weight_bytes_of_the_real_models():
    """Computed device weights at full size (meta model, no allocation): bf16, fp8, fp8 + 15 of 30 layers swapped."""
    cfg = preset("uniavgen")
    bf16 = weight_bytes(cfg, MemoryKit(), 2)
    fp8 = weight_bytes(cfg, MemoryKit(fp8=True), 2)
    swap = weight_bytes(cfg, MemoryKit(fp8=True, swap_blocks=15), 2)
    assert bf16["device"] == 2 * 7_056_424_223 and bf16["cpu"] == 0 and bf16["staged"] == 0
    assert 0.5 < fp8["device"] / bf16["device"] < 0.53         # ~99 % of the weights are in the big linears
    assert swap["device"] + swap["cpu"] == fp8["device"] and 0.45 < swap["cpu"] / fp8["device"] < 0.5
    assert swap["staged"] > fp8["staged"] > 0


def test_the_sampler_estimate_includes_the_kit():
    from harmony_core.build import load_pipeline
    from harmony_core.pipeline import Request

    pipe = load_pipeline(None, allow_untrained=True)
    req = Request(width=64, height=64, num_frames=17)
    plain = pipe.memory_required(req, 4)
    apply_kit(pipe.model, MemoryKit(fp8=True, swap_blocks=2), "cpu")
    assert pipe.memory_required(req, 4) == plain + kit_bytes(pipe.model, 4) > plain
