"""Build a HarmonyModel from a checkpoint: meta-device construction, strict assignment, one report.

The model side of loading: `harmony_core.loading` reads headers, key maps and configs (it knows no model);
this module builds the model they describe and assigns the tensors."""
from __future__ import annotations

import logging
import os

import torch
from safetensors import safe_open

from ..config import AudioConfig, HarmonyConfig
from ..loading.checkpoint import CheckpointError, Header, LoadReport, config_of, read_header
from ..loading.strict import compare_shapes, require_fit
from .harmony import HarmonyModel

log = logging.getLogger(__name__)


def build_empty(cfg: HarmonyConfig, attention: str = "sdpa") -> HarmonyModel:
    """A model whose parameters live on the meta device (no memory)."""
    with torch.device("meta"):
        return HarmonyModel(cfg, attention)


def load_model(path: str | os.PathLike, attention: str = "sdpa", dtype: torch.dtype | None = None,
               device: str | torch.device = "cpu", audio: AudioConfig | None = None,
               ) -> tuple[HarmonyModel, LoadReport]:
    """Load a Harmony checkpoint, a UniAVGen checkpoint (one file, a sharded folder or its index, ComfyUI
    prefix or not: every part strictly, a missing interaction module is an error), or a plain Wan2.2 DiT
    (video tower; audio tower and interaction are freshly initialised, as in the paper's stage 3). Raises
    CheckpointError naming every missing, unexpected and misshaped key."""
    header = read_header(path)
    cfg = config_of(header, audio)
    model = build_empty(cfg, attention)
    parts = header.keymap.parts
    shapes = {header.keymap.apply(k): v for k, v in header.shapes.items()}
    want = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.split(".", 1)[0] in parts}
    fresh = tuple(p for p in ("video", "audio", "interaction") if p not in parts)
    report = LoadReport(str(header.path), header.keymap.name, cfg, len(shapes), compare_shapes(want, shapes), fresh)
    if not report.ok:   # name the keys as the file names them (UniAVGen: a2v_blocks.N, not interaction.2N.a2v)
        theirs = compare_shapes({header.keymap.invert(k): v for k, v in want.items()}, header.shapes)
        require_fit(report.keys if theirs.ok else theirs, f"{header.path} ({header.keymap.description})",
                    f"the {cfg.name} model")
    _assign(model, header, device, dtype)
    if fresh:
        model.rebuild_parts(fresh, device=device, dtype=dtype)
        log.info("%s: %s freshly initialised (not in the file)", header.path.name, ", ".join(fresh))
    _assert_materialised(model, header)
    return model.eval(), report


def _assign(model: HarmonyModel, header: Header, device: str | torch.device, dtype: torch.dtype | None) -> None:
    """Read tensors one by one (converted as they arrive), file by file, and assign them into the meta model."""
    state = {}
    for file, keys in header.by_file().items():
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for stored in keys:
                key = header.keymap.apply(stored[len(header.prefix):])
                t = f.get_tensor(stored)
                if dtype is not None and t.is_floating_point():
                    t = t.to(dtype)
                state[key] = t.to(device)
    model.load_state_dict(state, strict=False, assign=True)


def _assert_materialised(model: torch.nn.Module, header: Header) -> None:
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:
        raise CheckpointError(f"{header.path}: parameters left uninitialised: {left[:8]}")
