"""The shipped backends: torch SDPA (default), flash-attn and SageAttention when installed, and an
fp32 math reference used by tests."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .api import Backend, register


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    mask = None if key_mask is None else key_mask[:, None, None, :]        # [B, 1, 1, Lk]
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         attn_mask=mask)                    # [B, H, Lq, D]
    return out.transpose(1, 2)                                              # [B, Lq, H, D]


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v in float32 math, for tests."""
    scores = torch.einsum("bqhd,bkhd->bhqk", q.float(), k.float()) / math.sqrt(q.shape[-1])
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
    out = torch.einsum("bhqk,bkhd->bqhd", scores.softmax(dim=-1), v.float())
    return out.to(q.dtype)


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    from flash_attn import flash_attn_func

    return flash_attn_func(q, k, v)  # layout [B, L, H, D] natively


def _sage(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
    from sageattention import sageattn

    return sageattn(q, k, v, tensor_layout="NHD")


HALF = (torch.float16, torch.bfloat16)

SDPA = register(Backend("sdpa", _sdpa))
REFERENCE = register(Backend("reference", reference_attention))
FLASH = register(Backend("flash", _flash, requires="flash_attn", supports_mask=False, dtypes=HALF,
                         max_head_dim=256, needs_cuda=True))
SAGE = register(Backend("sage", _sage, requires="sageattention", supports_mask=False, dtypes=HALF,
                        max_head_dim=128, needs_cuda=True))
