"""Cross-Task Synergy objective: per-task inputs, loss masks, weights, timesteps, reference crops."""
from __future__ import annotations

import pytest
import torch

from harmony_core.sampling import shift_sigma
from harmony_core.train.losses import (AUDIO_DRIVEN, JOINT, VIDEO_DRIVEN, LossConfig, Rows, draw_rows,
                                       flow_loss, make_inputs, reference_crops, sample_sigmas)


def _latents(b: int = 3):
    g = torch.Generator().manual_seed(1)
    video = torch.randn(b, 4, 3, 2, 2, generator=g)
    audio = torch.randn(b, 5, 7, generator=g)
    return video, audio


def _rows(tasks: list[int], sigmas: list[float], weights: list[float] | None = None) -> Rows:
    n = len(tasks)
    return Rows(torch.arange(n), torch.tensor(tasks), torch.tensor(sigmas),
                torch.tensor(weights or [1.0] * n))


def test_sigmas_are_shifted_draws_in_range():
    g = torch.Generator().manual_seed(0)
    s = sample_sigmas(20000, LossConfig(), g)
    assert s.min() >= 0 and s.max() <= 1
    assert abs(float(s.median()) - shift_sigma(0.5, 5.0)) < 0.01      # uniform base, shift 5
    s2 = sample_sigmas(20000, LossConfig(sigma="logit_normal"), g)
    assert abs(float(s2.median()) - shift_sigma(0.5, 5.0)) < 0.01     # logit-normal(0, 1) has median 0.5


def test_driven_tasks_feed_clean_latents_at_t0_and_joint_shares_sigma():
    video, audio = _latents()
    rows = _rows([JOINT, AUDIO_DRIVEN, VIDEO_DRIVEN], [0.7, 0.4, 0.9])
    nv, na = torch.randn_like(video), torch.randn_like(audio)
    x = make_inputs(video, audio, nv, na, rows)
    # joint: both noised at one shared sigma
    assert torch.equal(x.t_video[0], torch.full((3,), 0.7))
    assert torch.equal(x.t_audio[0], torch.full((7,), 0.7))
    torch.testing.assert_close(x.video[0], 0.3 * video[0] + 0.7 * nv[0])
    torch.testing.assert_close(x.audio[0], 0.3 * audio[0] + 0.7 * na[0])
    # audio-driven: audio exactly clean at t = 0, video noised
    assert torch.equal(x.audio[1], audio[1]) and bool((x.t_audio[1] == 0).all())
    assert bool((x.t_video[1] == 0.4).all())
    # video-driven: video exactly clean at t = 0, audio noised
    assert torch.equal(x.video[2], video[2]) and bool((x.t_video[2] == 0).all())
    assert bool((x.t_audio[2] == 0.9).all())
    torch.testing.assert_close(x.target_video, nv - video)             # velocity = noise - x0
    assert x.weight_video.tolist() == [1.0, 1.0, 0.0] and x.weight_audio.tolist() == [1.0, 0.0, 1.0]


def test_driven_tasks_are_given_their_condition_latents_when_there_are_some():
    video, audio = _latents()
    cond_v, cond_a = torch.randn_like(video), torch.randn_like(audio)
    rows = _rows([JOINT, AUDIO_DRIVEN, VIDEO_DRIVEN], [0.7, 0.4, 0.9])
    nv, na = torch.randn_like(video), torch.randn_like(audio)
    plain = make_inputs(video, audio, nv, na, rows)
    x = make_inputs(video, audio, nv, na, rows, cond_v, cond_a)
    assert torch.equal(x.audio[1], cond_a[1]) and torch.equal(x.video[2], cond_v[2])   # the given modality
    for name in ("video", "audio"):          # everything else as without conditions: noised x0, x0 targets
        got, want = getattr(x, name), getattr(plain, name)
        keep = [0, 2] if name == "audio" else [0, 1]
        assert torch.equal(got[keep], want[keep])
        assert torch.equal(getattr(x, "target_" + name), getattr(plain, "target_" + name))
    assert torch.equal(x.clean_video, video)


def test_driven_tasks_supervise_only_the_generated_modality():
    video, audio = _latents()
    x = make_inputs(video, audio, torch.randn_like(video), torch.randn_like(audio),
                    _rows([JOINT, AUDIO_DRIVEN, VIDEO_DRIVEN], [0.5, 0.5, 0.5]))
    pred_v = torch.randn_like(video, requires_grad=True)
    pred_a = torch.randn_like(audio, requires_grad=True)
    total, stats = flow_loss(pred_v, pred_a, x, batch=3)
    total.backward()
    gv, ga = pred_v.grad.flatten(1).abs().sum(1), pred_a.grad.flatten(1).abs().sum(1)
    assert gv[0] > 0 and ga[0] > 0                  # joint: both
    assert gv[1] > 0 and ga[1] == 0                 # audio-driven: video only
    assert gv[2] == 0 and ga[2] > 0                 # video-driven: audio only
    assert set(stats) == {"joint_video", "joint_audio", "audio_driven", "video_driven"}


