"""Gathered local attention (GLDI) equals a dense masked reference; windows follow the timeline."""
from __future__ import annotations

import math

import pytest
import torch

from harmony_core import timeline
from harmony_core.config import preset
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.interaction import A2V, V2A, AlignmentPlan
from harmony_core.model.video import VideoGrid

RATIOS = [(5, 31), (7, 35), (3, 50), (8, 8), (6, 4), (28, 137), (1, 9), (4, 13)]


def dense_attention(q, k, v, allowed):
    """Reference: full attention with a dense [Lq, Lk] boolean mask (tests only)."""
    scores = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double()) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed[None, None], float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v.double()).float()


def brute_force_a2v_mask(tv, ta, margin, per_frame):
    allowed = torch.zeros(tv * per_frame, ta, dtype=torch.bool)
    for i in range(tv):
        for j in range(ta):
            lo, hi = j * tv / ta, (j + 1) * tv / ta          # audio j's span on the video timeline
            if lo < i + 1 + margin - 1e-12 and hi > i - margin + 1e-12:
                allowed[i * per_frame:(i + 1) * per_frame, j] = True
    return allowed


def v2a_mask(tv, ta, margin, per_frame):
    owner = timeline.audio_frame_of(tv, ta)
    allowed = torch.zeros(ta, tv * per_frame, dtype=torch.bool)
    for j in range(ta):
        f = int(owner[j])
        lo, hi = max(f - margin, 0), min(f + margin + 1, tv)
        allowed[j, lo * per_frame: hi * per_frame] = True
    return allowed


def _setup(tv, ta, a2v_margin=0.5, v2a_margin=1, rope_align=True):
    cfg = preset("tiny").replace(**{"interaction.a2v_margin": a2v_margin, "interaction.v2a_margin": v2a_margin,
                                    "interaction.rope_align": rope_align})
    grid = VideoGrid(tv, 2, 3)
    plan = AlignmentPlan.build(cfg, grid, ta, torch.device("cpu"))
    return cfg, grid, plan


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)
    return module


@pytest.mark.parametrize("tv,ta", RATIOS)
@pytest.mark.parametrize("margin", [0.0, 0.5, 1.25])
def test_a2v_windows_match_brute_force(tv, ta, margin):
    w = timeline.a2v_windows(tv, ta, margin)
    got = torch.zeros(tv, ta, dtype=torch.bool)
    for i in range(tv):
        got[i, w.index[i][w.valid[i]]] = True
    assert torch.equal(got, brute_force_a2v_mask(tv, ta, margin, 1))
    assert w.valid.any(dim=1).all(), "every video frame must see at least one audio latent"


@pytest.mark.parametrize("tv,ta", RATIOS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_a2v_gathered_equals_dense(tv, ta, margin):
    cfg, grid, plan = _setup(tv, ta, a2v_margin=margin)
    a2v = _randomise(A2V(cfg.video.dim, cfg.audio.dim, cfg.video.num_heads, _backend(), 1e-6))
    video, audio = torch.randn(2, grid.tokens, cfg.video.dim), torch.randn(2, ta, cfg.audio.dim)
    got = a2v(video, audio, plan, 10000.0)
    per_token = plan.video_pos_a2v.repeat_interleave(grid.per_frame)
    q = a2v.project_q(a2v.norm_x(video), a2v.rope(per_token, 10000.0))
    k, v = a2v.project_kv(a2v.norm_src(audio), a2v.rope(plan.audio_pos_a2v, 10000.0))
    want = a2v.out(dense_attention(q, k, v, brute_force_a2v_mask(tv, ta, margin, grid.per_frame)))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tv,ta", RATIOS)
@pytest.mark.parametrize("margin", [0, 1, 2])
def test_v2a_gathered_equals_dense(tv, ta, margin):
    cfg, grid, plan = _setup(tv, ta, v2a_margin=margin)
    v2a = _randomise(V2A(cfg.audio.dim, cfg.video.dim, cfg.audio.num_heads, _backend(), 1e-6))
    audio, video = torch.randn(2, ta, cfg.audio.dim), torch.randn(2, grid.tokens, cfg.video.dim)
    got = v2a(audio, video, plan, 10000.0)
    q = v2a.project_q(v2a.norm_x(audio), v2a.rope(plan.audio_pos_v2a, 10000.0))
    per_token = plan.video_pos_v2a.repeat_interleave(grid.per_frame)
    k, v = v2a.project_kv(v2a.norm_src(video), v2a.rope(per_token, 10000.0))
    want = v2a.out(dense_attention(q, k, v, v2a_mask(tv, ta, margin, grid.per_frame)))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_rope_alignment_changes_positions_only_when_on():
    _, _, on = _setup(5, 31, rope_align=True)
    _, _, off = _setup(5, 31, rope_align=False)
    assert torch.allclose(on.audio_pos_a2v[-1], torch.tensor(30 * 5 / 31, dtype=torch.float64))
    assert torch.equal(off.audio_pos_a2v, torch.arange(31, dtype=torch.float64))


def test_interaction_is_zero_initialised_and_local():
    """Fresh interaction is a no-op; once trained, audio far from a frame does not reach it."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    model = HarmonyModel(cfg)
    block = model.interaction["0"]
    video, audio = torch.randn(1, 5 * 6, cfg.video.dim), torch.randn(1, 31, cfg.audio.dim)
    _, _, plan = _setup(5, 31)
    v_out, a_out, _ = block(video, audio, None, plan)
    assert torch.equal(v_out, video) and torch.equal(a_out, audio)
    _randomise(block)
    base, _, _ = block(video, audio, None, plan)
    poked = audio.clone()
    poked[:, -3:] += 5.0                       # change only the last audio latents
    moved, _, _ = block(video, poked, None, plan)
    frame_delta = (moved - base).abs().view(5, 6, -1).amax(dim=(1, 2))
    assert frame_delta[0] == 0 and frame_delta[-1] > 0


def _backend():
    from harmony_core.attention import resolve
    return resolve("sdpa")
