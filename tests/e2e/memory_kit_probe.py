"""Harmony's layers as ComfyUI managed layers inside a real ComfyUI, in-process: the real comfy.ops, ModelPatcher
and its lowvram load (which a `--cpu` server never does: everything fits the CPU).

Run by test_e2e_memory_kit.py with ComfyUI's interpreter (COMFYUI_PYTHON):
    python memory_kit_probe.py <COMFYUI_DIR> <out.json>
It imports the pack as ComfyUI does, builds two tiny models (a 2-layer GLDI model with global style; uniavgen-tiny),
turns their layers into comfy.ops layers and records, as facts in <out.json>: the classes, whether each forward is
bit-identical (torch.equal) to plain torch after the conversion, after ComfyUI's lowvram load
(ModelPatcher.load with 1 byte of budget: every managed layer cast per op) and with every managed weight reachable
only through ComfyUI's cast (a weight_function trap; negative control: the direct-read hooks removed), for fp8 row
and tensor scales, and with a parked block swap (model size, bit-identity, placeholders after the run). ComfyUI
code is imported, never copied.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path

import torch

COMFY = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2])
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(COMFY))
torch.set_num_threads(1)

from comfy.cli_args import args  # noqa: E402  (ComfyUI is on sys.path only now)

args.cpu = True
import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.ops  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
CPU = torch.device("cpu")


def pack(name: str):
    if "harmony_pack" not in sys.modules:
        spec = importlib.util.spec_from_file_location("harmony_pack", REPO / "__init__.py",
                                                      submodule_search_locations=[str(REPO)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["harmony_pack"] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"harmony_pack.{name}")


ops, adapter, fp8 = pack("nodes.adapters.ops"), pack("nodes.adapters.model_patcher"), pack("harmony_core.model.fp8")
bench, gpu, config = pack("harmony_core.bench.kit"), pack("harmony_core.bench.gpu"), pack("harmony_core.config")
MemoryKit = pack("harmony_core.model.kit").MemoryKit


gldi, uniavgen = bench.small_gldi, bench.small_uniavgen


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def managed(model):
    return [m for m in model.modules() if ops.is_managed(m)]


class CastCounter:
    """Counts comfy.ops.cast_bias_weight calls (what a streamed layer does in its forward)."""

    def __init__(self):
        self.calls, real = 0, comfy.ops.cast_bias_weight

        def counted(*a, **k):
            self.calls += 1
            return real(*a, **k)

        comfy.ops.cast_bias_weight = counted


COUNTER = CastCounter()


def lowvram(model) -> dict:
    """ComfyUI's estimate-based lowvram load of `model` with a 1-byte budget (every managed layer streamed)."""
    patcher = comfy.model_patcher.ModelPatcher(adapter.HarmonyModule(model, "probe"), CPU, CPU)
    patcher.load(CPU, lowvram_model_memory=1, full_load=False)
    moved = ops.move_strays(patcher.model, CPU)
    cast = [m for m in managed(model) if m.comfy_cast_weights]
    return {"patcher": patcher, "model_lowvram": bool(patcher.model.model_lowvram), "streamed": len(cast),
            "managed": len(managed(model)), "moved": moved}


def trap(model) -> None:
    """Managed weights NaN, the true ones only through cast_bias_weight (weight_function, as a LoRA patch)."""
    for m in managed(model):
        for key in ("weight", "bias"):
            p = m._parameters.get(key)
            if p is not None:
                true = p.detach().clone().requires_grad_(p.requires_grad)
                p.data = torch.full_like(true, float("nan"))
                setattr(m, f"{key}_function", [lambda w, t=true: t.to(w.dtype)])


def probe_model(name: str, build, scaling: str | None) -> dict:
    model, x = build()
    if scaling:
        fp8.quantize_model(model, scaling)
    facts = {}
    with torch.no_grad():
        ref = model(*x)
        ops.use_comfy_ops(model, CPU)
        facts["classes"] = sorted({f"{type(m).__module__}.{type(m).__qualname__}" for m in managed(model)})
        facts["full"] = same(model(*x), ref)
        load = lowvram(model)
        facts.update({k: v for k, v in load.items() if k != "patcher"})
        before = COUNTER.calls
        facts["lowvram"] = same(model(*x), ref)
        facts["casts"] = COUNTER.calls - before
        trap(model)
        facts["trap"] = same(model(*x), ref)
        for module in model.modules():
            if hasattr(module, "_harmony_materialize"):
                module._forward_pre_hooks.clear()
        try:
            out = model(*x)
            facts["trap_without_hooks"] = "nan" if any(torch.isnan(o).any() for o in out) else "clean"
        except RuntimeError as err:
            facts["trap_without_hooks"] = f"error: {str(err).splitlines()[0][:80]}"
        load["patcher"].detach()
    if scaling:
        layers = [m for m in model.modules() if isinstance(m, fp8.FP8Linear)]
        facts["fp8_layers"] = sorted({type(m).__name__ for m in layers})
        facts["scale_shapes"] = sorted({str(tuple(m.scale_weight.shape)) if m.scale_weight.ndim == 0
                                        else f"[out, {m.scale_weight.shape[1]}]" for m in layers})
    return facts


def probe_swap() -> dict:
    model, x = gldi()
    with torch.no_grad():
        ref = model(*x)
    full_bytes = mm.module_size(model)
    patcher = adapter.model_patcher(model, "probe", MemoryKit(swap_blocks=1))
    swap = model.block_swap
    facts = {"kind": type(swap).__name__, "patcher": type(patcher).__name__,
             "size_drop": full_bytes - patcher.model_size(), "parked": sum(swap.layer_bytes(i) for i in swap.swapped)}
    adapter.load(patcher, memory_required=0)
    with torch.no_grad():
        facts["full"] = same(model(*x), ref)
        patcher.detach()
        patcher.load(CPU, lowvram_model_memory=1, full_load=False)
        facts["lowvram"] = same(model(*x), ref)
    facts["placeholders_after"] = all(p.numel() == 0 for p in model.video.blocks[-1].parameters())
    return facts


def main() -> None:
    facts = {"models": {}}
    for name, build in (("gldi", gldi), ("uniavgen", uniavgen)):
        for scaling in (None, "row", "tensor"):
            facts["models"][f"{name}/{scaling or 'plain'}"] = probe_model(name, build, scaling)
    facts["swap"] = probe_swap()
    OUT.write_text(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main()
