"""Harmony's weights as ComfyUI managed layers (`comfy.ops`), so ComfyUI streams them as it streams its own models'.

`use_comfy_ops(model, load_device)` runs once after loading. Every `nn.Linear` and the video patch `nn.Conv3d`
becomes the class `comfy.ops.pick_operations(dtype, dtype, load_device=...)` picks (built on the meta device and
given the SAME Parameter objects: key names, values and dtypes unchanged), and every harmony_core `FP8Linear`
becomes `ComfyFP8Linear` (a subclass: same storage, `weight` fp8 + `scale_weight` float32, per-row [out, 1] or per
tensor []). ComfyUI then treats them as its own layers (`comfy_cast_weights`, `weight_function`): its lowvram
loads leave some on the CPU and cast each one to the device inside its forward (`cast_bias_weight`), and its
dynamic-VRAM patcher streams them all on demand.

Why fp8 layers are not ComfyUI's fp8 class. ComfyUI (v0.33.0) stores scaled fp8 as `mixed_precision_ops` layers
holding a comfy_kitchen `QuantizedTensor` (keys `weight_scale` + `comfy_quant`); its dequantize takes one scale per
tensor (the CUDA kernel asserts a scalar), so our per-row scales would fail there, and it dequantizes the weight
before the matmul where we scale the output. `ComfyFP8Linear` instead lets ComfyUI move/cast the raw fp8 weight
(the fp8 -> compute dtype cast is exact) and applies the scale to the output channels itself: any scale shape
works and the result is bit-identical to harmony_core's FP8Linear.

Weights read outside a layer's forward. harmony_core reads a few layers' `.weight`/`.bias` directly (the fused
video projections of the GLDI interaction, UniAVGen's V2A k/v); under streaming those would be CPU (or fp8) tensors.
`DIRECT_READS` names them; a forward hook on the reading module casts them onto the input's device (through
`cast_bias_weight`, LoRA-style weight functions included; fp8 ones dequantized exactly as FP8Linear.weight does)
for the duration of that forward and puts the originals back afterwards (also after an error).

Parameters outside ops layers (norms, modulation, embeddings: ~0.3 % of the weights) and buffers: ComfyUI's
dynamic patcher moves them itself; its estimate-based lowvram load skips modules holding both own and child
parameters (the blocks' `modulation`) and leaves buffers of streamed layers behind, so `move_strays` puts every one
of them on the load device after `load_models_gpu`.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

import comfy.ops

from ...harmony_core.model.fp8 import FP8Linear, replace_module
from ...harmony_core.model.interaction import InteractionBlock
from ...harmony_core.model.uniavgen_interaction import InterpolatedV2A

log = logging.getLogger(__name__)

# parts left as plain torch: the demo model's caption encoder is torch's TransformerEncoderLayer, whose fast path
# reads linear1/linear2's weights directly (tiny; it is moved to the device whole with the other non-ops tensors)
PLAIN_PARTS = ("text_encoder",)
# {module class: the child layers whose weight/bias its forward reads directly}; tests/nodes checks it is complete
DIRECT_READS: dict[type, tuple[str, ...]] = {
    InteractionBlock: ("a2v.q", "v2a.k", "v2a.v", "global_style.k", "global_style.v"),   # project_video
    InterpolatedV2A: ("k", "v"),                                                            # F.linear(src, k.weight)
}


class ComfyFP8Linear(FP8Linear, comfy.ops.CastWeightBiasOp):
    """harmony_core's FP8Linear as a ComfyUI managed layer. `weight` is the stored fp8 Parameter (what ComfyUI
    moves, pins and casts); forward: linear(x, weight cast to x's dtype on x's device) * scale + bias."""

    comfy_cast_weights = True   # stored dtype != compute dtype: always cast per op (ComfyUI's manual_cast)
    materialized = False        # True while DIRECT_READS installed the dequantized weight (see Materialize)

    @property
    def weight(self) -> torch.Tensor:
        return self._parameters["weight"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] -> [..., out] in x's dtype (bit-identical to FP8Linear.forward)."""
        comfy.ops.run_every_op()
        if self.materialized:   # the weight is already the dequantized device copy
            return F.linear(x, self._parameters["weight"], self._parameters.get("bias"))
        with comfy.ops.CastBiasWeightContext(self, x, offloadable=True) as (weight, bias):
            y = F.linear(x, weight)                                                   # [..., out]
            s = self.scale_weight
            y.mul_((s.reshape(-1) if s.numel() > 1 else s.reshape(())).to(x.device, x.dtype))
            return y if bias is None else y.add_(bias)


def is_managed(module: nn.Module) -> bool:
    """Whether ComfyUI streams/casts this module's weight and bias itself (a comfy.ops layer)."""
    return hasattr(module, "comfy_cast_weights")


def _ops_layer(module: nn.Module, device: torch.device, picked: dict) -> nn.Module | None:
    """The comfy.ops replacement of a plain Linear / Conv3d, holding the same Parameters (None: not converted)."""
    kind = type(module)
    if kind not in (nn.Linear, nn.Conv3d):
        return None
    w = module.weight
    if w.dtype not in picked:
        picked[w.dtype] = comfy.ops.pick_operations(w.dtype, w.dtype, load_device=device)
    ops = picked[w.dtype]
    has_bias = module.bias is not None
    if kind is nn.Linear:
        new = ops.Linear(module.in_features, module.out_features, bias=has_bias, device="meta", dtype=w.dtype)
    else:
        new = ops.Conv3d(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                         padding=module.padding, dilation=module.dilation, groups=module.groups, bias=has_bias,
                         padding_mode=module.padding_mode, device="meta", dtype=w.dtype)
    new.weight = w
    new.bias = module.bias if has_bias else None
    return new.train(module.training)


