"""Trainer on a tiny config with the demo codecs: losses fall, driven tasks see clean latents, exact
resume, reference audio conditions but is never predicted, export loads, CLI runs."""
from __future__ import annotations

import argparse
import copy
import math
from dataclasses import replace

import pytest
import torch

from harmony_core.model.load import load_model
from harmony_core.train.checkpoint import load_train_state, save_train_state
from harmony_core.train.cli import add_train_arguments, run_train
from harmony_core.train.data import DataConfig
from harmony_core.train.losses import LossConfig
from harmony_core.train.synthetic import SceneSpec
from harmony_core.train.trainer import LOG_FILE, MODEL_FILE, STATE_FILE, Trainer, TrainConfig

TINY_DEMO = (
    ("video.in_dim", 16), ("video.out_dim", 16), ("audio.in_dim", 64), ("audio.out_dim", 64),
    ("codecs", {"video": {"name": "demo_video", "latent_channels": 16},
                "audio": {"name": "demo_audio", "n_mels": 32, "griffin_lim_iters": 4}}),
    ("text_encoder", {"buckets": 256, "dim": 32, "max_len": 16, "layers": 1, "heads": 4}),
)
SMALL_CLIPS = SceneSpec(num_frames=25, height=32, width=32)   # 1 s: 7 latent frames of 4x4, 32 audio latents


def tiny(steps: int = 50, batch: int = 4, **loss) -> TrainConfig:
    return TrainConfig(preset="tiny", overrides=TINY_DEMO, steps=steps, lr=2e-3, warmup=5, save_every=1000,
                       ema=0.0, loss=LossConfig(**loss),
                       data=DataConfig(batch=batch, spec=SMALL_CLIPS, window=16))


def test_losses_finite_and_falling_over_50_steps(tmp_path):
    trainer = Trainer(tiny(), tmp_path)
    losses = [trainer.train_step()["loss"] for _ in range(50)]
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.8 * first, (first, last)


class Spy:
    """Wraps the model's forward and keeps its inputs."""

    def __init__(self, model):
        self.model, self.calls, self.forward = model, [], model.forward
        model.forward = self

    def __call__(self, video, audio, t_video, t_audio, cond):
        self.calls.append((video.detach().clone(), audio.detach().clone(), t_video, t_audio, cond))
        return self.forward(video, audio, t_video, t_audio, cond)


def _rows_like(batch_latents: torch.Tensor, row: torch.Tensor) -> bool:
    return any(torch.equal(row, item) for item in batch_latents)


def test_driven_rows_reach_the_model_clean_at_t0(tmp_path):
    trainer = Trainer(tiny(batch=8, schedule="all"), tmp_path)
    spy = Spy(trainer.model)
    batch = trainer.data.batch(0)
    trainer.train_step()
    video, audio, t_video, t_audio, _ = spy.calls[0]
    b = batch.size
    assert video.shape[0] == 3 * b                               # joint, audio-driven, video-driven rows
    assert bool((t_video[:b, :1] == t_audio[:b]).all()) and bool((t_video[:b] > 0).all())
    for r in range(b, 2 * b):                                      # audio-driven: clean audio, t_a = 0
        assert bool((t_audio[r] == 0).all()) and bool((t_video[r] > 0).all())
        assert _rows_like(batch.audio, audio[r])
    for r in range(2 * b, 3 * b):                                  # video-driven: clean video, t_v = 0
        assert bool((t_video[r] == 0).all()) and bool((t_audio[r] > 0).all())
        assert _rows_like(batch.video, video[r])


def test_driven_rows_get_the_plainer_conditions_with_cond_variety(tmp_path):
    config = replace(tiny(batch=5, schedule="all"),
                     data=DataConfig(batch=5, spec=SMALL_CLIPS, window=16, cond_variety=1.0))
    trainer = Trainer(config, tmp_path)
    spy = Spy(trainer.model)
    batch = trainer.data.batch(0)                                  # impact, speaker, drum, flash, still
    trainer.train_step()
    video, audio, _, _, _ = spy.calls[0]
    b = batch.size
    for r in range(b):                                             # joint rows: noised standard latents
        assert not _rows_like(batch.video_cond, video[r])
    for r in range(b, 2 * b):                                      # audio-driven: the plainer sound
        assert torch.equal(audio[r], batch.audio_cond[r - b])
    for r in range(2 * b, 3 * b):                                  # video-driven: the plainer picture
        assert torch.equal(video[r], batch.video_cond[r - 2 * b])
    assert not torch.equal(batch.video_cond, batch.video) and not torch.equal(batch.audio_cond, batch.audio)


def test_reference_audio_conditions_but_is_never_predicted(tmp_path):
    trainer = Trainer(tiny(batch=2, ref_prob=1.0), tmp_path)
    spy = Spy(trainer.model)
    batch = trainer.data.batch(0)
    assert math.isfinite(trainer.train_step()["loss"])
    video, audio, t_video, t_audio, cond = spy.calls[0]
    ref = cond.ref_audio
    assert ref is not None and 16 <= ref.shape[-1] <= 32           # 0.5-1 s at 31.25 latents/s
    assert audio.shape == batch.audio.shape and t_audio.shape == batch.audio.shape[::2]
    with torch.no_grad():   # the audio output covers the target span only: the reference is never supervised
        _, pred_a = spy.forward(video, audio, t_video, t_audio, cond)
    assert pred_a.shape == batch.audio.shape


