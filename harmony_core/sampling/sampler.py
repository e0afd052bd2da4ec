"""The sampling loop: one batched denoiser call per step, a solver step, held frames re-imposed.

Follows the inferred Harmony sampler (method.md §4.6): 40 shifted flow-matching steps, SyncCFG with three
passes batched into one forward, Euler (or DPM-Solver++(2M)) on the guided velocity, and the clean latent
put back on held frames after every step. Progress and previews go through `callback`; the caller cancels
by raising from it (the exception propagates untouched). `plan_passes(guidance, mode, steps)` (re-exported
here) reports the passes of every step, e.g. [("J", "AD", "VD"), ...]; rows per call = len(passes) * B.
With UniAVGen's guidance (`Guidance(macfg=...)`) the passes J and U carry different structural flags
(`plan_flags`), so a step makes one call per distinct flags (two in UniAVGen's reference).
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Callable, Sequence

import torch

from .guidance import Denoiser, Guidance, check_anchors, guided_velocity, plan_flags, plan_passes
from .modes import ModeSpec
from .solvers import AV, get_solver, to_x0

__all__ = ["plan_flags", "plan_passes", "sample"]

logger = logging.getLogger(__name__)

Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]


def _sigma_levels(sigmas: torch.Tensor | Sequence[float]) -> list[float]:
    """Validate a schedule (>= 2 levels, in [0, 1], non-increasing) and return it as Python floats."""
    levels = [float(s) for s in torch.as_tensor(sigmas).flatten().tolist()]
    if len(levels) < 2:
        raise ValueError(f"sigmas must hold at least 2 levels (steps + 1), got {len(levels)}")
    if any(not 0.0 <= s <= 1.0 for s in levels):
        raise ValueError(f"sigmas must lie in [0, 1] (rectified flow, 1 = pure noise), got {levels}")
    if any(b > a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"sigmas must be non-increasing (from noise towards 0), got {levels}")
    return levels


class NonFiniteLatentError(ValueError):
    """A latent went NaN/Inf during sampling (names the step, the stream and the count)."""


def check_finite(x: AV, step: int, steps: int) -> None:
    """Refuse a latent with NaN/Inf after `step` (0-based): one reduction per stream and step."""
    for name, t in (("video", x.video), ("audio", x.audio)):
        if not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise NonFiniteLatentError(
                f"step {step + 1} of {steps}: the {name} latent holds {bad} NaN/Inf value(s) of {t.numel()}; "
                "sampling diverged. Check the driving media for NaN/Inf, lower the guidance scales, or load the "
                "model in a wider dtype (bf16/fp32 instead of fp16)")


@torch.no_grad()
def sample(denoiser: Denoiser, noise_video: torch.Tensor, noise_audio: torch.Tensor, mode_spec: ModeSpec,
           guidance: Guidance, sigmas: torch.Tensor | Sequence[float], solver: str = "euler",
           callback: Callback | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate the flow ODE from sigmas[0] to sigmas[-1]: video [B, Cv, Tv, h, w], audio [B, Ca, Ta].

    UniAVGen's sampler is this loop with `Guidance(macfg=MACFG())`, `uniavgen_sigmas(50, 5.0)` and "euler".

    noise_video / noise_audio are the latents at sigmas[0] (pure Gaussian noise when sigmas[0] = 1); B > 1
    samples several takes at once. Held frames of `mode_spec` start and stay at their clean latent
    (bit-exact). Each step makes one denoiser call whose rows are the guidance passes (one per distinct pass
    flags with UniAVGen's guidance). After step k (0-based) `callback(k, steps, x0_video, x0_audio)`
    receives the x0 previews; it may raise to cancel.
    Results keep the noise's dtype; pass float32 noise for accurate integration.
    """
    step_fn = get_solver(solver)
    levels = _sigma_levels(sigmas)
    steps = len(levels) - 1
    x = AV(noise_video, noise_audio)
    mode_spec.check_latents(x)
    plan = plan_passes(guidance, mode_spec, steps)
    flags = plan_flags(guidance, mode_spec, steps)
    check_anchors(guidance, plan, x)
    logger.debug("sampling %s: %d steps, solver %s, batch %d, %s guidance, passes %s", mode_spec.name, steps,
                 solver, noise_video.shape[0], guidance.kind, dict(Counter(p for step in plan for p in step)))
    x = mode_spec.impose(x)
    history = None
    for k in range(steps):
        sigma = mode_spec.token_sigmas(levels[k], x)  # video [B, Tv], audio [B, Ta]
        velocity = guided_velocity(denoiser, x, sigma, guidance, plan[k], flags[k])
        x_now = x
        x, history = step_fn(x, velocity, sigma, mode_spec.token_sigmas(levels[k + 1], x), history)
        x = mode_spec.impose(x)
        check_finite(x, k, steps)
        if callback is not None:
            callback(k, steps, to_x0(x_now.video, velocity.video, sigma.video),
                     to_x0(x_now.audio, velocity.audio, sigma.audio))
    return x.video, x.audio
