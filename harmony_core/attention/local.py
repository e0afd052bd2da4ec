"""Frame-neighbourhood attention without copying keys: the V2A kernel.

Queries are grouped by video latent frame (a handful of audio latents each); group g attends to the
tokens of frames g - margin .. g + margin. Gathering those frames into a (G, (2m+1)*P) key batch would copy
every key 2m+1 times; here each neighbour offset is a shifted *view* of the keys, the per-offset scores are
concatenated, softmaxed together and applied offset by offset. Scores are small (a few queries per frame),
so the math runs in float32 with einsum rather than through a fused kernel.
"""
from __future__ import annotations

import torch


def _span(groups: int, offset: int) -> tuple[int, int]:
    """Groups g whose neighbour g + offset exists: [lo, hi)."""
    return max(0, -offset), min(groups, groups - offset)


def neighbour_frame_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, margin: int) -> torch.Tensor:
    """q [N, G, Qw, H, D]; k, v [N, G, P, H, D] (P tokens per frame) -> [N, G, Qw, H, D]."""
    n, g, qw, h, d = q.shape
    p = k.shape[2]
    qf = q.float().transpose(2, 3) * d ** -0.5                                     # [N, G, H, Qw, D]
    kf = k.float().transpose(2, 3).contiguous()                                  # [N, G, H, P, D] (one copy)
    vf = v.float().transpose(2, 3).contiguous()
    offsets = range(-margin, margin + 1)
    scores = qf.new_full((n, g, h, qw, len(offsets) * p), float("-inf"))          # [N, G, H, Qw, O*P]
    for i, off in enumerate(offsets):
        lo, hi = _span(g, off)
        if lo < hi:   # slices along G stay contiguous: the matmuls read views, no key is copied again
            scores[:, lo:hi, :, :, i * p:(i + 1) * p] = qf[:, lo:hi] @ kf[:, lo + off:hi + off].transpose(-1, -2)
    weights = scores.softmax(dim=-1)
    out = qf.new_zeros(n, g, h, qw, d)
    for i, off in enumerate(offsets):
        lo, hi = _span(g, off)
        if lo < hi:
            out[:, lo:hi] += weights[:, lo:hi, :, :, i * p:(i + 1) * p] @ vf[:, lo + off:hi + off]
    return out.transpose(2, 3).to(q.dtype)                                        # [N, G, Qw, H, D]
