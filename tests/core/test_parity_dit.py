"""The video tower reproduces Wan2.2's WanModel (ti2v) on the parity fixtures, loaded through our loader."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from harmony_core.config import AudioConfig
from harmony_core.model.load import load_model

TINY_AUDIO = AudioConfig(dim=32, ffn_dim=64, num_heads=2, text_dim=32, text_len=16, freq_dim=32,
                         transcript_dim=16, transcript_conv_layers=1)
CASES = {"wan22_dit": ["t2v", "i2v", "pad", "batch2"], "wan22_dit_hd32": ["t2v", "i2v"]}


def per_frame_timesteps(t_tokens: torch.Tensor, frames: int, per_frame: int) -> torch.Tensor:
    """Reference per-token t [seq_len] -> [F] (tokens of one latent frame share their t in TI2V)."""
    t = t_tokens[: frames * per_frame].view(frames, per_frame)
    assert torch.equal(t, t[:, :1].expand_as(t)), "fixture has per-token t varying inside a frame"
    return t[:, 0]


@pytest.mark.parity
@pytest.mark.parametrize("fixture,case", [(f, c) for f, cs in CASES.items() for c in cs])
def test_dit_parity(parity_dir, fixture, case):
    model, report = load_model(parity_dir / fixture / "weights.safetensors", audio=TINY_AUDIO)
    assert report.format == "wan2.2" and report.ok and report.initialised == ("audio", "interaction")
    c = load_file(parity_dir / fixture / f"case_{case}.safetensors")
    batch = c["t"].shape[0]
    xs = torch.stack([c[f"x.{i}"] for i in range(batch)])                     # [B, 48, F, H, W]
    frames, per_frame = xs.shape[2], (xs.shape[3] // 2) * (xs.shape[4] // 2)
    t = torch.stack([per_frame_timesteps(c["t"][i], frames, per_frame) for i in range(batch)])
    ctx_len = max(c[f"context.{i}"].shape[0] for i in range(batch))
    ctx = torch.zeros(batch, ctx_len, c["context.0"].shape[1])                # zero rows = Wan's padding
    for i in range(batch):
        ctx[i, : c[f"context.{i}"].shape[0]] = c[f"context.{i}"]
    with torch.no_grad():
        out = model.video(xs, t, ctx)
    for i in range(batch):
        torch.testing.assert_close(out[i], c[f"out.{i}"], atol=1e-4, rtol=1e-4)


@pytest.mark.parity
def test_dit_parity_intermediates(parity_dir):
    """Patch embedding and time embedding match the reference's stored intermediates (debug aid)."""
    model, _ = load_model(parity_dir / "wan22_dit" / "weights.safetensors", audio=TINY_AUDIO)
    c = load_file(parity_dir / "wan22_dit" / "case_i2v.safetensors")
    with torch.no_grad():
        tokens, grid = model.video.embed(c["x.0"][None])
        e, e0 = model.video.embed_time(per_frame_timesteps(c["t"][0], 3, 24)[None])
    torch.testing.assert_close(tokens[0], c["inter.tokens_in"][0, :72], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e0[0].repeat_interleave(24, 0), c["inter.e0"][0, :72], atol=1e-4, rtol=1e-4)


@pytest.mark.parity
def test_dit_parity_catches_wrong_weights(parity_dir):
    """Negative control: a perturbed parameter breaks parity (the test can fail)."""
    model, _ = load_model(parity_dir / "wan22_dit" / "weights.safetensors", audio=TINY_AUDIO)
    c = load_file(parity_dir / "wan22_dit" / "case_t2v.safetensors")
    with torch.no_grad():
        model.video.blocks[1].cross_attn.k.bias.add_(0.05)
        out = model.video(c["x.0"][None], per_frame_timesteps(c["t"][0], 3, 24)[None], c["context.0"][None])
    assert (out[0] - c["out.0"]).abs().max() > 1e-3
