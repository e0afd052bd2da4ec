"""`python -m harmony_core convert --fp8 IN OUT`: a checkpoint with its big linear layers stored in fp8.

IN is anything `load.load_model` reads (a Harmony file, a UniAVGen file / sharded folder / index, a Wan2.2
DiT, with or without ComfyUI's prefix). OUT is ONE .safetensors file with the same keys as IN (prefix
included, so it stays in IN's format), where each qualifying layer (`fp8.qualifies`) has

    <layer>.weight        float8_e4m3fn [out, in]
    <layer>.scale_weight  float32 [out, 1] (scaling "row", the default) or [] ("tensor", ComfyUI's layout)

and every other tensor is copied unchanged. The metadata is IN's plus `harmony_fp8` (JSON: format, scaling,
layer count, source file). The file is written as it is read (the header first, then one tensor at a time), so
memory holds one tensor, and atomically (a temporary file in OUT's folder, renamed at the end).
"""
from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open

from ..loading.checkpoint import Header, config_of, read_header
from . import fp8 as fp8q
from .load import build_empty

log = logging.getLogger(__name__)

DTYPE_NAMES = {torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2", torch.bfloat16: "BF16",
               torch.float16: "F16", torch.float32: "F32", torch.float64: "F64", torch.int64: "I64",
               torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}
ELEMENT_BYTES = {"F8_E4M3": 1, "F8_E5M2": 1, "BF16": 2, "F16": 2, "F32": 4, "F64": 8, "I64": 8, "I32": 4,
                 "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
METADATA_KEY = "harmony_fp8"


def _plan(header: Header, scaling: str) -> tuple[dict[str, tuple[str, tuple[int, ...]]], set[str]]:
    """stored key -> (dtype name, shape) of every tensor OUT holds, in order, and the stored weight keys to quantize."""
    model = build_empty(config_of(header))
    ours = set(fp8q.qualifying(model))
    scaled = {k[: -len(fp8q.SCALE_SUFFIX)] for k in header.shapes if k.endswith("." + fp8q.SCALE_SUFFIX)}
    entries: dict[str, tuple[str, tuple[int, ...]]] = {}
    quantize = set()
    for key, shape in header.shapes.items():
        layer = header.keymap.apply(key)[: -len(".weight")] if key.endswith(".weight") else None
        stored = header.prefix + key
        if layer in ours and key[: -len("weight")] not in scaled and not header.dtypes[key].startswith("F8"):
            quantize.add(stored)
            entries[stored] = ("F8_E4M3", shape)
            entries[stored[: -len("weight")] + fp8q.SCALE_SUFFIX] = ("F32", (shape[0], 1) if scaling == "row" else ())
        else:
            entries[stored] = (header.dtypes[key], shape)
    return entries, quantize


def _header_bytes(entries: dict[str, tuple[str, tuple[int, ...]]], metadata: dict[str, str]) -> bytes:
    table: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for key, (dtype, shape) in entries.items():
        n = ELEMENT_BYTES[dtype]
        for d in shape:
            n *= d
        table[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(table, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)                      # the tensor data starts 8-byte aligned
    return struct.pack("<Q", len(raw)) + raw


def _write_tensor(out: object, t: torch.Tensor, dtype: str) -> None:
    if DTYPE_NAMES.get(t.dtype) != dtype:
        raise RuntimeError(f"converter: got {t.dtype} for a tensor planned as {dtype}")
    out.write(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())


def convert_fp8(src: str | os.PathLike, dst: str | os.PathLike, scaling: str = "row",
                overwrite: bool = False) -> dict[str, object]:
    """Write `dst` from `src` with the qualifying layers in fp8; returns a summary (layers, bytes in and out)."""
    dst = Path(dst)
    if dst.suffix != ".safetensors":
        raise ValueError(f"convert: the output must be a .safetensors file, got {dst}")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; choose another name (files are never overwritten silently)")
    header = read_header(src)
    entries, quantize = _plan(header, scaling)
    info = {"format": "float8_e4m3fn", "scaling": scaling, "layers": len(quantize), "source": header.path.name}
    metadata = {**header.metadata, METADATA_KEY: json.dumps(info)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_header_bytes(entries, metadata))
            _stream(header, entries, quantize, scaling, out)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    summary = {**info, "bytes_in": _bytes(header), "bytes_out": dst.stat().st_size, "out": str(dst)}
    log.info("wrote %s: %d layers in fp8 (%s scales), %.2f GiB -> %.2f GiB", dst, len(quantize), scaling,
             summary["bytes_in"] / 2**30, summary["bytes_out"] / 2**30)
    return summary


def _stream(header: Header, entries: dict[str, tuple[str, tuple[int, ...]]], quantize: set[str], scaling: str,
            out: object) -> None:
    """Write the tensors in `entries` order (the header's), reading each file of a sharded IN once per key."""
    files = header.files
    handles: dict[Path, object] = {}
    try:
        for key, (dtype, _) in entries.items():
            if key not in files:        # a scale written together with its weight
                continue
            if files[key] not in handles:
                handles[files[key]] = safe_open(str(files[key]), framework="pt", device="cpu")
            t = handles[files[key]].get_tensor(key)
            if key in quantize:
                q, s = fp8q.quantize(t, scaling)
                _write_tensor(out, q, "F8_E4M3")
                _write_tensor(out, s, "F32")
            else:
                _write_tensor(out, t, dtype)
    finally:
        handles.clear()


def _bytes(header: Header) -> int:
    return sum(Path(f).stat().st_size for f in set(header.files.values()))
