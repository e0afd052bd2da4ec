"""fp8 weight storage for the big linear layers (issue #12): 1 byte per weight, computed in the activation dtype.

Storage. A quantized layer keeps `weight` as float8_e4m3fn [out, in] and `scale_weight` float32, one per row
([out, 1], the default) or one per tensor ([], ComfyUI's `<layer>.scale_weight` convention): W ~= weight * scale.
The scale maps the row's (tensor's) largest |w| onto e4m3's largest finite value, 448, so nothing overflows
(e4m3fn has no infinity: an overflow would be NaN) and every row uses the format's whole range. An all-zero
row (zero-initialised output projections) gets scale 1. The same key names are read and written by
`load.py` and the converter (`convert.py`); a file's fp8 layers are recognised by their `.scale_weight` key.

Compute. `FP8Linear.forward(x)` multiplies x by the fp8 weight cast (exactly) to x's dtype, then applies the
scale to the output channels (per-row scale s_r: y_r = s_r * sum_j q_rj x_j) and adds the bias: bf16 in
production, float32 on the CPU. Code that reads `layer.weight` (dtype casts, fused projections) gets the
dequantized weight in `compute_dtype`; the stored float8 tensor is `layer._parameters["weight"]`, which is
what `state_dict()`, `.to(device)` and block swap see.

Error (the bound tests/core/test_fp8.py checks). e4m3 keeps 3 mantissa bits, so round-to-nearest changes a
value in the normal range (|w / s| >= 2^-6) by a relative error eps with |eps| <= u = 2^-4; below it the
absolute error is <= 2^-10 * s. A linear output y_r = sum_j W_rj x_j (n terms) then changes by
dy_r = sum_j eps_rj W_rj x_j. The eps of different weights are rounding errors of unrelated values: mean 0,
independent, E[eps^2] <= u^2 / 3 (uniform within the half-spacing; their mean square is u^2 / 3 * E[1/m^2] ~=
0.54 u^2 / 3 over mantissas m in [1, 2)), so the sum grows like sqrt(n), not n:

    E ||dy||^2 <= (u^2 / 3) * sum_{b,r,j} W_rj^2 x_bj^2     (RMS relative error <= u / sqrt(3) = 3.6 %).

When the terms of y do not cancel (random-sign weights, as at init) sum_j W_rj^2 x_j^2 ~= y_r^2, so the relative
output error itself is <= 3.6 % (expected ~2.7 %). e5m2 (2 mantissa bits, u = 2^-3) doubles it, and a cast
without scale sends small weights into the subnormals: both exceed the bound (the tests' negative controls).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

E4M3 = torch.float8_e4m3fn
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
SCALE_SUFFIX = "scale_weight"          # <layer>.scale_weight, as ComfyUI names its fp8 scales
IGNORED_KEYS = ("scaled_fp8",)         # ComfyUI's marker tensor: carries no weight
IGNORED_SUFFIXES = (".scale_input",)   # ComfyUI's activation scale for fp8 matmuls: we compute in bf16/fp32
SCALINGS = ("row", "tensor")
# Which layers are stored in fp8: the nn.Linear layers inside the transformer blocks of both towers and inside
# the interaction, at least MIN_FEATURES wide on both sides. Norms, modulation, embeddings (patch, text, time,
# transcript) and heads (the towers' and the face-mask head) stay in the load dtype.
BIG_PARTS = ("video.blocks.", "audio.blocks.", "interaction.")
KEPT_NAMES = ("head", "mask_head")
MIN_FEATURES = 16


def is_fp8(t: torch.Tensor) -> bool:
    return t.dtype in FP8_DTYPES


def quantize(weight: torch.Tensor, scaling: str = "row", dtype: torch.dtype = E4M3,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """weight [out, in] -> (q [out, in] in `dtype`, scale float32 [out, 1] for "row" or [] for "tensor")."""
    if scaling not in SCALINGS:
        raise ValueError(f"fp8 scaling {scaling!r} is not one of {SCALINGS}")
    w = weight.detach().float()
    amax = w.abs().amax(dim=1, keepdim=True) if scaling == "row" else w.abs().amax()
    if not bool(torch.isfinite(amax).all()):
        raise ValueError("cannot quantize a weight with NaN/Inf values: the checkpoint is corrupt")
    top = torch.finfo(dtype).max
    scale = torch.where(amax > 0, amax / top, torch.ones_like(amax))
    return (w / scale).clamp_(-top, top).to(dtype), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """q [out, in] fp8, scale [out, 1] / [out] / [] -> the weight [out, in] in `dtype` (computed in `dtype`, as
    the forward applies the scale: the cast of q is exact, the scale rounds once, 2^-9 relative in bf16)."""
    s = scale.reshape(-1, 1) if scale.numel() == q.shape[0] and scale.numel() > 1 else scale.reshape(())
    return q.to(dtype) * s.to(dtype)


class FP8Linear(nn.Module):
    """A Linear whose weight is stored in fp8 with a float32 scale; see the module docstring."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, scale_shape: tuple[int, ...] = (),
                 compute_dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
                 fp8_dtype: torch.dtype = E4M3) -> None:
        super().__init__()
        self.in_features, self.out_features, self.compute_dtype = in_features, out_features, compute_dtype
        # registered directly: the class attribute `weight` (the dequantized view) would refuse the name
        self._parameters["weight"] = nn.Parameter(
            torch.empty(out_features, in_features, dtype=fp8_dtype, device=device), requires_grad=False)
        self.register_buffer(SCALE_SUFFIX, torch.ones(scale_shape, dtype=torch.float32, device=device))
        self.bias = nn.Parameter(torch.zeros(out_features, dtype=compute_dtype, device=device),
                                 requires_grad=False) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear, scaling: str = "row", dtype: torch.dtype = E4M3) -> FP8Linear:
        """Quantize a Linear (on its device; meta stays meta, with the scale shape `scaling` gives)."""
        w = linear.weight
        shape = (w.shape[0], 1) if scaling == "row" else ()
        out = cls(w.shape[1], w.shape[0], linear.bias is not None, shape, w.dtype, w.device, dtype)
        if not w.is_meta:
            q, s = quantize(w, scaling, dtype)
            out._parameters["weight"] = nn.Parameter(q, requires_grad=False)
            out.scale_weight = s
        if linear.bias is not None:
            out.bias = nn.Parameter(linear.bias.detach(), requires_grad=False)
        return out

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight [out, in] in `compute_dtype` (a new tensor on each read)."""
        return dequantize(self._parameters["weight"], self.scale_weight, self.compute_dtype)

    @property
    def stored(self) -> torch.Tensor:
        """The fp8 weight as stored [out, in]."""
        return self._parameters["weight"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., in] -> [..., out] in x's dtype."""
        q, s = self._parameters["weight"], self.scale_weight
        y = F.linear(x, q.to(x.dtype))                                              # [..., out]
        y.mul_((s.reshape(-1) if s.numel() > 1 else s.reshape(())).to(x.dtype))    # per output channel
        return y if self.bias is None else y.add_(self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, fp8={self.stored.dtype}, scale={tuple(self.scale_weight.shape)}, "
                f"compute_dtype={self.compute_dtype}")

    def _apply(self, fn: object, recurse: bool = True) -> FP8Linear:
        """`.to(dtype)` / `.half()` change the compute dtype; the stored weight stays fp8, the scale float32."""
        fp8_dtype = self.stored.dtype
        self.compute_dtype = fn(torch.empty(0, dtype=self.compute_dtype)).dtype
        super()._apply(fn, recurse)
        w = self._parameters["weight"]
        if w.dtype != fp8_dtype:       # exact: fp8 values are representable in every float dtype
            self._parameters["weight"] = nn.Parameter(w.detach().to(fp8_dtype), requires_grad=False)
        if self.scale_weight.dtype != torch.float32:
            self.scale_weight = self.scale_weight.float()
        return self

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        """A weight given in a float dtype (a plain state dict) is quantized as it is loaded."""
        key = prefix + "weight"
        given = state_dict.get(key)
        if given is not None and not is_fp8(given) and prefix + SCALE_SUFFIX not in state_dict:
            scaling = "row" if self.scale_weight.numel() > 1 else "tensor"
            state_dict[key], state_dict[prefix + SCALE_SUFFIX] = quantize(given, scaling, self.stored.dtype)
        super()._load_from_state_dict(state_dict, prefix, *args)