def test_all_schedule_weights_are_the_paper_lambdas():
    g = torch.Generator().manual_seed(3)
    rows = draw_rows(2, LossConfig(schedule="all"), g)
    assert rows.item.tolist() == [0, 1, 0, 1, 0, 1]
    assert rows.task.tolist() == [JOINT, JOINT, AUDIO_DRIVEN, AUDIO_DRIVEN, VIDEO_DRIVEN, VIDEO_DRIVEN]
    assert rows.weight.tolist() == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.3, 0.3])
    video, audio = _latents(2)
    nv, na = torch.randn(6, *video.shape[1:]), torch.randn(6, *audio.shape[1:])
    x = make_inputs(video, audio, nv, na, rows)
    pv, pa = torch.randn_like(nv), torch.randn_like(na)
    total, _ = flow_loss(pv, pa, x, batch=2)
    mse_v = (pv - x.target_video).pow(2).flatten(1).mean(1)
    mse_a = (pa - x.target_audio).pow(2).flatten(1).mean(1)
    expected = ((mse_v[:2] + mse_a[:2]).sum() + 0.1 * mse_v[2:4].sum() + 0.3 * mse_a[4:].sum()) / 2
    torch.testing.assert_close(total, expected)


def test_sample_schedule_draws_tasks_in_proportion_and_joint_only_keeps_joint():
    g = torch.Generator().manual_seed(4)
    rows = draw_rows(14000, LossConfig(), g)
    share = torch.bincount(rows.task, minlength=3).float() / 14000
    torch.testing.assert_close(share, torch.tensor([1.0, 0.1, 0.3]) / 1.4, atol=0.015, rtol=0)
    assert rows.weight.unique().tolist() == pytest.approx([1.4])     # expectation = weighted sum
    only = draw_rows(50, LossConfig(tasks="joint_only"), g)
    assert only.task.unique().tolist() == [JOINT]
    assert draw_rows(3, LossConfig(tasks="joint_only", schedule="all"), g).task.tolist() == [JOINT] * 3


def test_reference_crops_come_from_the_items_own_audio():
    _, audio = _latents(3)
    rows = _rows([JOINT, AUDIO_DRIVEN, JOINT], [0.5] * 3)
    ref = reference_crops(audio, rows, 4, torch.Generator().manual_seed(0))
    assert ref.shape == (3, 5, 4)
    for r in range(3):
        starts = [s for s in range(7 - 4 + 1) if torch.equal(audio[r, :, s:s + 4], ref[r])]
        assert starts, f"row {r} is not a crop of its own item's audio"
    with pytest.raises(ValueError, match="reference length"):
        reference_crops(audio, rows, 8, torch.Generator())


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="tasks"):
        LossConfig(tasks="everything")
    with pytest.raises(ValueError, match="weights"):
        LossConfig(weights=(0.0, 0.1, 0.3))
    with pytest.raises(ValueError, match="text_dropout"):
        LossConfig(text_dropout=1.0)


def test_pixel_weighting_measures_the_video_loss_in_pixel_space():
    from harmony_core.codecs.demo import DemoVideoCodec, DemoVideoConfig
    from harmony_core.train.losses import pixel_channel_weights
    codec = DemoVideoCodec(DemoVideoConfig(latent_channels=6))
    w = pixel_channel_weights(codec, 6)                 # luma DC, 2 luma gradients, C1 DC, C2 DC, temporal DC
    assert float(w.mean()) == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(64.0, rel=1e-4)  # DC latents are scaled by 8, first-order ones by 1
    torch.testing.assert_close(w[[0, 3, 4]], w[[0, 0, 0]])
    # the weighted latent loss equals the pixel-space squared error (up to the constant normalisation)
    g = torch.Generator().manual_seed(0)
    pred, target = (0.1 * torch.randn(1, 6, 2, 1, 1, generator=g) for _ in range(2))   # small: no clamping
    pred[:, :, 0] = target[:, :, 0] = 0                 # latent frame 0 (a held frame) contributes nothing
    rows = Rows(torch.tensor([0]), torch.tensor([AUDIO_DRIVEN]), torch.tensor([0.5]), torch.tensor([1.0]))
    x = make_inputs(torch.zeros(1, 6, 2, 1, 1), torch.zeros(1, 2, 3), target, torch.zeros(1, 2, 3), rows)
    total, _ = flow_loss(pred, torch.zeros(1, 2, 3), x, batch=1, video_weights=w)
    pixels = (codec.decode(pred) - codec.decode(target)).pow(2).sum()
    impulses = torch.zeros(6, 6, 2, 1, 1)
    impulses[:, :, 1, 0, 0] = 0.1 * torch.eye(6)
    unit = codec.decode(impulses)[:, :, 1:].pow(2).flatten(1).sum(1) / 0.01    # pixel energy per unit latent
    torch.testing.assert_close(total * 12 * unit.mean(), pixels, rtol=1e-4, atol=1e-7)


