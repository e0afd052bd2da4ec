"""safetensors checkpoints: strict loading with one clear report, atomic saving, headers without loading.

Never unpickles. Our files carry the config as JSON in the metadata (`harmony_config`). A model is built
on the meta device and the file's tensors are assigned into it, so a 5B model is never allocated twice.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from ..config import AudioConfig, HarmonyConfig
from . import keymaps
from .detect import config_for_wan
from .safetensors_io import safetensors_path, write_safetensors
from .strict import CheckpointError, KeyReport, strip_shared_prefix

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"
CONFIG_KEY = "harmony_config"


@dataclass(frozen=True)
class Header:
    path: Path
    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]]   # as stored (wrapper prefix stripped)
    dtypes: dict[str, str]
    prefix: str                          # the wrapper prefix that was stripped ("" if none)
    keymap: keymaps.KeyMap


@dataclass(frozen=True)
class LoadReport:
    path: str
    format: str
    config: HarmonyConfig
    loaded: int
    keys: KeyReport = field(default=KeyReport())
    initialised: tuple[str, ...] = field(default=())   # model parts the file does not provide (fresh init)

    @property
    def ok(self) -> bool:
        return self.keys.ok

    def describe(self, limit: int = 8) -> str:
        return self.keys.describe(limit)


def read_header(path: str | os.PathLike) -> Header:
    """Metadata, shapes and dtypes of a safetensors file without loading tensors."""
    try:
        path = safetensors_path(path, "checkpoint")
    except (FileNotFoundError, ValueError) as exc:
        raise CheckpointError(str(exc)) from exc
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            raw = {k: f.get_slice(k) for k in f.keys()}
            shapes = {k: tuple(s.get_shape()) for k, s in raw.items()}
            dtypes = {k: s.get_dtype() for k, s in raw.items()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    prefix, stripped = strip_shared_prefix(list(shapes), keymaps.WRAPPER_PREFIXES)
    rename = dict(zip(shapes, stripped))
    try:
        keymap = keymaps.detect(stripped)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return Header(path, metadata, {rename[k]: v for k, v in shapes.items()},
                  {rename[k]: v for k, v in dtypes.items()}, prefix, keymap)


def config_of(header: Header, audio: AudioConfig | None = None) -> HarmonyConfig:
    if header.keymap is keymaps.HARMONY:
        if CONFIG_KEY not in header.metadata:
            raise CheckpointError(f"{header.path}: Harmony checkpoint without '{CONFIG_KEY}' metadata")
        return HarmonyConfig.from_json(header.metadata[CONFIG_KEY])
    shapes = {header.keymap.apply(k): v for k, v in header.shapes.items()}
    return config_for_wan(shapes, header.metadata, audio)


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None,
                    overwrite: bool = False) -> Path:
    """Write model weights + config metadata to `path` atomically (temp file in the folder, then rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name (checkpoints are never overwritten silently)")
    meta = {"format": "harmony", "format_version": FORMAT_VERSION, CONFIG_KEY: model.cfg.to_json(), **(metadata or {})}
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return write_safetensors(tensors, path, meta)
