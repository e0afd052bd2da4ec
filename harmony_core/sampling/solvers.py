"""ODE solvers for rectified flow over a (video, audio) pair with per-latent-frame sigmas.

Every solver is a pure function with one signature (k-diffusion style, one NFE per step):

    solver(x, velocity, sigma, sigma_next, history) -> (x_next, history)

- x, velocity: `AV` pairs of latents, video [B, Cv, Tv, h, w], audio [B, Ca, Ta]; velocity v = noise - x0.
- sigma, sigma_next: `AV` pairs of per-latent-frame noise levels, video [B|1, Tv], audio [B|1, Ta]. The two
  modalities may sit on different schedules; a frame with sigma = 0 now is held clean and is returned
  unchanged (bit-exact), whatever the velocity says.
- history: what a multistep solver carries to the next step (None on the first step and for Euler).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import torch


class AV(NamedTuple):
    """A (video, audio) pair: latents [B, Cv, Tv, h, w] / [B, Ca, Ta], or per-frame sigmas [B, T]."""

    video: torch.Tensor
    audio: torch.Tensor


@dataclass(frozen=True, eq=False)
class History:
    """Carried by multistep solvers: the previous step's x0 prediction and the sigmas it was made at."""

    x0: AV
    sigma: AV


Solver = Callable[[AV, AV, AV, AV, Optional[History]], tuple[AV, Optional[History]]]


def per_frame(sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """View per-frame values [B|1, T] so they broadcast against a latent [B, C, T, ...] (T at dim 2)."""
    return sigma.reshape(sigma.shape[0], 1, sigma.shape[1], *([1] * (x.ndim - 3)))  # [B|1, 1, T, 1...]


def to_x0(x: torch.Tensor, velocity: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Clean-latent prediction x0 = x - sigma * v of rectified flow; held frames (sigma = 0) give x itself."""
    s = per_frame(sigma, x)
    return torch.where(s == 0, x, x - s.to(x.dtype) * velocity)


def _euler_one(x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, s_next: torch.Tensor) -> torch.Tensor:
    dt = per_frame(s_next.float() - s.float(), x).to(x.dtype)  # [B|1, 1, T, 1...]
    return torch.where(per_frame(s, x) == 0, x, x + dt * v)


def euler(x: AV, velocity: AV, sigma: AV, sigma_next: AV,
          history: History | None = None) -> tuple[AV, History | None]:
    """Euler step x <- x + (sigma_next - sigma) v of the probability-flow ODE dx/dsigma = v.

    k-diffusion `sample_euler` (Karras et al. 2022, arXiv 2206.00364, Alg. 2 without churn); the sampler
    UniAVGen uses. Keeps no history.
    """
    out = AV(*(_euler_one(xm, vm, sm, nm) for xm, vm, sm, nm in zip(x, velocity, sigma, sigma_next)))
    return out, None


def _half_log_snr(sigma: torch.Tensor) -> torch.Tensor:
    """lambda = log(alpha / sigma) with alpha = 1 - sigma; -inf at sigma = 1, +inf at sigma = 0."""
    return torch.log1p(-sigma) - torch.log(sigma)


def _dpmpp_2m_one(x: torch.Tensor, v: torch.Tensor, s: torch.Tensor, s_next: torch.Tensor,
                  prev_x0: torch.Tensor | None,
                  prev_s: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    x0 = to_x0(x, v, s)
    s, s_next = s.float(), s_next.float()  # float32 coefficients: no float64 on devices without it (MPS)
    ratio = torch.where(s > 0, s_next / s, torch.ones_like(s))  # coefficient of x, [B|1, T]
    denoised = x0
    if prev_x0 is not None:
        lam = _half_log_snr(s)
        r = (lam - _half_log_snr(prev_s.float())) / (_half_log_snr(s_next) - lam)  # h_prev / h, [B|1, T]
        # Second order only where both intervals are finite and positive; the first step after sigma = 1,
        # the final step to sigma = 0 and frames held at 0 fall back to first order (diffusers, k-diffusion).
        use = torch.isfinite(r) & (r > 0)
        c = torch.where(use, 0.5 / torch.where(use, r, torch.ones_like(r)), torch.zeros_like(r))
        denoised = x0 + per_frame(c, x).to(x.dtype) * (x0 - prev_x0)
    ratio_b = per_frame(ratio, x).to(x.dtype)  # [B|1, 1, T, 1...]
    x_next = ratio_b * x + (1 - ratio_b) * denoised
    return torch.where(per_frame(s, x) == 0, x, x_next), x0


def dpmpp_2m(x: AV, velocity: AV, sigma: AV, sigma_next: AV,
             history: History | None = None) -> tuple[AV, History | None]:
    """DPM-Solver++(2M) on the x0 prediction for rectified flow (alpha = 1 - sigma).

    Lu et al. 2022, arXiv 2211.01095, Alg. 2 (multistep, midpoint form), as in k-diffusion
    `sample_dpmpp_2m` and Wan's `FlowDPMSolverMultistepScheduler`:
    x_next = (s_next / s) x + (1 - s_next / s) D, D = x0 + (x0 - x0_prev) / (2 r), r = h_prev / h,
    h = lambda_next - lambda, lambda = log((1 - s) / s). With r undefined it is the first-order
    DPM-Solver++ step, which for rectified flow equals Euler. One model evaluation per step.
    """
    prev_x0 = history.x0 if history is not None else AV(None, None)
    prev_s = history.sigma if history is not None else AV(None, None)
    results = [_dpmpp_2m_one(*args) for args in zip(x, velocity, sigma, sigma_next, prev_x0, prev_s)]
    x_next = AV(results[0][0], results[1][0])
    return x_next, History(x0=AV(results[0][1], results[1][1]), sigma=sigma)


SOLVERS: dict[str, Solver] = {"euler": euler, "dpmpp_2m": dpmpp_2m}


def get_solver(name: str) -> Solver:
    """The solver function registered under `name`."""
    if name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; accepted: {', '.join(sorted(SOLVERS))}")
    return SOLVERS[name]
