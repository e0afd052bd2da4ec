"""Sampling: sigma schedules, solvers, guidance (text CFG, SyncCFG; UniAVGen's MA-CFG; CFG-rescale), modes as data,
the loop.

Pure torch, no I/O, no progress bars (the sampler takes a callback).
"""
from .guidance import (
    AUDIO_DRIVEN,
    GUIDANCE_KINDS,
    JOINT,
    UNCOND,
    VIDEO_DRIVEN,
    Denoiser,
    Guidance,
    Rescale,
    SyncAnchors,
    SyncCFG,
    TextCFG,
    combine,
    guidance_for,
    guided_velocity,
    plan_flags,
    plan_passes,
)
from .modes import ModeSpec, audio_driven, joint, video_driven
from .sampler import Callback, NonFiniteLatentError, sample
from .schedules import (
    DEFAULT_SHIFT,
    DEFAULT_STEPS,
    SCHEDULES,
    flow_sigmas,
    shift_sigma,
    sigmas_for,
    uniavgen_sigmas,
    uniavgen_timesteps,
)
from .solvers import AV, SOLVERS, History, dpmpp_2m, euler, get_solver, to_x0
from .uniavgen import MACFG, TASK_FLAGS, TaskFlags, uniavgen_task

__all__ = [
    "AUDIO_DRIVEN", "AV", "Callback", "DEFAULT_SHIFT", "DEFAULT_STEPS", "Denoiser", "GUIDANCE_KINDS", "Guidance",
    "History", "JOINT", "MACFG", "ModeSpec", "NonFiniteLatentError", "Rescale", "SCHEDULES", "SOLVERS",
    "SyncAnchors", "SyncCFG",
    "TASK_FLAGS", "TaskFlags", "TextCFG", "UNCOND", "VIDEO_DRIVEN", "audio_driven", "combine", "dpmpp_2m",
    "euler", "flow_sigmas", "get_solver", "guidance_for", "guided_velocity", "joint", "plan_flags",
    "plan_passes", "sample", "shift_sigma", "sigmas_for", "to_x0", "uniavgen_sigmas", "uniavgen_task", "uniavgen_timesteps",
    "video_driven",
]
