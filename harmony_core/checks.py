"""Input checks shared by every entry point (CLI loaders, node adapters, metrics): one wording for one fault."""
from __future__ import annotations

import torch


def require_finite(x: torch.Tensor, what: str, unit: str, advice: str) -> torch.Tensor:
    """`x` unchanged, or a ValueError "<what>: N of M <unit> are NaN or infinite; <advice>"."""
    if bool(torch.isfinite(x).all()):
        return x
    bad = int((~torch.isfinite(x)).sum())
    raise ValueError(f"{what}: {bad} of {x.numel()} {unit} are NaN or infinite; {advice}")
