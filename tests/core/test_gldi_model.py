"""GLDI in the model (model/interaction.py) computes today's formula — LayerNorm, projections, RMSNorm,
absolute RoPE, dense masked attention — while touching the video tokens with one LayerNorm and one fused
matmul, no RoPE, no host sync, and a plan built once per layout. Speed: `python -m harmony_core bench gldi`."""
from __future__ import annotations

import collections
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from harmony_core import timeline
from harmony_core.attention import local, resolve
from harmony_core.config import preset
from harmony_core.model.interaction import AlignmentPlan, InteractionBlock
from harmony_core.model.video import VideoGrid
from harmony_core.passes import PassFlags

TV, TA, TR = 7, 35, 5
GRID = VideoGrid(TV, 2, 3)


def dense(q, k, v, allowed):
    scores = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double()) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v.double()).to(q.dtype)


def masks(plan):
    """Dense [Lv, Ta] (A2V) and [Ta, Lv] (V2A) masks of the plan's windows (all True for "global")."""
    p = plan.grid.per_frame
    if not plan.local:
        return torch.ones(GRID.tokens, TA, dtype=torch.bool), torch.ones(TA, GRID.tokens, dtype=torch.bool)
    a2v = torch.zeros(TV, TA, dtype=torch.bool)
    rows = torch.arange(TV)[:, None].expand_as(plan.a2v.index)
    a2v[rows[plan.a2v.valid], plan.a2v.index[plan.a2v.valid]] = True
    owner = timeline.audio_frame_of(TV, TA)
    v2a = (torch.arange(TV)[None, :] - owner[:, None]).abs() <= plan.v2a_margin
    return a2v.repeat_interleave(p, 0), v2a.repeat_interleave(p, 1)


def todays_formula(block, video, audio, ref, plan, flags):
    """The interaction as written before issue #17: each module normalises and projects the video itself,
    RMSNorm and absolute per-token RoPE on every token, dense masked attention."""
    a2v, v2a, style, th = block.a2v, block.v2a, block.global_style, block.theta
    a2v_mask, v2a_mask = masks(plan)
    video_pos = plan.video_pos_a2v.repeat_interleave(GRID.per_frame)
    out_v, out_a = video, audio
    if flags.a2v:
        q = a2v.project_q(a2v.norm_x(video), a2v.rope(video_pos, th))
        k, v = a2v.project_kv(a2v.norm_src(audio), a2v.rope(plan.audio_pos_a2v, th))
        out_v = video + a2v.out(dense(q, k, v, a2v_mask)).float()
    if flags.v2a:
        q = v2a.project_q(v2a.norm_x(audio), v2a.rope(plan.audio_pos_v2a, th))
        k, v = v2a.project_kv(v2a.norm_src(video), v2a.rope(plan.video_pos_v2a.repeat_interleave(GRID.per_frame), th))
        out_a = audio + v2a.out(dense(q, k, v, v2a_mask)).float()
    if flags.v2a and ref is not None and style is not None:
        k, v = style.project_kv(style.norm_src(video))
        ref = ref + style.out(dense(style.project_q(style.norm_x(ref)), k, v, torch.ones(TR, GRID.tokens,
                                                                                      dtype=torch.bool))).float()
    return out_v, out_a, ref


def _block(kind="gldi", seed=0):
    cfg = preset("tiny").replace(**{"interaction.kind": kind})
    torch.manual_seed(seed)
    block = InteractionBlock(cfg, resolve("sdpa"))
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)
    plan = AlignmentPlan.build(cfg, GRID, TA, torch.device("cpu"))
    g = torch.Generator().manual_seed(seed + 1)
    video = torch.randn(2, GRID.tokens, cfg.video.dim, generator=g)
    audio = torch.randn(2, TA, cfg.audio.dim, generator=g)
    ref = torch.randn(2, TR, cfg.audio.dim, generator=g)
    return block, plan, video, audio, ref


FLAGS = [PassFlags(), PassFlags(a2v=False), PassFlags(v2a=False)]