def use_comfy_ops(model: nn.Module, load_device: torch.device) -> int:
    """Turn `model`'s Linear / Conv3d / FP8Linear layers into ComfyUI managed layers (see the module docstring) and
    hook the modules of DIRECT_READS. Idempotent; returns how many layers were converted."""
    picked, count = {}, 0
    for name, module in list(model.named_modules()):
        if name.split(".", 1)[0] in PLAIN_PARTS:
            continue
        if isinstance(module, FP8Linear) and not isinstance(module, ComfyFP8Linear):
            module.__class__ = ComfyFP8Linear   # a subclass without state of its own: storage kept as it is
            count += 1
            continue
        new = _ops_layer(module, torch.device(load_device), picked)
        if new is not None:
            replace_module(model, name, new)
            count += 1
    for module in model.modules():
        names = DIRECT_READS.get(type(module))
        if names and not hasattr(module, "_harmony_materialize"):
            module._harmony_materialize = Materialize(module, names)
    log.info("comfy.ops: %d layers are ComfyUI managed layers (%s)", count,
             ", ".join(sorted({ops.__name__ for ops in picked.values()})) or "fp8 only")
    return count


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor:
    return next(a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor))


class Materialize:
    """Forward hooks of a module that reads some child layers' weight/bias directly: before its forward they hold
    device copies (in their compute dtype, fp8 dequantized as FP8Linear.weight does), after it their own."""

    def __init__(self, module: nn.Module, names: tuple[str, ...]) -> None:
        self.layers = [module.get_submodule(n) for n in names if _has(module, n)]
        self.held: list[tuple[nn.Module, dict, comfy.ops.CastBiasWeightContext]] = []
        module.register_forward_pre_hook(self.before, with_kwargs=True)
        module.register_forward_hook(self.after, always_call=True)

    def before(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        device = _first_tensor(args, kwargs).device
        for layer in self.layers:
            if is_managed(layer):
                self._install(layer, device)

    def _install(self, layer: nn.Module, device: torch.device) -> None:
        fp8 = isinstance(layer, FP8Linear)
        dtype = layer.compute_dtype if fp8 else layer.weight.dtype
        context = comfy.ops.CastBiasWeightContext(layer, torch.empty(0, dtype=dtype, device=device), offloadable=True)
        weight, bias = context.__enter__()
        if fp8:   # as harmony_core's dequantize: the exact cast times the scale, in the compute dtype
            s = layer.scale_weight
            weight = weight * (s.reshape(-1, 1) if s.numel() > 1 else s.reshape(())).to(device, dtype)
        own = dict(layer._parameters)
        layer._parameters["weight"] = weight
        if own.get("bias") is not None:
            layer._parameters["bias"] = bias
        layer.materialized = True
        self.held.append((layer, own, context))

    def after(self, module: nn.Module, args: tuple, output: object) -> None:
        while self.held:
            layer, own, context = self.held.pop()
            layer._parameters.update(own)
            layer.__dict__.pop("materialized", None)
            context.__exit__(None, None, None)

    def bytes(self, element_size: int) -> int:
        """Device bytes the installed copies take at once (weights and biases in the compute dtype)."""
        return sum(p.numel() for layer in self.layers for p in layer._parameters.values() if p is not None) \
            * element_size


def _has(module: nn.Module, name: str) -> bool:
    try:
        return module.get_submodule(name) is not None
    except AttributeError:
        return False


def _stray_tensors(model: nn.Module) -> Iterator[tuple[dict, str, torch.Tensor]]:
    """(store, name, tensor) of every tensor ComfyUI's estimate-based load may leave behind: the parameters of
    modules that are not ops layers, and every buffer."""
    for module in model.modules():
        stores = (module._buffers,) if is_managed(module) else (module._parameters, module._buffers)
        for store in stores:
            for name, t in store.items():
                if t is not None:
                    yield store, name, t


def move_strays(model: nn.Module, device: torch.device) -> int:
    """Move every tensor of `_stray_tensors` that is not on `device` there; returns the bytes moved."""
    moved = 0
    for store, name, t in _stray_tensors(model):
        if t.device == device or t.is_meta:
            continue
        new = t.data.to(device)
        if not isinstance(t, nn.Parameter):
            store[name] = new
        elif torch._has_compatible_shallow_copy_type(t.data, new):   # as Module._apply: keep the Parameter
            t.data = new
        else:
            store[name] = nn.Parameter(new, requires_grad=t.requires_grad)
        moved += t.numel() * t.element_size()
    return moved


def off_device(model: nn.Module, device: torch.device) -> str | None:
    """The name of a non-streamed tensor that is not on `device` (None when all are)."""
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        module = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        streamed = is_managed(module) and name.rpartition(".")[2] in ("weight", "bias")
        if not streamed and t.numel() and t.device.type != device.type:
            return name
    return None


def extra_bytes(model: nn.Module, element_size: int) -> int:
    """Device bytes ComfyUI does not count for a Harmony model: the largest set of weights a DIRECT_READS hook
    installs at once, plus the tensors `move_strays` may move (an upper bound: some are counted already)."""
    hooked = [m._harmony_materialize for m in model.modules() if hasattr(m, "_harmony_materialize")]
    installed = max((h.bytes(element_size) for h in hooked), default=0)
    return installed + sum(t.numel() * t.element_size() for _, _, t in _stray_tensors(model))
