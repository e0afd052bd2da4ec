"""Safetensors reading and strict state-dict checks shared by the MMAudio VAE and BigVGAN loaders.

A wrong or partial file raises one `WeightsMismatchError` naming the missing, unexpected and
misshaped keys (DESIGN.md, "Model contract"). Weights are read with safetensors only.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import torch
from torch import nn

logger = logging.getLogger(__name__)

_SHOW = 8  # keys listed per category in an error message


class WeightsMismatchError(ValueError):
    """A state dict does not fit the module it is loaded into."""


def _listing(title: str, items: list[str]) -> str:
    more = f" (+{len(items) - _SHOW} more)" if len(items) > _SHOW else ""
    return f"{title} ({len(items)}): {', '.join(items[:_SHOW])}{more}"


def check_state_dict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise WeightsMismatchError unless `sd` has exactly the keys and shapes of `module.state_dict()`."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    misshaped = sorted(f"{k} {tuple(sd[k].shape)} (expected {tuple(expected[k].shape)})"
                       for k in set(expected) & set(sd) if tuple(sd[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or misshaped):
        return
    parts = [_listing(t, items) for t, items in
             (("missing", missing), ("unexpected", unexpected), ("misshaped", misshaped)) if items]
    raise WeightsMismatchError(f"{source} does not fit {type(module).__name__}: " + "; ".join(parts))


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: str, assign: bool = False) -> None:
    """Check `sd` against `module` (clear error on mismatch), then load it.

    assign=True takes the tensors over instead of copying (for modules built on the meta device).
    """
    check_state_dict(module, sd, source)
    module.load_state_dict(dict(sd), strict=True, assign=assign)


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


def strip_prefix(sd: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Drop the first of `prefixes` that every key starts with (e.g. 'generator.'); else return as is."""
    for prefix in prefixes:
        if sd and all(k.startswith(prefix) for k in sd):
            return {k[len(prefix):]: v for k, v in sd.items()}
    return dict(sd)