@pytest.mark.parametrize("kind", ["gldi", "global"])
@pytest.mark.parametrize("with_ref", [False, True])
@pytest.mark.parametrize("flags", FLAGS, ids=["both", "no_a2v", "no_v2a"])
@pytest.mark.parametrize("in_place", [False, True])
def test_block_equals_todays_formula(kind, with_ref, flags, in_place, monkeypatch):
    if in_place:   # the CPU in-place A2V kernel of large frames, on these small ones
        monkeypatch.setattr(local, "SMALL_GROUP", 0)
    block, plan, video, audio, ref = _block(kind)
    ref = ref if with_ref else None
    with torch.no_grad():
        got = block(video, audio, ref, plan, flags)
        want = todays_formula(block, video, audio, ref, plan, flags)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-5)


def test_negative_control_a_shifted_rope_position_is_seen():
    """The comparison above can fail: move the audio half a latent on the A2V timeline and it does."""
    block, plan, video, audio, _ = _block()
    with torch.no_grad():
        want = todays_formula(block, video, audio, None, plan, PassFlags())[0]
        shifted = AlignmentPlan(**{**plan.__dict__, "tables": {}, "audio_pos_a2v": plan.audio_pos_a2v + 0.5})
        got = block(video, audio, None, shifted)[0]
    assert (got - want).abs().max() > 1e-3


def test_gradients_equal_todays_formula():
    """Training runs the same algebra through autograd (no in-place kernel): same gradients."""
    block, plan, video, audio, ref = _block()
    grads = []
    for fn in (block, lambda *a: todays_formula(block, *a, PassFlags())):
        block.zero_grad()
        v, a = video.clone().requires_grad_(), audio.clone().requires_grad_()
        out_v, out_a, out_r = fn(v, a, ref, plan)
        (out_v.square().mean() + out_a.square().mean() + out_r.square().mean()).backward()
        grads.append([v.grad, a.grad] + [p.grad.clone() for p in block.parameters()])
    for g, w in zip(*grads):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4)


def test_bfloat16_weights_stay_close():
    block, plan, video, audio, ref = _block()
    with torch.no_grad():
        want = block(video, audio, ref, plan)
        got = block.to(torch.bfloat16)(video, audio, ref.bfloat16(), plan)
    for g, w in zip(got, want):
        scale = (w - (video if w.shape == video.shape else audio if w.shape == audio.shape else ref)).abs().max()
        assert (g.float() - w).abs().max() < 0.05 * scale


class OpCounter(TorchDispatchMode):
    """aten calls by name, with the first input's shape."""

    def __init__(self):
        super().__init__()
        self.calls = collections.Counter()
        self.shapes = collections.defaultdict(list)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        self.calls[name] += 1
        first = args[1] if name == "addmm" else args[0] if args else None   # addmm: (bias, mat1, mat2)
        if isinstance(first, torch.Tensor):
            self.shapes[name].append(tuple(first.shape))
        return func(*args, **(kwargs or {}))


def test_video_tokens_get_one_norm_one_projection_no_rope_no_sync():
    block, plan, video, audio, ref = _block()
    lv = 2 * GRID.tokens
    with torch.no_grad():
        block(video, audio, ref, plan)        # first call: the plan's RoPE tables
        with OpCounter() as ops:
            block(video, audio, ref, plan)
    assert [s for s in ops.shapes["native_layer_norm"] if s[1] == GRID.tokens] == [tuple(video.shape)]
    video_matmuls = [s for n in ("addmm", "mm") for s in ops.shapes[n] if s[0] == lv]
    assert len(video_matmuls) == 2   # the fused projection (A2V q, V2A k/v, style k/v) and A2V's output
    assert not ops.calls["sin"] and not ops.calls["cos"]   # RoPE tables come from the plan
    assert not ops.calls["_local_scalar_dense"] and not ops.calls["is_nonzero"] and not ops.calls["item"]


def test_plan_is_built_once_per_layout():
    cfg = preset("tiny")
    cpu = torch.device("cpu")
    a = AlignmentPlan.build(cfg, GRID, TA, cpu)
    assert AlignmentPlan.build(cfg, GRID, TA, cpu) is a
    assert AlignmentPlan.build(cfg, GRID, TA + 1, cpu) is not a
    assert a.a2v_index.shape[1] % 16 == 0 and a.a2v_mask is not None
