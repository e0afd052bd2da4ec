"""Cross-Task Synergy trainer (arXiv 2511.21579 §3.2): AdamW, warmup + cosine learning rate, gradient
clipping, optional EMA, exact resume, DDP under `torchrun`.

One step: the batch of the step (`data.SyntheticLatents`, a pure function of seed and step), task rows,
noise levels and noise from a generator keyed by (seed, step, rank), text dropout, an optional reference
crop, one forward of all rows, the weighted flow loss (`losses.py`). Because every random draw of a step
is keyed by the step, a resumed run continues exactly (the test checks the next step's loss).

Distributed: started by `torchrun`, WORLD_SIZE > 1 initialises torch.distributed from the environment
(NCCL on CUDA, gloo on CPU); every rank trains on its own slice of the clip stream, DDP averages the
gradients, rank 0 writes logs and checkpoints.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import timeline
from ..codecs.registry import build_audio_codec, build_video_codec
from ..config import HarmonyConfig, preset
from ..loading.checkpoint import save_checkpoint
from ..model.conditioning import Conditioning
from ..model.harmony import HarmonyModel
from ..model.text_encoder import tokenize
from ..model.transcript import encode_transcripts
from ..sampling.noise import with_frame_common
from .checkpoint import TrainState, load_train_state, save_train_state
from .data import DataConfig, LatentBatch, SyntheticLatents
from .losses import (
    LossConfig,
    NoisyInputs,
    draw_rows,
    flow_loss,
    make_inputs,
    pixel_channel_weights,
    reference_crops,
)

log = logging.getLogger(__name__)

STATE_FILE = "train_state.safetensors"
MODEL_FILE = "model.safetensors"
LOG_FILE = "log.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    """One training run; the defaults are the bundled demo model's recipe (docs/demo_model.md).

    interaction: override the preset's interaction kind ("gldi", "global", "none"; the ablation's
    Ovi-style baseline is "global"); overrides: further dotted config changes, e.g.
    (("video.num_layers", 2),). lr: peak AdamW rate after `warmup` steps, then cosine
    decay to lr * min_lr_ratio at `steps`. ema: EMA decay (0 = off); the exported model is the EMA."""

    preset: str = "demo"
    interaction: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()
    steps: int = 3000
    lr: float = 5e-4
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    beta2: float = 0.99
    grad_clip: float = 1.0
    ema: float = 0.995
    seed: int = 0
    save_every: int = 200
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.steps < 1 or self.warmup < 0 or self.save_every < 1:
            raise ValueError(f"need steps >= 1, warmup >= 0, save_every >= 1; got {self.steps}, "
                             f"{self.warmup}, {self.save_every}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1) (0 = off), got {self.ema}")

    def model_config(self) -> HarmonyConfig:
        """The preset with the interaction override and `overrides` applied."""
        changes = dict(self.overrides)
        if self.interaction is not None:
            changes["interaction.kind"] = self.interaction
        cfg = preset(self.preset)
        return cfg.replace(**changes) if changes else cfg

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored with checkpoints; `steps` excluded from resume checks)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def lr_at(self, step: int) -> float:
        """Learning rate of 0-based `step`: linear warmup, then cosine to lr * min_lr_ratio."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.lr * (self.min_lr_ratio + (1 - self.min_lr_ratio) * cosine)


def _with_new_defaults(saved: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A saved run's settings with every setting added since it was written (absent from `saved`, at any
    depth) at its default: a run from before a setting existed ran as that default does."""
    out = dict(saved)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _with_new_defaults(out[key], value)
    return out


def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device). Under `torchrun` (WORLD_SIZE > 1) initialise the default process group
    from the environment; otherwise one CPU/GPU process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(device)
        return dist.get_rank(), dist.get_world_size(), device
    return 0, 1, torch.device("cuda" if cuda else "cpu")


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The generator of every random draw of one step on one rank."""
    state = int(np.random.SeedSequence([seed, step, rank, 11]).generate_state(1)[0])
    return torch.Generator().manual_seed(state)


