"""safetensors-only loading: key maps per source format, config detection, strict reports. It knows no model:
`harmony_core.model.load` builds a HarmonyModel from what this package reads."""
from .checkpoint import LoadReport, read_header, save_checkpoint
from .strict import CheckpointError, KeyReport, WeightsMismatchError

__all__ = ["CheckpointError", "KeyReport", "LoadReport", "WeightsMismatchError", "read_header",
           "save_checkpoint"]
