"""safetensors checkpoints: strict loading with one clear report, atomic saving, headers without loading.

Never unpickles. Our files carry the config as JSON in the metadata (`harmony_config`). A model is built
on the meta device and the file's tensors are assigned into it, so a 5B model is never allocated twice.

A checkpoint is one .safetensors file, or a diffusers-style sharded one: a folder holding
`diffusion_pytorch_model.safetensors.index.json` (or that index file itself) whose `weight_map` names the
shard of every tensor (UniAVGen's release), or a folder holding exactly one .safetensors file.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from ..config import AudioConfig, HarmonyConfig
from . import keymaps
from .detect import config_for_uniavgen, config_for_wan
from .safetensors_io import safetensors_path, write_safetensors
from .strict import CheckpointError, KeyReport, strip_shared_prefix

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"
CONFIG_KEY = "harmony_config"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
INDEX_SUFFIX = ".safetensors.index.json"


@dataclass(frozen=True)
class Header:
    path: Path
    metadata: dict[str, str]
    shapes: dict[str, tuple[int, ...]]   # as stored (wrapper prefix stripped)
    dtypes: dict[str, str]
    prefix: str                          # the wrapper prefix that was stripped ("" if none)
    keymap: keymaps.KeyMap
    files: dict[str, Path] = field(default_factory=dict)   # stored key (prefix included) -> the file holding it

    def by_file(self) -> dict[Path, list[str]]:
        """file -> the stored keys it holds, in file order of first appearance."""
        out: dict[Path, list[str]] = {}
        for key, file in self.files.items():
            out.setdefault(file, []).append(key)
        return out


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
    """Metadata, shapes and dtypes of a checkpoint (one file, or a sharded folder / index) without loading tensors."""
    path = Path(path)
    files, placed, metadata = _shard_files(path)
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    where: dict[str, Path] = {}
    for file in files:
        meta, file_shapes, file_dtypes = _read_one(file)
        twice = sorted(set(file_shapes) & set(shapes))
        if twice:
            raise CheckpointError(f"{path}: tensors stored in two shards ({where[twice[0]].name}, {file.name}): "
                                  f"{twice[:4]}")
        metadata = {**meta, **metadata}
        shapes.update(file_shapes)
        dtypes.update(file_dtypes)
        where.update(dict.fromkeys(file_shapes, file))
    absent = sorted(k for k, f in placed.items() if where.get(k) != f)
    if absent:
        raise CheckpointError(f"{path}: the index places {len(absent)} tensors in shards that do not hold them, "
                              f"e.g. {absent[:4]}; the download is incomplete or mixed")
    prefix, stripped = strip_shared_prefix(list(shapes), keymaps.WRAPPER_PREFIXES)
    rename = dict(zip(shapes, stripped))
    try:
        keymap = keymaps.detect(stripped)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return Header(path, metadata, {rename[k]: v for k, v in shapes.items()},
                  {rename[k]: v for k, v in dtypes.items()}, prefix, keymap, where)


def _read_one(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]], dict[str, str]]:
    try:
        path = safetensors_path(path, "checkpoint")
    except (FileNotFoundError, ValueError) as exc:
        raise CheckpointError(str(exc)) from exc
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            raw = {k: f.get_slice(k) for k in f.keys()}
            return metadata, {k: tuple(s.get_shape()) for k, s in raw.items()}, {k: s.get_dtype() for k, s in raw.items()}
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def _shard_files(path: Path) -> tuple[list[Path], dict[str, Path], dict[str, str]]:
    """The .safetensors files a checkpoint path stands for (a file, an index, or a folder); for an index also
    the shard its weight_map places each tensor in and its string metadata."""
    if path.is_dir():
        indexes = sorted(path.glob("*" + INDEX_SUFFIX), key=lambda p: (p.name != INDEX_NAME, p.name))
        if indexes:
            return _index_files(indexes[0])
        singles = sorted(path.glob("*.safetensors"))
        if len(singles) != 1:
            raise CheckpointError(f"{path}: a checkpoint folder needs a '{INDEX_NAME}' (sharded checkpoint) or "
                                  f"exactly one .safetensors file; found {[p.name for p in singles] or 'none'}")
        return singles, {}, {}
    if path.name.endswith(INDEX_SUFFIX):
        return _index_files(path)
    return [path], {}, {}


def _index_files(index: Path) -> tuple[list[Path], dict[str, Path], dict[str, str]]:
    """Shards named by a diffusers index's weight_map (each checked to exist), where it places each key, and
    the index's string metadata."""
    try:
        content = json.loads(index.read_text(encoding="utf-8"))
        placed = {str(k): index.parent / str(n) for k, n in content["weight_map"].items()}
        metadata = {str(k): v for k, v in (content.get("metadata") or {}).items() if isinstance(v, str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{index}: not a sharded-checkpoint index with a 'weight_map' ({exc})") from exc
    files = list(dict.fromkeys(placed.values()))
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise CheckpointError(f"{index}: shard files missing beside the index: {missing}; download them all")
    return files, placed, metadata


def config_of(header: Header, audio: AudioConfig | None = None) -> HarmonyConfig:
    if header.keymap is keymaps.HARMONY:
        if CONFIG_KEY not in header.metadata:
            raise CheckpointError(f"{header.path}: Harmony checkpoint without '{CONFIG_KEY}' metadata")
        return HarmonyConfig.from_json(header.metadata[CONFIG_KEY])
    shapes = {header.keymap.apply(k): v for k, v in header.shapes.items()}
    try:
        if header.keymap is keymaps.UNIAVGEN:
            return config_for_uniavgen(shapes, header.metadata)
        return config_for_wan(shapes, header.metadata, audio)
    except KeyError as exc:
        name = header.keymap.invert(str(exc.args[0]))
        raise CheckpointError(f"{header.path} ({header.keymap.description}) lacks {name!r}, which its sizes are "
                              "read from; the file is incomplete") from exc


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None,
                    overwrite: bool = False) -> Path:
    """Write model weights + config metadata to `path` atomically (temp file in the folder, then rename)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name (checkpoints are never overwritten silently)")
    meta = {"format": "harmony", "format_version": FORMAT_VERSION, CONFIG_KEY: model.cfg.to_json(), **(metadata or {})}
    tensors = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return write_safetensors(tensors, path, meta)
