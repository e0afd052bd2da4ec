"""GLDI's gathered kernels (attention/local.py) equal the dense masked reference, on every path, and run
the FLOPs the window sizes imply in dense matmuls. Their speed is a figure of `python -m harmony_core bench
gldi`, never asserted here."""
from __future__ import annotations

import collections
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from harmony_core import timeline
from harmony_core.attention import local

RATIOS = [(5, 31), (7, 35), (3, 50), (8, 8), (6, 4), (28, 137), (1, 9), (4, 13)]


def dense_reference(q, k, v, allowed):
    """q [N, Lq, H, D], k, v [N, Lk, H, D], allowed [Lq, Lk] -> float64 softmax attention over the mask."""
    scores = torch.einsum("nqhd,nkhd->nhqk", q.double(), k.double()) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("nhqk,nkhd->nqhd", scores.softmax(-1), v.double())


def a2v_allowed(w, per_frame, ta):
    allowed = torch.zeros(w.index.shape[0], ta, dtype=torch.bool)
    rows = torch.arange(w.index.shape[0])[:, None].expand_as(w.index)
    allowed[rows[w.valid], w.index[w.valid]] = True
    return allowed.repeat_interleave(per_frame, 0)                       # [Tv * P, Ta]


def v2a_allowed(tv, ta, margin, per_frame):
    owner = timeline.audio_frame_of(tv, ta)
    near = (torch.arange(tv)[None, :] - owner[:, None]).abs() <= margin  # [Ta, Tv]
    return near.repeat_interleave(per_frame, 1)                          # [Ta, Tv * P]


def _qkv(lq, lk, n=2, h=3, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, length, h, d, generator=g) for length in (lq, lk, lk)]


# ------------------------------------------------------------------------------------------------
# A2V: window_attention
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tv,ta", RATIOS)
@pytest.mark.parametrize("margin", [0.0, 0.5, 1.25])
@pytest.mark.parametrize("overwrite", [False, True])
def test_window_attention_equals_dense(tv, ta, margin, overwrite, monkeypatch):
    monkeypatch.setattr(local, "SMALL_GROUP", 0)   # tiny groups take the in-place path too
    per_frame = 6
    q, k, v = _qkv(tv * per_frame, ta)
    w = timeline.a2v_windows(tv, ta, margin)
    index, mask = local.padded_windows(w.index, w.valid)
    want = dense_reference(q, k, v, a2v_allowed(w, per_frame, ta))
    grouped = q.view(2, tv, per_frame, *q.shape[2:])
    scratch = grouped.clone()
    got = local.window_attention(scratch, k[:, index], v[:, index], mask, overwrite=overwrite)
    torch.testing.assert_close(got.reshape(q.shape).double(), want, atol=2e-6, rtol=1e-5)
    assert (got.data_ptr() == scratch.data_ptr()) == overwrite   # in place only when allowed


def test_window_attention_in_place_half_precision(monkeypatch):
    """bf16 queries: float32 math inside, the result written back over q in bf16."""
    monkeypatch.setattr(local, "SMALL_GROUP", 0)
    q, k, v = (t.bfloat16() for t in _qkv(7 * 6, 35))
    w = timeline.a2v_windows(7, 35, 0.5)
    index, mask = local.padded_windows(w.index, w.valid)
    got = local.window_attention(q.view(2, 7, 6, *q.shape[2:]).clone(), k[:, index], v[:, index], mask,
                                 overwrite=True)
    want = dense_reference(q, k, v, a2v_allowed(w, 6, 35))
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.reshape(q.shape).double(), want, atol=2e-2, rtol=2e-2)


