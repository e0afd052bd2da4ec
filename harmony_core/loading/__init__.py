"""safetensors-only loading: key maps per source format, config detection, strict reports."""
from .checkpoint import CheckpointError, LoadReport, read_header, save_checkpoint
from .load import build_empty, load_model

__all__ = ["CheckpointError", "LoadReport", "build_empty", "load_model", "read_header", "save_checkpoint"]
