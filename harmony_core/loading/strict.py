"""The one strict weight check: a key report (missing / unexpected / misshaped) and one error type.

Every loader goes through it: the Harmony/Wan2.2 DiT (`model/load.py`), the Wan2.2 VAE, the MMAudio VAE
and BigVGAN (`codecs/`), and any format added later. A file that does not fit raises `WeightsMismatchError`
naming the file, what it was loaded into and every offending key, in one format:

    {source} does not fit {target}: missing (1): a.weight; unexpected (2): b, c; misshaped (1): d (3, 3) (expected (4, 3))
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

SHOWN = 8  # keys listed per category in a message

Shape = tuple[int, ...]


class CheckpointError(ValueError):
    """A file that is not what it should be; the message names the file and the offending keys."""


class WeightsMismatchError(CheckpointError):
    """A state dict does not fit the module it is loaded into."""


@dataclass(frozen=True)
class KeyReport:
    """How a file's keys compare with a model's: each list sorted."""

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    misshaped: tuple[tuple[str, Shape, Shape], ...] = ()   # (key, shape in the file, shape the model expects)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.misshaped)

    def describe(self, limit: int = SHOWN) -> str:
        shaped = tuple(f"{k} {got} (expected {want})" for k, got, want in self.misshaped)
        parts = [_listing(title, items, limit) for title, items in
                 (("missing", self.missing), ("unexpected", self.unexpected), ("misshaped", shaped)) if items]
        return "; ".join(parts) or "all keys matched"


def _listing(title: str, items: tuple[str, ...], limit: int) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return f"{title} ({len(items)}): {', '.join(items[:limit])}{more}"


def compare_shapes(expected: Mapping[str, Shape], found: Mapping[str, Shape]) -> KeyReport:
    """The report of `found` (a file's key -> shape) against `expected` (the model's)."""
    common = sorted(set(expected) & set(found))
    return KeyReport(
        missing=tuple(sorted(set(expected) - set(found))),
        unexpected=tuple(sorted(set(found) - set(expected))),
        misshaped=tuple((k, tuple(found[k]), tuple(expected[k])) for k in common
                        if tuple(found[k]) != tuple(expected[k])))


def shapes_of(tensors: Mapping[str, torch.Tensor]) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in tensors.items()}


def require_fit(report: KeyReport, source: str, target: str) -> None:
    """Raise WeightsMismatchError unless the report is clean."""
    if not report.ok:
        raise WeightsMismatchError(f"{source} does not fit {target}: {report.describe()}")


def check_state_dict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise WeightsMismatchError unless `sd` has exactly the keys and shapes of `module.state_dict()`."""
    report = compare_shapes(shapes_of(module.state_dict()), shapes_of(sd))
    require_fit(report, source, type(module).__name__)


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: str, assign: bool = False) -> None:
    """Check `sd` against `module` (one clear error on mismatch), then load it.

    assign=True takes the tensors over instead of copying (for modules built on the meta device).
    """
    check_state_dict(module, sd, source)
    module.load_state_dict(dict(sd), strict=True, assign=assign)


def strip_shared_prefix(keys: list[str], prefixes: tuple[str, ...]) -> tuple[str, list[str]]:
    """Remove the first of `prefixes` that every key starts with; returns (prefix, keys)."""
    for prefix in prefixes:
        if prefix and keys and all(k.startswith(prefix) for k in keys):
            return prefix, [k[len(prefix):] for k in keys]
    return "", keys


def strip_prefix(sd: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """`sd` with the first of `prefixes` that every key starts with removed (e.g. 'generator.'); else as is."""
    prefix, keys = strip_shared_prefix(list(sd), prefixes)
    return dict(zip(keys, sd.values())) if prefix else dict(sd)


def select_prefix(sd: Mapping[str, torch.Tensor], prefixes: tuple[str, ...], probe: str,
                  ) -> tuple[str, dict[str, torch.Tensor]]:
    """The keys under the first of `prefixes` that holds `probe`, prefix removed (other keys dropped: a
    bundle may carry several models); ValueError when none does."""
    for prefix in prefixes:
        if prefix + probe in sd:
            return prefix, {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    raise ValueError(f"no '{probe}' under any accepted prefix {prefixes}; first keys: {sorted(sd)[:5]}")