def test_window_attention_keeps_queries_that_need_a_gradient(monkeypatch):
    monkeypatch.setattr(local, "SMALL_GROUP", 0)
    q, k, v = _qkv(5 * 4, 31)
    w = timeline.a2v_windows(5, 31, 0.5)
    index, mask = local.padded_windows(w.index, w.valid)
    grouped = q.view(2, 5, 4, *q.shape[2:]).clone().requires_grad_()
    before = grouped.detach().clone()
    out = local.window_attention(grouped, k[:, index], v[:, index], mask, overwrite=True)
    out.sum().backward()
    assert torch.equal(grouped.detach(), before) and grouped.grad is not None


@pytest.mark.parametrize("width,lanes", [(11, 16), (16, 16), (1, 16), (17, 8)])
def test_padded_windows_round_up_and_mask_only_padding(width, lanes):
    index = torch.arange(3 * width).view(3, width) % 7
    valid = torch.ones(3, width, dtype=torch.bool)
    valid[0, -1] = width > 1
    padded, mask = local.padded_windows(index, valid, lanes)
    assert padded.shape[1] % lanes == 0 and padded.shape[1] - width < lanes
    assert torch.equal(padded[:, :width], index)
    if mask is None:
        assert bool(valid.all()) and padded.shape[1] == width
    else:
        assert torch.equal(mask[:, :width], valid) and not mask[:, width:].any()


def test_window_attention_in_place_flops_are_the_padded_windows(monkeypatch):
    """Two dense matmuls per group over the padded window: 4 * Lv * W' * H * D, nothing else."""
    monkeypatch.setattr(local, "SMALL_GROUP", 0)
    tv, ta, per_frame, h, d = 28, 137, 4, 2, 8
    q, k, v = _qkv(tv * per_frame, ta, n=1, h=h, d=d)
    w = timeline.a2v_windows(tv, ta, 0.5)
    index, mask = local.padded_windows(w.index, w.valid)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        local.window_attention(q.view(1, tv, per_frame, h, d), k[:, index], v[:, index], mask, overwrite=True)
    assert index.shape[1] == local.LANES and w.width == 11
    assert counter.get_total_flops() == 4 * tv * per_frame * index.shape[1] * h * d


# ------------------------------------------------------------------------------------------------
# V2A: neighbour_frame_attention
# ------------------------------------------------------------------------------------------------
def _v2a(tv, ta, margin, per_frame=5, n=2):
    q, k, v = _qkv(ta, tv * per_frame, n=n)
    groups, _ = timeline.v2a_groups(tv, ta, margin)
    frames = [t.view(n, tv, per_frame, *t.shape[2:]) for t in (k, v)]
    got = local.neighbour_frame_attention(q[:, groups.index], *frames, margin)   # [N, Tv, Qw, H, D]
    want = dense_reference(q, k, v, v2a_allowed(tv, ta, margin, per_frame))[:, groups.index]
    return got[:, groups.valid], want[:, groups.valid]


@pytest.mark.parametrize("tv,ta", RATIOS)
@pytest.mark.parametrize("margin", [0, 1, 2])
@pytest.mark.parametrize("batched", [True, False])
def test_neighbour_frame_attention_equals_dense(tv, ta, margin, batched, monkeypatch):
    monkeypatch.setattr(local, "SMALL_GROUP", 1 << 30 if batched else 0)
    got, want = _v2a(tv, ta, margin)
    torch.testing.assert_close(got.double(), want, atol=2e-6, rtol=1e-5)


def test_neighbour_frame_attention_handles_far_apart_scores(monkeypatch):
    """The partial softmaxes merge exactly even when one neighbour frame dominates by ~80 nats."""
    monkeypatch.setattr(local, "SMALL_GROUP", 0)
    tv, ta, per_frame = 6, 30, 4
    q, k, v = _qkv(ta, tv * per_frame, n=1, h=1, d=4)
    k.view(1, tv, per_frame, 1, 4)[:, ::2] *= 20.0
    groups, _ = timeline.v2a_groups(tv, ta, 1)
    got = local.neighbour_frame_attention(q[:, groups.index], k.view(1, tv, per_frame, 1, 4),
                                          v.view(1, tv, per_frame, 1, 4), 1)
    want = dense_reference(q, k, v, v2a_allowed(tv, ta, 1, per_frame))[:, groups.index]
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got[:, groups.valid].double(), want[:, groups.valid], atol=1e-5, rtol=1e-5)


