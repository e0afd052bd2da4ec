"""The one way weights files are opened: safetensors only, never a pickle."""
from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)


def safetensors_path(path: str | os.PathLike, what: str = "weights") -> Path:
    """The path, checked: it exists and is a .safetensors file (FileNotFoundError / ValueError otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if path.suffix != ".safetensors":
        raise ValueError(f"{path}: only .safetensors {what} files are loaded (pickled .pt/.pth/.ckpt never are); "
                         "convert it with a trusted tool first")
    return path


def read_safetensors(path: str | os.PathLike, what: str = "weights",
                     ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict on CPU, metadata) of a checked .safetensors file."""
    path = safetensors_path(path, what)
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata() or {})
    log.info("reading %s", path)
    return load_file(str(path)), metadata


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                      metadata: dict[str, str] | None = None) -> Path:
    """Write atomically: a temp file in the target folder, then rename (a crash never leaves half a file).
    The file gets the permissions any new file gets (0o666 less the umask; safetensors writes 0o600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))   # created under the umask
    mode = stat.S_IMODE(os.stat(tmp).st_mode)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def metadata_json(metadata: Mapping[str, str], key: str) -> dict | None:
    """JSON object stored under `key` in safetensors metadata, or None when absent."""
    if key not in metadata:
        return None
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError as e:
        raise ValueError(f"safetensors metadata {key!r} is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise ValueError(f"safetensors metadata {key!r} must be a JSON object, got {type(value).__name__}")
    return value
