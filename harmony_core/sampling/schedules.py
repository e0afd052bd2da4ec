"""Flow-matching sigma schedules (rectified flow x_sigma = (1 - sigma) x0 + sigma noise; 1 = pure noise).

Harmony samples with 40 steps and shift 5 (arXiv 2511.21579 §B "maintained at 5"); the schedule is Wan's
(`wan/utils/fm_solvers.py` `get_sampling_sigmas` + the flow schedulers' `final_sigmas_type="zero"`).
"""
from __future__ import annotations

import math

import torch

from ..config import SCHEDULES

DEFAULT_STEPS = 40
DEFAULT_SHIFT = 5.0


def _check_shift(shift: float) -> None:
    if not (math.isfinite(shift) and shift > 0):
        raise ValueError(f"shift must be a finite number > 0 (Harmony uses 5, 1 = no shift), got {shift}")


def shift_sigma(sigma: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """Timestep shift sigma' = shift * sigma / (1 + (shift - 1) * sigma) (SD3 / Wan).

    Maps [0, 1] onto [0, 1] keeping both ends; shift > 1 spends more steps at high noise. Used by the
    sampling schedule and by training to shift uniformly drawn sigmas ("flow matching with shift of 5").
    """
    _check_shift(shift)
    return shift * sigma / (1 + (shift - 1) * sigma)


def flow_sigmas(steps: int = DEFAULT_STEPS, shift: float = DEFAULT_SHIFT) -> torch.Tensor:
    """The `steps + 1` sigma levels of a flow-matching sampler, from exactly 1 down to exactly 0, float32.

    Same values as Wan: `get_sampling_sigmas` shifts `numpy.linspace(1, 0, steps + 1)[:steps]` in float64
    (numpy's linspace is `1 + i * (-1 / steps)`), the scheduler's `set_timesteps` (built with shift=1, so no
    second shift) appends a final 0 and casts to float32. shift(1) = 1, so the first level is exactly 1.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    base = torch.arange(steps, dtype=torch.float64) * (-1.0 / steps) + 1.0  # [steps], 1 .. 1/steps
    shifted = shift_sigma(base, float(shift))
    return torch.cat([shifted, shifted.new_zeros(1)]).to(torch.float32)  # [steps + 1]


WAN_TIMESTEPS = 1000  # Wan's timestep units: t = 1000 * sigma


def _np_linspace_f32(start: float, stop: float, num: int) -> torch.Tensor:
    """numpy.linspace(start, stop, num, dtype=float32): start + i * ((stop - start) / (num - 1)) in float64,
    the last value set to `stop`, then rounded to float32 (numpy's own arithmetic, so the values agree)."""
    if num == 1:
        return torch.tensor([start], dtype=torch.float32)
    values = torch.arange(num, dtype=torch.float64) * ((stop - start) / (num - 1)) + start  # [num]
    values[-1] = stop
    return values.to(torch.float32)


def uniavgen_timesteps(steps: int = 50, shift: float = DEFAULT_SHIFT,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """UniAVGen's `steps + 1` sampling timesteps in Wan units (1000 = pure noise, last = 0), as its
    `UniAVGenPipeline.generate` computes them (`shared/reference/uniavgen.md` §8).

    linspace(1000, 1, steps) in float32 (not down to 0: the last model call is at t = shift(1)), a final 0
    appended, each shifted in float32 as 1000 * shift_sigma(t / 1000), then cast to the model's param dtype
    `dtype` (the reference does; bf16 turns 995.85 into 996). Default 50 steps, shift 5.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    base = torch.cat([_np_linspace_f32(float(WAN_TIMESTEPS), 1.0, steps), torch.zeros(1)])  # [steps + 1]
    shifted = shift_sigma(base / WAN_TIMESTEPS, float(shift)) * WAN_TIMESTEPS  # float32 throughout
    return shifted.to(dtype)


def uniavgen_sigmas(steps: int = 50, shift: float = DEFAULT_SHIFT,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`uniavgen_timesteps(...) / 1000` as float32 sigma levels for `sample()` (the timesteps the reference's
    model sees, divided by 1000; times 1000 again they are the reference's t exactly for the fp32 defaults,
    within two float32 roundings otherwise)."""
    return uniavgen_timesteps(steps, shift, dtype).to(torch.float32) / WAN_TIMESTEPS



def sigmas_for(schedule: str, steps: int, shift: float) -> torch.Tensor:
    """The sigma levels of a named schedule: "flow" (`flow_sigmas`, Harmony's and Wan's) or "uniavgen"
    (`uniavgen_sigmas`, the timesteps UniAVGen's release samples at)."""
    if schedule == "flow":
        return flow_sigmas(steps, shift)
    if schedule == "uniavgen":
        return uniavgen_sigmas(steps, shift)
    raise ValueError(f"unknown schedule {schedule!r}; accepted: {', '.join(SCHEDULES)}")
