"""Stand-in for `comfy.ops` (ComfyUI @ 783545f): the managed layers the pack turns its weights into.

What the pack relies on: `pick_operations(weight_dtype, compute_dtype, load_device=...)` returns
`disable_weight_init` when the two dtypes agree (layers compute as plain torch layers until a lowvram load sets
`comfy_cast_weights`) and `manual_cast` otherwise (always cast); a managed layer has the class attributes
`comfy_cast_weights`, `weight_function`, `bias_function` (`CastWeightBiasOp`); `cast_bias_weight(s, input,
offloadable=...)` returns the layer's weight and bias on the input's device in its dtype (bias in `bias_dtype`,
default the same), with the weight/bias functions applied, plus an offload state when `offloadable`;
`CastBiasWeightContext` wraps it; `run_every_op()` is an interrupt check. `casts` counts cast_bias_weight calls
(tests read it). Written from the documented behaviour, nothing copied.
"""
from __future__ import annotations

import torch

from . import model_management

casts = 0


def run_every_op() -> None:
    model_management.throw_exception_if_processing_interrupted()


def cast_bias_weight(s, input=None, dtype=None, device=None, bias_dtype=None, offloadable=False,
                     compute_dtype=None, want_requant=False):
    global casts
    casts += 1
    if input is not None:
        dtype = input.dtype if dtype is None else dtype
        bias_dtype = dtype if bias_dtype is None else bias_dtype
        device = input.device if device is None else device
    weight = s.weight.to(device)
    if s.weight_function or weight.dtype != dtype:
        weight = weight.to(dtype)
        for f in s.weight_function:
            weight = f(weight)
    bias = None
    if s.bias is not None:
        bias = s.bias.to(device).to(bias_dtype)
        for f in s.bias_function:
            bias = f(bias)
    return (weight, bias, (None, None, None)) if offloadable else (weight, bias)


def uncast_bias_weight(s, weight, bias, offload_stream) -> None:
    return None


class CastBiasWeightContext:
    def __init__(self, *args, **kwargs):
        self.state = (None, None) if not args or args[0] is None else cast_bias_weight(*args, **kwargs)

    def __enter__(self):
        return self.state[:2]

    def __exit__(self, *exc) -> None:
        return None


class CastWeightBiasOp:
    comfy_cast_weights = False
    weight_function = []
    bias_function = []


def _managed(base: type) -> type:
    class Managed(base, CastWeightBiasOp):
        def reset_parameters(self):
            return None

        def forward(self, x):
            run_every_op()
            if self.comfy_cast_weights or self.weight_function or self.bias_function:
                with CastBiasWeightContext(self, x, offloadable=True) as (weight, bias):
                    return self._cast_forward(x, weight, bias)
            return super().forward(x)

    Managed.__name__ = Managed.__qualname__ = base.__name__
    return Managed


class disable_weight_init:
    class Linear(_managed(torch.nn.Linear)):
        def _cast_forward(self, x, weight, bias):
            return torch.nn.functional.linear(x, weight, bias)

    class Conv3d(_managed(torch.nn.Conv3d)):
        def _cast_forward(self, x, weight, bias):
            return self._conv_forward(x, weight, bias)


class manual_cast(disable_weight_init):
    class Linear(disable_weight_init.Linear):
        comfy_cast_weights = True

    class Conv3d(disable_weight_init.Conv3d):
        comfy_cast_weights = True


def pick_operations(weight_dtype, compute_dtype, load_device=None, disable_fast_fp8=False, fp8_optimizations=False,
                    model_config=None):
    if compute_dtype is None or weight_dtype == compute_dtype:
        return disable_weight_init
    return manual_cast
