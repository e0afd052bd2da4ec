"""`bench gldi`: its analytic FLOP counts equal what torch counts on the real modules, its scaled config keeps
the 5B balance, and `--json` ends with one JSON object carrying the issue's keys. No timing is asserted."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from harmony_core.attention import local, resolve
from harmony_core.bench import gldi, gldi_layer, run
from harmony_core.cli import build_parser
from harmony_core.config import preset
from harmony_core.model.audio import MMDiTBlock
from harmony_core.model.embeddings import Rope, rope_angles_1d, rope_angles_3d
from harmony_core.model.interaction import AlignmentPlan, InteractionBlock
from harmony_core.model.video import VideoGrid, WanBlock

SUMMARY_KEYS = {"a2v_speedup", "v2a_speedup", "a2v_flop_ratio", "v2a_flop_ratio", "overhead_fraction",
                "flop_share", "global_overhead_fraction"}


def _small():
    """A 2-layer-wide config and a layout with the 5B time ratio (28 frames, 137 audio latents)."""
    cfg = preset("tiny").replace(**{"interaction.layers": [0]})
    lay = gldi_layer.Layout(frames=28, per_frame=6, audio=137, ref=9, video_text=cfg.video.text_len,
                            audio_text=cfg.audio.text_len)
    return cfg, lay


def _counted(fn):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_tower_formulas_count_what_the_blocks_run():
    cfg, lay = _small()
    ref = resolve("reference")   # einsum attention: torch counts it (CPU SDPA it does not)
    v, a = cfg.video, cfg.audio
    grid = VideoGrid(lay.frames, 2, 3)
    video = torch.randn(1, grid.tokens, v.dim)
    rope = Rope(rope_angles_3d(grid.frames, grid.height, grid.width, v.head_dim))
    got = _counted(lambda: WanBlock(v, ref)(video, torch.zeros(1, lay.frames, 6, v.dim), grid, rope,
                                            torch.randn(1, lay.video_text, v.dim)))
    assert got == gldi_layer.video_block_flops(v, lay)
    n = lay.ref + lay.audio
    got = _counted(lambda: MMDiTBlock(a, ref)(torch.randn(1, n, a.dim), torch.randn(1, lay.audio_text, a.dim),
                                              torch.zeros(1, n, 6, a.dim), torch.zeros(1, 1, 6, a.dim),
                                              Rope(rope_angles_1d(torch.arange(n), a.head_dim))))
    assert got == gldi_layer.audio_block_flops(a, lay)


@pytest.mark.parametrize("kind", ["gldi", "global"])
@pytest.mark.parametrize("with_ref", [False, True])
def test_interaction_formula_counts_what_the_block_runs(kind, with_ref, monkeypatch):
    monkeypatch.setattr(local, "SMALL_GROUP", 0)   # the CPU kernels of the 5B sizes (matmuls torch counts)
    cfg, lay = _small()
    cfg = cfg.replace(**{"interaction.kind": kind})
    lay = gldi_layer.Layout(**{**lay.__dict__, "ref": lay.ref if with_ref else 0})
    grid = VideoGrid(lay.frames, 2, 3)
    block = InteractionBlock(cfg, resolve("reference"))
    plan = AlignmentPlan.build(cfg, grid, lay.audio, torch.device("cpu"))
    video, audio = torch.randn(1, grid.tokens, cfg.video.dim), torch.randn(1, lay.audio, cfg.audio.dim)
    ref = torch.randn(1, lay.ref, cfg.audio.dim) if with_ref else None
    assert _counted(lambda: block(video, audio, ref, plan)) == sum(gldi_layer.interaction_flops(cfg, lay).values())


def test_scaled_config_keeps_the_5b_balance():
    cfg, lay = gldi_layer.scaled_config()
    full = preset("harmony-5b")
    assert cfg.video.head_dim == full.video.head_dim and cfg.audio.head_dim == full.audio.head_dim
    assert lay.video_tokens / cfg.video.dim == gldi_layer.FULL.video_tokens / full.video.dim
    assert (lay.frames, lay.audio) == (gldi_layer.FULL.frames, gldi_layer.FULL.audio)
    shares = gldi_layer.full_size_shares()
    assert 0.09 < shares["flop_share_full"] < 0.10 and 0.12 < shares["flop_share_ref_full"] < 0.14
    assert abs(gldi_layer.flop_share(cfg, lay) - shares["flop_share_full"]) < 0.01


def test_json_is_the_last_line(monkeypatch, capsys):
    summary = dict.fromkeys(SUMMARY_KEYS, 1.0)
    monkeypatch.setattr(gldi, "report", lambda quick=False: ({"kernels": [{"a": 1}]}, summary))
    run.run("gldi", as_json=True)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert SUMMARY_KEYS <= set(json.loads(last))


def test_cli_accepts_bench_gldi_json():
    args = build_parser().parse_args(["bench", "gldi", "--json"])
    assert (args.which, args.json) == ("gldi", True)
