"""Sampling: sigma schedules, solvers, guidance (text CFG, SyncCFG), modes as data, the sampling loop.

Pure torch, no I/O, no progress bars (the sampler takes a callback).
"""
from .guidance import (
    AUDIO_DRIVEN,
    JOINT,
    UNCOND,
    VIDEO_DRIVEN,
    Denoiser,
    Guidance,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    combine,
    guided_velocity,
    plan_passes,
)
from .modes import ModeSpec, audio_driven, joint, video_driven
from .sampler import Callback, NonFiniteLatentError, sample
from .schedules import DEFAULT_SHIFT, DEFAULT_STEPS, flow_sigmas, shift_sigma
from .solvers import AV, SOLVERS, History, dpmpp_2m, euler, get_solver, to_x0

__all__ = [
    "AUDIO_DRIVEN", "AV", "Callback", "DEFAULT_SHIFT", "DEFAULT_STEPS", "Denoiser", "Guidance", "History", "JOINT",
    "ModeSpec", "NonFiniteLatentError", "SOLVERS", "SyncAnchors", "SyncCFG", "TextCFG", "UNCOND", "VIDEO_DRIVEN", "audio_driven",
    "combine", "dpmpp_2m", "euler", "flow_sigmas", "get_solver", "guided_velocity", "joint", "plan_passes",
    "sample", "shift_sigma", "to_x0", "video_driven",
]