class OpCounter(TorchDispatchMode):
    """Counts aten calls by name."""

    def __init__(self):
        super().__init__()
        self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("batched", [True, False])
def test_neighbour_frame_attention_flops_and_matmuls(batched, monkeypatch):
    """Exactly 4 * Tv * (2m+1) * Qw * P * H * D FLOPs (the bench's count: 9.1x fewer than dense at the 5B
    ratio), in 2 matmuls per key frame (2 in all when batched): no per-offset passes."""
    monkeypatch.setattr(local, "SMALL_GROUP", 1 << 30 if batched else 0)
    tv, ta, per_frame, h, d, margin = 28, 137, 3, 2, 4, 1
    q, k, v = _qkv(ta, tv * per_frame, n=1, h=h, d=d)
    groups, _ = timeline.v2a_groups(tv, ta, margin)
    args = (q[:, groups.index], k.view(1, tv, per_frame, h, d), v.view(1, tv, per_frame, h, d), margin)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        local.neighbour_frame_attention(*args)
    rows = local.key_frame_queries(groups.width, margin)
    assert counter.get_total_flops() == 4 * tv * rows * per_frame * h * d
    assert round(ta * tv / (tv * rows), 2) == 9.13   # dense / gathered FLOPs at the 5B ratio
    with torch.no_grad(), OpCounter() as ops:
        local.neighbour_frame_attention(*args)
    assert ops.counts["bmm"] + ops.counts["mm"] == (2 if batched else 2 * tv)


# ------------------------------------------------------------------------------------------------
# per-query / per-key score factors (where the model puts RMSNorm's 1/rms)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [False, True])
def test_window_attention_row_scale_equals_scaled_queries(overwrite, monkeypatch):
    monkeypatch.setattr(local, "SMALL_GROUP", 0)
    tv, ta, per_frame = 7, 35, 6
    q, k, v = _qkv(tv * per_frame, ta)
    scale = torch.rand(2, tv * per_frame) + 0.5
    w = timeline.a2v_windows(tv, ta, 0.5)
    index, mask = local.padded_windows(w.index, w.valid)
    want = dense_reference(q * scale[..., None, None], k, v, a2v_allowed(w, per_frame, ta))
    got = local.window_attention(q.view(2, tv, per_frame, *q.shape[2:]).clone(), k[:, index], v[:, index], mask,
                                 overwrite=overwrite, row_scale=scale.view(2, tv, per_frame))
    torch.testing.assert_close(got.reshape(q.shape).double(), want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("batched", [True, False])
def test_key_frame_attention_key_scale_equals_scaled_keys(batched, monkeypatch):
    monkeypatch.setattr(local, "SMALL_GROUP", 1 << 30 if batched else 0)
    tv, ta, per_frame, margin = 7, 35, 5, 1
    q, k, v = _qkv(ta, tv * per_frame)
    scale = torch.rand(2, tv * per_frame) + 0.5
    groups, _ = timeline.v2a_groups(tv, ta, margin)
    windows = local.query_windows(q[:, groups.index] * q.shape[-1] ** -0.5, margin)
    frames = [t.view(2, tv, per_frame, *t.shape[2:]) for t in (k, v)]
    got = local.key_frame_attention(windows, *frames, margin, key_scale=scale.view(2, tv, per_frame))
    want = dense_reference(q, k * scale[..., None, None], v, v2a_allowed(tv, ta, margin, per_frame))
    torch.testing.assert_close(got[:, groups.valid].double(), want[:, groups.index][:, groups.valid],
                               atol=2e-6, rtol=1e-5)
