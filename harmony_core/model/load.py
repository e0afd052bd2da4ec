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
from . import fp8 as fp8q
from .harmony import HarmonyModel

log = logging.getLogger(__name__)


def build_empty(cfg: HarmonyConfig, attention: str = "sdpa") -> HarmonyModel:
    """A model whose parameters live on the meta device (no memory)."""
    with torch.device("meta"):
        return HarmonyModel(cfg, attention)


def load_model(path: str | os.PathLike, attention: str = "sdpa", dtype: torch.dtype | None = None,
               device: str | torch.device = "cpu", audio: AudioConfig | None = None, fp8: str | None = None,
               ) -> tuple[HarmonyModel, LoadReport]:
    """Load a Harmony checkpoint, a UniAVGen checkpoint (one file, a sharded folder or its index, ComfyUI
    prefix or not: every part strictly, a missing interaction module is an error), or a plain Wan2.2 DiT
    (video tower; audio tower and interaction are freshly initialised, as in the paper's stage 3). Raises
    CheckpointError naming every missing, unexpected and misshaped key.

    fp8: None, or "row" / "tensor": store the big linear layers (model/fp8.py) as float8_e4m3fn with that
    scaling, each quantized as it is read. Layers a file already stores in fp8 (weight + `<layer>.scale_weight`,
    as `python -m harmony_core convert --fp8` or ComfyUI write them) load as fp8 in any case; `dtype` is then
    their compute dtype (default: their bias's dtype)."""
    header = read_header(path)
    cfg = config_of(header, audio)
    model = build_empty(cfg, attention)
    parts = header.keymap.parts
    shapes, unit = _fp8_aware(model, header)
    want = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.split(".", 1)[0] in parts}
    fresh = tuple(p for p in ("video", "audio", "interaction") if p not in parts)
    report = LoadReport(str(header.path), header.keymap.name, cfg, len(shapes), compare_shapes(want, shapes), fresh)
    if not report.ok:   # name the keys as the file names them (UniAVGen: a2v_blocks.N, not interaction.2N.a2v)
        theirs = compare_shapes({header.keymap.invert(k): v for k, v in want.items()}, header.shapes)
        require_fit(report.keys if theirs.ok else theirs, f"{header.path} ({header.keymap.description})",
                    f"the {cfg.name} model")
    if fp8 is not None:   # the rest of the qualifying layers, quantized as their tensors arrive
        fp8q.quantize_model(model, fp8, names=[n for n in fp8q.qualifying(model) if n.split(".", 1)[0] in parts])
    _assign(model, header, device, dtype, unit)
    if fresh:
        model.rebuild_parts(fresh, device=device, dtype=dtype)
        log.info("%s: %s freshly initialised (not in the file)", header.path.name, ", ".join(fresh))
        if fp8 is not None:
            fp8q.quantize_model(model, fp8)
    fp8q.set_compute_dtype(model, dtype)
    _assert_materialised(model, header)
    return model.eval(), report


def _fp8_aware(model: HarmonyModel, header: Header) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """The file's shapes under our names, with the layers it stores in fp8 made FP8Linear on the meta model:
    those with a `<layer>.scale_weight` key, and Linear weights stored in fp8 without one (plain fp8 files: unit
    scale, returned in the set). ComfyUI's bookkeeping keys (`scaled_fp8`, `*.scale_input`) are dropped."""
    shapes = {header.keymap.apply(k): v for k, v in header.shapes.items()}
    fp8_keys = {header.keymap.apply(k) for k, d in header.dtypes.items() if d.startswith("F8")}
    ignored = [k for k in shapes if k in fp8q.IGNORED_KEYS or k.endswith(fp8q.IGNORED_SUFFIXES)]
    if ignored:
        log.info("fp8 checkpoint: ignoring %d bookkeeping tensors (%s)", len(ignored), ignored[0])
    suffix = "." + fp8q.SCALE_SUFFIX
    scales = {k[: -len(suffix)]: v for k, v in shapes.items() if k.endswith(suffix)}
    unit = {k[: -len(".weight")] for k in fp8_keys if k.endswith(".weight") and k[: -len(".weight")] not in scales
            and isinstance(_module(model, k[: -len(".weight")]), torch.nn.Linear)}
    fp8q.use_stored_scales(model, {**scales, **dict.fromkeys(unit, ())})
    shapes.update({layer + suffix: () for layer in unit})
    return {k: v for k, v in shapes.items() if k not in ignored}, unit


def _module(model: torch.nn.Module, name: str) -> torch.nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None


def _assign(model: HarmonyModel, header: Header, device: str | torch.device, dtype: torch.dtype | None,
            unit: set[str] = frozenset()) -> None:
    """Read tensors one by one (converted as they arrive), file by file, and assign them into the meta model.
    Weights of fp8 layers stay fp8 (and their scales float32); a layer made fp8 at load time gets its weight
    quantized on `device` as soon as it is read, so no second copy of the model is ever held. Other fp8
    tensors of a plain fp8 file (unscaled) are cast to `dtype` (default bfloat16)."""
    quantized = {n: m for n, m in fp8q.fp8_layers(model)}
    state = {layer + "." + fp8q.SCALE_SUFFIX: torch.ones((), device=device) for layer in unit}
    for file, keys in header.by_file().items():
        with safe_open(str(file), framework="pt", device="cpu") as f:
            for stored in keys:
                key = header.keymap.apply(stored[len(header.prefix):])
                if key in fp8q.IGNORED_KEYS or key.endswith(fp8q.IGNORED_SUFFIXES):
                    continue
                layer, _, leaf = key.rpartition(".")
                t = f.get_tensor(stored)
                if layer in quantized and leaf in ("weight", fp8q.SCALE_SUFFIX):
                    state.update(_fp8_tensors(quantized[layer], key, t, device))
                    continue
                if fp8q.is_fp8(t) or (dtype is not None and t.is_floating_point()):
                    t = t.to(dtype or torch.bfloat16)
                state[key] = _aligned(t.to(device))
    model.load_state_dict(state, strict=False, assign=True)


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """safetensors hands out CPU tensors at odd addresses; CPU kernels may round differently on them than on
    the allocator's 64-byte-aligned copies (what block swap streams, what `.to()` makes), so a loaded model is
    made of aligned tensors: the same numbers whichever way its weights are moved."""
    return t.clone() if t.device.type == "cpu" and t.data_ptr() % 64 else t


def _fp8_tensors(layer: fp8q.FP8Linear, key: str, t: torch.Tensor, device: str | torch.device,
                 ) -> dict[str, torch.Tensor]:
    """The state entries of an fp8 layer's weight or scale as read: kept (stored fp8) or quantized (a float weight)."""
    if key.endswith(fp8q.SCALE_SUFFIX):
        return {key: _aligned(t.to(device, torch.float32))}
    if fp8q.is_fp8(t):
        return {key: _aligned(t.to(device))}
    scaling = "row" if layer.scale_weight.ndim else "tensor"
    q, s = fp8q.quantize(t.to(device), scaling, layer.stored.dtype)
    return {key: q, key[: -len("weight")] + fp8q.SCALE_SUFFIX: s}


def _assert_materialised(model: torch.nn.Module, header: Header) -> None:
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:
        raise CheckpointError(f"{header.path}: parameters left uninitialised: {left[:8]}")