def qualifies(name: str, module: nn.Module) -> bool:
    """Whether `name` (a HarmonyModel module name) is a big linear layer stored in fp8."""
    return (isinstance(module, nn.Linear) and name.startswith(BIG_PARTS)
            and not any(part in KEPT_NAMES for part in name.split("."))
            and min(module.in_features, module.out_features) >= MIN_FEATURES)


def qualifying(model: nn.Module) -> list[str]:
    """Names of the layers `quantize_model` converts."""
    return [name for name, m in model.named_modules() if qualifies(name, m)]


def fp8_layers(model: nn.Module) -> Iterator[tuple[str, FP8Linear]]:
    return ((n, m) for n, m in model.named_modules() if isinstance(m, FP8Linear))


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def quantize_model(model: nn.Module, scaling: str = "row", dtype: torch.dtype = E4M3,
                   names: list[str] | None = None) -> int:
    """Replace the qualifying Linear layers (or `names`) by FP8Linear, one at a time (each bf16 weight is
    freed as soon as its fp8 copy exists). Returns how many layers were converted."""
    todo = qualifying(model) if names is None else names
    for name in todo:
        replace_module(model, name, FP8Linear.from_linear(model.get_submodule(name), scaling, dtype))
    if todo:
        log.info("fp8: %d linear layers stored as %s with %s scales", len(todo), dtype, scaling)
    return len(todo)


def use_stored_scales(model: nn.Module, scale_shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """Make the layers a file stores in fp8 (`{layer: scale shape}`, from its `<layer>.scale_weight` keys) FP8Linear
    with those scale shapes (meta model, before assignment). Returns the names that are not Linear layers of the
    model (their keys are then reported as unexpected by the strict check)."""
    strays = []
    for name, shape in scale_shapes.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            strays.append(name)
            continue
        if isinstance(module, FP8Linear):
            continue
        if not isinstance(module, nn.Linear) or len(shape) > 2 or (shape and shape[0] not in (1, module.out_features)):
            strays.append(name)
            continue
        w = module.weight
        replace_module(model, name, FP8Linear(w.shape[1], w.shape[0], module.bias is not None, tuple(shape),
                                              w.dtype, w.device))
    return strays


def set_compute_dtype(model: nn.Module, dtype: torch.dtype | None) -> None:
    """After loading: fp8 layers compute in `dtype`, or (None) in their bias's dtype (the file's), else float32."""
    for _, m in fp8_layers(model):
        m.compute_dtype = dtype or (m.bias.dtype if m.bias is not None else torch.float32)
