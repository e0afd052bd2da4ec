"""Building blocks shared by both towers: Wan-style attention modules and modulation helpers.

Parameter names follow Wan2.2 (`q`, `k`, `v`, `o`, `norm_q`, `norm_k`) so a Wan checkpoint loads with
zero renames. q/k RMSNorm runs over the full width before the head split, as in Wan.
"""
from __future__ import annotations

import torch
from torch import nn

from ..attention import Backend
from .embeddings import RMSNorm, Rope, sinusoidal_embedding

TIMESTEP_SCALE = 1000.0  # sigma in [0, 1] -> Wan's num_train_timesteps units


def to_weight_dtype(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """Cast an activation to the dtype of a layer's weight (the residual stream stays float32)."""
    return x.to(getattr(layer, "compute_dtype", None) or layer.weight.dtype)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * (1 + scale) + shift, in float32."""
    return x.float() * (1 + scale) + shift


def gelu_mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    """Linear -> GELU(tanh) -> Linear (Wan's ffn and text_embedding); indices 0 and 2 hold weights."""
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim_out))


class Attention(nn.Module):
    """Multi-head attention with Wan's parameter names; queries from x, keys/values from `source`.

    x [B, Lq, Cq], source [B, Lk, Ckv] -> [B, Lq, C]. q/k may be rotated by separate Rope objects.
    """

    def __init__(self, dim: int, num_heads: int, backend: Backend, kv_dim: int | None = None,
                 qk_norm: bool = True, eps: float = 1e-6, q_dim: int | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.backend = backend
        self.q = nn.Linear(q_dim or dim, dim)
        self.k = nn.Linear(kv_dim or dim, dim)
        self.v = nn.Linear(kv_dim or dim, dim)
        self.o = nn.Linear(dim, q_dim or dim)
        self.norm_q = RMSNorm(dim, eps) if qk_norm else nn.Identity()
        self.norm_k = RMSNorm(dim, eps) if qk_norm else nn.Identity()

    def project_q(self, x: torch.Tensor, rope: Rope | None = None) -> torch.Tensor:
        q = self.norm_q(self.q(to_weight_dtype(x, self.q))).unflatten(-1, (self.num_heads, -1))  # [B, L, H, D]
        return rope.apply(q) if rope is not None else q

    def project_kv(self, source: torch.Tensor, rope: Rope | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        src = to_weight_dtype(source, self.k)
        k = self.norm_k(self.k(src)).unflatten(-1, (self.num_heads, -1))                    # [B, L, H, D]
        v = self.v(src).unflatten(-1, (self.num_heads, -1))
        return (rope.apply(k) if rope is not None else k), v

    def out(self, attended: torch.Tensor) -> torch.Tensor:
        return self.o(attended.flatten(-2))                                                  # [B, L, C]

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None, q_rope: Rope | None = None,
                k_rope: Rope | None = None, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        q = self.project_q(x, q_rope)
        k, v = self.project_kv(x if source is None else source, k_rope)
        return self.out(self.backend(q, k, v, key_mask))


def embed_timesteps(timesteps: torch.Tensor, freq_dim: int, time_embedding: nn.Sequential,
                    time_projection: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """Wan's timestep path: timesteps [B, N] (Wan units) -> e [B, N, C], e0 [B, N, 6, C] (float32).

    time_embedding = Linear -> SiLU -> Linear on the sinusoidal embedding; time_projection = SiLU -> Linear(C, 6C).
    """
    b, n = timesteps.shape
    sin = sinusoidal_embedding(freq_dim, timesteps.flatten())                      # [B*N, freq_dim]
    e = time_embedding(to_weight_dtype(sin, time_embedding[0])).float()
    e0 = time_projection(to_weight_dtype(e, time_projection[1])).float()
    return e.view(b, n, -1), e0.view(b, n, 6, -1)


def embed_padded_text(context: torch.Tensor, text_len: int, text_embedding: nn.Sequential, what: str) -> torch.Tensor:
    """[B, L <= text_len, D] -> zero-padded to text_len -> text_embedding -> [B, text_len, C].

    Wan pads umT5 contexts with zero rows and attends to them too, so the padding is part of the numerics.
    """
    b, n, d = context.shape
    if n > text_len:
        raise ValueError(f"{what} has {n} tokens; this model accepts at most {text_len}")
    padded = context.new_zeros(b, text_len, d)
    padded[:, :n] = context
    return text_embedding(to_weight_dtype(padded, text_embedding[0]))