class DenoiseNet(nn.Module):
    """Caption encoding + the model's forward in one module, so DDP sees every trained parameter."""

    def __init__(self, model: HarmonyModel) -> None:
        super().__init__()
        if model.text_encoder is None:
            raise ValueError(f"preset {model.cfg.name!r} has no caption encoder of its own; the trainer "
                             "needs one (use a preset with text_encoder, e.g. 'demo' or 'tiny')")
        self.model = model

    def forward(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
                video_ids: torch.Tensor, audio_ids: torch.Tensor, transcript: torch.Tensor,
                ref_audio: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.model.text_encoder
        cond = Conditioning(encoder(video_ids), encoder(audio_ids), transcript, ref_audio)
        return self.model(video, audio, t_video, t_audio, cond)


class Trainer:
    """Builds model, codecs, data and optimizer from a TrainConfig; `run` trains, `export` writes the
    inference checkpoint. Files live in `out_dir` (rank 0 writes)."""

    def __init__(self, config: TrainConfig, out_dir: str | os.PathLike, rank: int = 0, world: int = 1,
                 device: str | torch.device = "cpu") -> None:
        self.config, self.out = config, Path(out_dir)
        self.rank, self.world, self.device = rank, world, torch.device(device)
        cfg = config.model_config()
        torch.manual_seed(config.seed)
        self.model = HarmonyModel(cfg).to(self.device).train()
        self.net: nn.Module = DenoiseNet(self.model)
        if world > 1:
            self.net = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)
        self.video_codec = build_video_codec(cfg.codecs.get("video")).to(self.device)
        self.audio_codec = build_audio_codec(cfg.codecs.get("audio")).to(self.device)
        self.data = SyntheticLatents(config.data, self.video_codec, self.audio_codec, rank, world)
        self.video_weights = (pixel_channel_weights(self.video_codec, cfg.video.in_dim).to(self.device)
                              if config.loss.video_weighting == "pixel" else None)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, betas=(0.9, config.beta2),
                                           weight_decay=config.weight_decay)
        self.ema = ({k: p.detach().clone() for k, p in self.model.named_parameters()}
                    if config.ema > 0 else None)
        self.step = 0

    # -- one step ------------------------------------------------------------------------------------
    def _inputs(self, batch: LatentBatch, g: torch.Generator) -> tuple[NoisyInputs, tuple]:
        """Rows, noised inputs, token ids and the optional reference crop of one step."""
        lc, dev = self.config.loss, self.device
        video, audio = batch.video.to(dev), batch.audio.to(dev)
        rows = draw_rows(batch.size, lc, g)
        r = int(rows.item.shape[0])
        noise_v = torch.randn((r, *video.shape[1:]), generator=g).to(dev)
        noise_a = torch.randn((r, *audio.shape[1:]), generator=g).to(dev)
        noise_v = with_frame_common(noise_v, self.model.cfg.frame_noise_share, g)   # after the audio noise
        cond_v, cond_a = (None if c is None else c.to(dev) for c in (batch.video_cond, batch.audio_cond))
        inputs = make_inputs(video, audio, noise_v, noise_a, rows.to(dev), cond_v, cond_a)
        keep = (torch.rand(batch.size, generator=g) >= lc.text_dropout)[rows.item].tolist()     # [R]
        items = rows.item.tolist()

        def texts(values: tuple[str, ...]) -> list[str]:
            return [values[i] if k else "" for i, k in zip(items, keep)]
        enc = self.model.text_encoder.cfg
        video_ids = tokenize(texts(batch.video_captions), enc.buckets, enc.max_len).to(dev)
        audio_ids = tokenize(texts(batch.audio_captions), enc.buckets, enc.max_len).to(dev)
        transcript = encode_transcripts(texts(batch.transcripts)).to(dev)
        ref = None
        if float(torch.rand(1, generator=g)) < lc.ref_prob:
            codec = self.audio_codec
            rate = timeline.audio_latent_rate(codec.sample_rate, codec.samples_per_latent)
            lo, hi = (max(1, round(s * float(rate))) for s in lc.ref_seconds)
            length = min(int(torch.randint(lo, hi + 1, (1,), generator=g)), audio.shape[-1])
            ref = reference_crops(audio, rows, length, g)                                   # [R, Ca, Tr]
        return inputs, (video_ids, audio_ids, transcript, ref)

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns the logged figures (loss, per-task losses, lr, grad_norm)."""
        start = time.perf_counter()
        batch = self.data.batch(self.step)
        g = step_generator(self.config.seed, self.step, self.rank)
        inputs, extra = self._inputs(batch, g)
        pred_v, pred_a = self.net(inputs.video, inputs.audio, inputs.t_video, inputs.t_audio, *extra)
        total, stats = flow_loss(pred_v, pred_a, inputs, batch.size, self.video_weights,
                                  self.config.loss)
        lr = self.config.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self._update_ema()
        self.step += 1
        loss = total.detach()
        if self.world > 1:
            import torch.distributed as dist
            dist.all_reduce(loss)
            loss /= self.world
        return {"step": self.step, "loss": float(loss), **stats, "lr": lr, "grad_norm": float(norm),
                "sec": time.perf_counter() - start}

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        for name, p in self.model.named_parameters():
            self.ema[name].lerp_(p.detach(), 1 - decay)

    # -- loop, saving, resuming -------------------------------------------------------------------------
    def run(self, on_step: Callable[[dict[str, float]], None] | None = None, snapshot_every: int = 0,
            stop_at: int | None = None) -> None:
        """Train up to config.steps (or stop after step `stop_at`, the schedule unchanged, so `resume`
        continues the same run), saving the state every `save_every` steps and at the end; with
        snapshot_every > 0 also keep the inference model every that many steps (model_stepNNNNNN)."""
        logfile = self.out / LOG_FILE
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        end = stop_step(self.config.steps, stop_at)
        while self.step < end:
            figures = self.train_step()
            if self.rank == 0:
                with logfile.open("a") as f:
                    f.write(json.dumps(figures) + "\n")
            if on_step is not None:
                on_step(figures)
            if snapshot_every and self.step % snapshot_every == 0 and self.rank == 0:
                self.export(self.out / snapshot_name(self.step))
            if self.step % self.config.save_every == 0 or self.step == end:
                self.save()

    def save(self) -> Path | None:
        """Write the training state (rank 0) and the inference model; all ranks wait for it."""
        path = None
        if self.rank == 0:
            state = TrainState(self.step, self.model.state_dict(), self.optimizer.state_dict(), self.ema,
                               torch.get_rng_state(), {"config": self.config.to_dict()})
            path = save_train_state(self.out / STATE_FILE, state)
            self.export(self.out / MODEL_FILE)
        self._barrier()
        return path

    def resume(self, path: str | os.PathLike | None = None) -> int:
        """Load a training state (default: out_dir's); the run's settings must match except `steps`.
        Returns the step it continues from."""
        state = load_train_state(path or self.out / STATE_FILE)
        mine = self.config.to_dict()
        theirs = _with_new_defaults(state.info.get("config", {}), TrainConfig().to_dict())
        differ = sorted(k for k in set(mine) | set(theirs) if k != "steps" and mine.get(k) != theirs.get(k))
        if differ:
            raise ValueError(f"cannot resume: the saved run used other settings for {differ} "
                             f"(saved: {[theirs.get(k) for k in differ]}, "
                             f"now: {[mine.get(k) for k in differ]})")
        self.model.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        if self.ema is not None:
            self.ema = {k: v.to(self.device) for k, v in (state.ema or {}).items()} or self.ema
        torch.set_rng_state(state.rng)
        self.step = state.step
        if self.rank == 0:
            _truncate_log(self.out / LOG_FILE, self.step)
        return self.step

    def export(self, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
        """Write the inference checkpoint (EMA weights when EMA is on) with the config in its metadata."""
        model = self.model
        if self.ema is not None:
            model = HarmonyModel(self.model.cfg).to(self.device)
            model.load_state_dict({**self.model.state_dict(), **self.ema})
        meta = {"train_step": str(self.step), "train_config": json.dumps(self.config.to_dict()),
                **(metadata or {})}
        return save_checkpoint(model, path, metadata=meta, overwrite=True)

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist
            dist.barrier()


def stop_step(steps: int, stop_at: int | None) -> int:
    """The last step a run trains to: `steps`, or `stop_at` when that comes first (the schedule stays
    `steps`)."""
    return steps if stop_at is None else min(stop_at, steps)


def snapshot_name(step: int) -> str:
    """File name of the inference model kept at `step`."""
    return f"model_step{step:06d}.safetensors"


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after `step` (a resumed run writes them again)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= step]
    path.write_text("".join(ln + "\n" for ln in lines))