def _one_row(video: torch.Tensor, sigma: float = 0.5):
    """One audio-driven row (video supervised only) over `video` [1, C, T, h, w] clean latents."""
    rows = _rows([AUDIO_DRIVEN], [sigma])
    return make_inputs(video, torch.zeros(1, 2, 3), torch.zeros_like(video), torch.zeros(1, 2, 3), rows)


def test_motion_weights_mark_where_the_clean_latents_change():
    from harmony_core.train.losses import motion_weights
    still = torch.randn(1, 4, 5, 2, 3)
    still[:, :, 1:] = still[:, :, :1]                                   # the same latent frame 5 times
    assert torch.equal(motion_weights(still, 2.0, 20.0), torch.ones(1, 1, 5, 2, 3))
    moving = still.clone()
    moving[0, :, 3:, 1, 2] += 1.0                                       # one position changes at frame 3
    w = motion_weights(moving, 2.0, 20.0)
    # d is 1 at (3, 1, 2) and 0 elsewhere over 5 * 2 * 3 = 30 positions: ratio 30, capped at 20
    expected = torch.ones(1, 1, 5, 2, 3)
    expected[0, 0, 3, 1, 2] = 1 + 2.0 * 20.0
    torch.testing.assert_close(w, expected)
    torch.testing.assert_close(motion_weights(moving, 2.0, 100.0)[0, 0, 3, 1, 2], torch.tensor(61.0))


def test_temporal_weight_charges_only_errors_that_change_between_frames():
    video = torch.zeros(1, 2, 4, 1, 1)
    x = _one_row(video)
    config = LossConfig(temporal_weight=3.0)
    static = torch.full_like(video, 0.5)                                 # error 0.5 in every frame
    torch.testing.assert_close(flow_loss(static, torch.zeros(1, 2, 3), x, 1, config=config)[0],
                               flow_loss(static, torch.zeros(1, 2, 3), x, 1)[0])
    alternating = 0.5 * torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, 1, 4, 1, 1).expand_as(video)
    # mse 0.25; each of the 3 steps changes by 1.0: + 3 * 1.0
    total, stats = flow_loss(alternating, torch.zeros(1, 2, 3), x, 1, config=config)
    torch.testing.assert_close(total, torch.tensor(0.25 + 3.0))
    assert stats["audio_driven"] == pytest.approx(0.25)                 # the logged figure stays the mse


def test_sigma_floor_scales_rows_below_it():
    video = torch.zeros(1, 2, 3, 1, 1)
    pred = torch.ones_like(video)
    config = LossConfig(sigma_floor=0.2)
    low = flow_loss(pred, torch.zeros(1, 2, 3), _one_row(video, sigma=0.05), 1, config=config)[0]
    high = flow_loss(pred, torch.zeros(1, 2, 3), _one_row(video, sigma=0.5), 1, config=config)[0]
    torch.testing.assert_close(low, torch.tensor((0.05 / 0.2) ** 2))
    torch.testing.assert_close(high, torch.tensor(1.0))


def test_loss_shaping_settings_are_checked_and_reach_the_trainer():
    import argparse

    from harmony_core.train.cli import add_train_arguments, train_config
    for bad in ({"sigma_floor": 1.0}, {"motion_weight": -1.0}, {"temporal_weight": -0.5}, {"motion_cap": 0.0}):
        with pytest.raises(ValueError, match="sigma_floor"):
            LossConfig(**bad)
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    args = p.parse_args(["--out", "x", "--sigma-floor", "0.15", "--motion-weight", "1", "--temporal-weight", "2"])
    loss = train_config(args).loss
    assert (loss.sigma_floor, loss.motion_weight, loss.temporal_weight) == (0.15, 1.0, 2.0)