def test_resume_reproduces_the_next_step_exactly(tmp_path):
    config = TrainConfig(**{**tiny(steps=10, batch=2, ref_prob=0.5).__dict__, "ema": 0.9})
    first = Trainer(config, tmp_path)
    for _ in range(3):
        first.train_step()
    first.save()
    expected = first.train_step()
    second = Trainer(config, tmp_path)                      # a new process would build exactly this
    assert second.resume() == 3
    got = second.train_step()
    assert got["loss"] == expected["loss"] and got["grad_norm"] == expected["grad_norm"]
    for name, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[name], value), name


def test_stop_at_then_resume_equals_one_run(tmp_path):
    config = tiny(steps=4, batch=2)
    whole = Trainer(config, tmp_path / "whole")
    whole.run()
    part = Trainer(config, tmp_path / "part")
    part.run(stop_at=2)                                     # the schedule still spans 4 steps
    assert part.step == 2 and (tmp_path / "part" / STATE_FILE).is_file()
    again = Trainer(config, tmp_path / "part")
    assert again.resume() == 2
    again.run()
    assert again.step == 4
    for name, value in whole.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], value), name


def test_resume_refuses_other_settings(tmp_path):
    Trainer(tiny(steps=1, batch=2), tmp_path).run()
    other = Trainer(tiny(steps=2, batch=2, text_dropout=0.3), tmp_path)
    with pytest.raises(ValueError, match="loss"):
        other.resume()


def test_resume_reads_runs_saved_before_a_setting_existed(tmp_path):
    Trainer(tiny(steps=1, batch=2), tmp_path).run()
    state = load_train_state(tmp_path / STATE_FILE)
    config = copy.deepcopy(state.info["config"])
    del config["data"]["cond_variety"], config["data"]["spec"]["variety"]   # as a run from before both
    save_train_state(tmp_path / STATE_FILE, replace(state, info={**state.info, "config": config}))
    assert Trainer(tiny(steps=2, batch=2), tmp_path).resume() == 1          # absent = the default (off)
    varied = replace(tiny(steps=2, batch=2), data=DataConfig(batch=2, spec=SMALL_CLIPS, window=16,
                                                              cond_variety=0.5))
    with pytest.raises(ValueError, match="data"):                          # but not another value
        Trainer(varied, tmp_path).resume()


def test_export_loads_as_a_model_with_its_config(tmp_path):
    trainer = Trainer(tiny(steps=1, batch=2), tmp_path)
    trainer.run()
    model, report = load_model(tmp_path / MODEL_FILE)
    assert report.ok and model.cfg == trainer.model.cfg
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_export_writes_the_ema_weights(tmp_path):
    config = TrainConfig(**{**tiny(steps=3, batch=2).__dict__, "ema": 0.5})
    trainer = Trainer(config, tmp_path)
    trainer.run()
    model, _ = load_model(tmp_path / MODEL_FILE)
    exported = dict(model.named_parameters())
    for name, value in trainer.ema.items():
        assert torch.equal(exported[name], value), name
    assert any(not torch.equal(exported[n], p) for n, p in trainer.model.named_parameters())


def test_cli_trains_one_demo_step(tmp_path):
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--preset", "demo", "--steps", "1", "--batch", "1", "--out", str(tmp_path),
                              "--quiet", "--export", str(tmp_path / "demo.safetensors")])
    assert run_train(args) == 0
    model, _ = load_model(tmp_path / "demo.safetensors")
    assert model.cfg.name == "demo"
    assert (tmp_path / STATE_FILE).is_file() and (tmp_path / LOG_FILE).is_file()


def test_frame_noise_share_changes_only_the_video_noise(tmp_path):
    """A model config with frame_noise_share trains on mixed video noise (sampling/noise.py); the draws before
    it (rows, noise levels, audio noise) stay what the i.i.d. run draws (later ones, caption dropout and the
    reference crop, come from the shifted generator)."""
    calls = []
    for name, extra in (("iid", ()), ("mixed", (("frame_noise_share", 0.5),))):
        config = TrainConfig(preset="tiny", overrides=TINY_DEMO + extra, steps=1, lr=2e-3, warmup=5,
                             save_every=1000, ema=0.0, data=DataConfig(batch=4, spec=SMALL_CLIPS, window=16))
        trainer = Trainer(config, tmp_path / name)
        spy = Spy(trainer.model)
        trainer.train_step()
        calls.append(spy.calls[0])
    (v0, a0, tv0, ta0, _), (v1, a1, tv1, ta1, _) = calls
    assert torch.equal(a0, a1) and torch.equal(tv0, tv1) and torch.equal(ta0, ta1)
    noised = tv0[:, 0] > 0                                        # rows whose video is generated
    assert not torch.equal(v0[noised], v1[noised]) and torch.equal(v0[~noised], v1[~noised])
