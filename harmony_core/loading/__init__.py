"""safetensors-only loading: key maps per source format, config detection, strict reports. It knows no model:
`harmony_core.model.load` builds a HarmonyModel from what this package reads."""
from .checkpoint import CheckpointError, LoadReport, read_header, save_checkpoint

__all__ = ["CheckpointError", "LoadReport", "read_header", "save_checkpoint"]
