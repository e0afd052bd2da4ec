"""Training state in one safetensors file: model, EMA, optimizer, step and RNG states (no pickle).

Layout: tensors `model.<name>`, `ema.<name>`, `optim.<param index>.<key>` (AdamW's exp_avg, exp_avg_sq,
step) and `rng.torch` (the global CPU generator); the JSON metadata `train_state` holds the step, the
optimizer's param_groups and the run's configuration. Written atomically (temporary file, then rename).
The per-step training randomness is drawn from generators keyed by (seed, step, rank), so the step and
this state are all an exact resume needs.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from ..loading.safetensors_io import write_safetensors

STATE_KEY = "train_state"
FORMAT = "harmony-train-state"


@dataclass(frozen=True, eq=False)
class TrainState:
    """What `save_train_state` writes and `load_train_state` returns."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    ema: dict[str, torch.Tensor] | None
    rng: torch.Tensor
    info: dict[str, Any]


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    tensors = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{key} is a {type(value).__name__}; only tensors "
                                "are stored")
            tensors[f"optim.{index}.{key}"] = value.detach().contiguous().cpu()
    return tensors, state["param_groups"]


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = value
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    return {"state": state, "param_groups": groups}


def save_train_state(path: str | os.PathLike, state: TrainState) -> Path:
    """Write `state` to `path` atomically; returns the path."""
    tensors = {f"model.{k}": v.detach().contiguous().cpu() for k, v in state.model.items()}
    if state.ema is not None:
        tensors.update({f"ema.{k}": v.detach().contiguous().cpu() for k, v in state.ema.items()})
    optim, groups = _flatten_optimizer(state.optimizer)
    tensors.update(optim)
    tensors["rng.torch"] = state.rng.contiguous()
    meta = {"format": FORMAT, STATE_KEY: json.dumps({"step": state.step, "param_groups": groups,
                                                      "info": state.info, "ema": state.ema is not None})}
    return write_safetensors(tensors, path, meta)


def load_train_state(path: str | os.PathLike) -> TrainState:
    """Read a file written by `save_train_state`; ValueError when it is something else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training state at {path}; start without --resume or point --out at the "
                                "run's folder")
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = dict(f.metadata() or {})
        if meta.get("format") != FORMAT or STATE_KEY not in meta:
            raise ValueError(f"{path} is not a training state (format {meta.get('format')!r}); model files "
                             "are loaded with model.load.load_model instead")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    info = json.loads(meta[STATE_KEY])
    parts: dict[str, dict[str, torch.Tensor]] = {"model": {}, "ema": {}, "optim": {}}
    for name, value in tensors.items():
        head, rest = name.split(".", 1)
        if head in parts:
            parts[head][rest if head != "optim" else name] = value
    optimizer = _unflatten_optimizer(parts["optim"], info["param_groups"])
    return TrainState(int(info["step"]), parts["model"], optimizer, parts["ema"] if info["ema"] else None,
                      tensors["rng.torch"], info["info"])
