"""Cross-Task Synergy objective (arXiv 2511.21579 §3.2, Eq. 3-4; method.md §3.1).

L = L_joint + 0.1 * L_audio_driven + 0.3 * L_video_driven, rectified flow: x_sigma = (1 - sigma) x0 +
sigma * noise, the model predicts the velocity noise - x0 (Wan convention).
- joint: both modalities noised at ONE shared sigma, both supervised;
- audio_driven: audio clean (its input is x0, its timestep 0), only the video output is supervised;
- video_driven: video clean (t_v = 0), only the audio output is supervised.

Timesteps (paper: "flow matching with shift of 5", base distribution not given). Our choice: the base
sigma is uniform on [0, 1] (or logit-normal as in SD3, a setting), then shifted with
`sampling.shift_sigma(., 5)`. Uniform-then-shift gives training noise levels the same density as the
sampler's shifted linear schedule, so the model trains where it is used.

Scheduling (paper silent, a setting): "sample" draws one task per batch item with probability proportional
to its weight and scales every row by the weights' sum, so the expected loss equals the weighted sum above
at one forward per item; "all" runs every item under every task (three rows per item) and weights the
rows. "joint_only" (the ablation baseline) keeps only the joint task.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..sampling import shift_sigma

TASKS = ("joint", "audio_driven", "video_driven")
JOINT, AUDIO_DRIVEN, VIDEO_DRIVEN = range(3)
CTS_WEIGHTS = (1.0, 0.1, 0.3)   # paper §B: lambda_v = 0.1 (audio-driven video), lambda_a = 0.3 (video-driven)
TASK_SETS = ("cts", "joint_only")
SCHEDULES = ("sample", "all")
SIGMA_DISTRIBUTIONS = ("uniform", "logit_normal")
VIDEO_WEIGHTINGS = ("uniform", "pixel")


@dataclass(frozen=True)
class LossConfig:
    """The objective. text_dropout: probability that an item loses captions and transcript (the
    unconditional branch of CFG). ref_prob: probability that a batch carries a reference-audio crop of
    each item's own clean audio, ref_seconds long (paper stage 1); it conditions, it is never supervised.
    video_weighting: "uniform" (every latent channel alike) or "pixel" (each channel weighted by the
    energy it decodes to, i.e. the loss measured in pixel space; for linear codecs such as the demo
    codec, see `pixel_channel_weights`).

    Loss shaping (all off by default): sigma_floor scales the loss of rows below that noise level by
    (sigma / sigma_floor)^2, so with x0 prediction the x0 error weighs at most 1 / sigma_floor^2 instead of
    1 / sigma^2 (rows the sampler never visits stop dominating the clipped gradient); motion_weight
    weights each video latent position by 1 + motion_weight * min(d / mean(d), motion_cap), d = the clean
    latents' squared change from the previous latent frame (mean over channels, row mean over positions);
    temporal_weight adds that multiple of the squared frame-to-frame change of the video error, a
    quadratic form in the error, so the optimum stays the conditional mean while errors that differ
    between frames (flicker, mistimed events) get more of the gradient."""

    tasks: str = "cts"
    schedule: str = "sample"
    weights: tuple[float, float, float] = CTS_WEIGHTS
    sigma: str = "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    shift: float = 5.0
    text_dropout: float = 0.1
    ref_prob: float = 0.1
    ref_seconds: tuple[float, float] = (0.5, 1.0)
    video_weighting: str = "uniform"
    sigma_floor: float = 0.0
    motion_weight: float = 0.0
    motion_cap: float = 20.0
    temporal_weight: float = 0.0

    def __post_init__(self) -> None:
        _check(self.tasks in TASK_SETS, f"tasks {self.tasks!r} is not one of {TASK_SETS}")
        _check(self.schedule in SCHEDULES, f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        _check(self.video_weighting in VIDEO_WEIGHTINGS,
               f"video_weighting {self.video_weighting!r} is not one of {VIDEO_WEIGHTINGS}")
        _check(self.sigma in SIGMA_DISTRIBUTIONS, f"sigma {self.sigma!r} is not one of {SIGMA_DISTRIBUTIONS}")
        _check(len(self.weights) == 3 and all(w >= 0 for w in self.weights) and self.weights[0] > 0,
               f"weights must be 3 values >= 0 (joint, audio_driven, video_driven), joint > 0; "
               f"got {self.weights}")
        _check(0.0 <= self.text_dropout < 1.0, f"text_dropout must lie in [0, 1), got {self.text_dropout}")
        _check(0.0 <= self.ref_prob <= 1.0, f"ref_prob must lie in [0, 1], got {self.ref_prob}")
        _check(all(x >= 0 for x in (self.sigma_floor, self.motion_weight, self.temporal_weight))
               and self.sigma_floor < 1 and self.motion_cap > 0,
               f"sigma_floor must lie in [0, 1), motion_weight and temporal_weight >= 0, motion_cap > 0; got "
               f"{self.sigma_floor}, {self.motion_weight}, {self.temporal_weight}, {self.motion_cap}")
        lo, hi = self.ref_seconds
        _check(0 < lo <= hi, f"ref_seconds must be (lo, hi) with 0 < lo <= hi, got {self.ref_seconds}")

    @property
    def task_weights(self) -> tuple[float, float, float]:
        """The effective per-task weights (joint-only zeroes the driven tasks)."""
        return (self.weights[0], 0.0, 0.0) if self.tasks == "joint_only" else tuple(self.weights)


@dataclass(frozen=True, eq=False)
class Rows:
    """The rows of one forward: item [R] (batch item of each row), task [R], sigma [R] (shared by the
    noised modalities of the row), weight [R] (loss weight of the row)."""

    item: torch.Tensor
    task: torch.Tensor
    sigma: torch.Tensor
    weight: torch.Tensor

    def to(self, device: torch.device) -> Rows:
        return Rows(self.item.to(device), self.task.to(device), self.sigma.to(device), self.weight.to(device))


@dataclass(frozen=True, eq=False)
class NoisyInputs:
    """Model inputs and targets of R rows: video [R, Cv, Tv, h, w], audio [R, Ca, Ta], t_video [R, Tv],
    t_audio [R, Ta], targets noise - x0, and per-row loss weights per modality ([R], 0 = unsupervised)."""

    video: torch.Tensor
    audio: torch.Tensor
    t_video: torch.Tensor
    t_audio: torch.Tensor
    target_video: torch.Tensor
    target_audio: torch.Tensor
    weight_video: torch.Tensor
    weight_audio: torch.Tensor
    rows: Rows
    clean_video: torch.Tensor | None = None   # [R, Cv, Tv, h, w] x0 of each row (for motion weighting)


def sample_sigmas(n: int, config: LossConfig, generator: torch.Generator) -> torch.Tensor:
    """[n] training noise levels: base draw (uniform or logit-normal) then the shift (5 by default)."""
    if config.sigma == "uniform":
        base = torch.rand(n, generator=generator)
    else:
        base = torch.sigmoid(config.logit_mean + config.logit_std * torch.randn(n, generator=generator))
    return shift_sigma(base, config.shift).float()


def draw_rows(batch: int, config: LossConfig, generator: torch.Generator) -> Rows:
    """Which task each row trains: one row per item ("sample") or one row per item and task ("all")."""
    weights = torch.tensor(config.task_weights, dtype=torch.float64)
    active = torch.nonzero(weights > 0).flatten()                                       # [K]
    if config.schedule == "sample":
        item = torch.arange(batch)
        task = torch.multinomial(weights.float(), batch, replacement=True, generator=generator)
        weight = torch.full((batch,), float(weights.sum()))
    else:
        item = torch.arange(batch).repeat(len(active))                                  # [K * B]
        task = active.repeat_interleave(batch)                                          # [K * B]
        weight = weights[task].float()
    sigma = sample_sigmas(int(item.shape[0]), config, generator)
    return Rows(item, task, sigma, weight)


def _per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[R] -> [R, 1, ...] broadcastable against `like` [R, ...]."""
    return values.view(-1, *([1] * (like.ndim - 1))).to(like)


def make_inputs(video: torch.Tensor, audio: torch.Tensor, noise_video: torch.Tensor,
                noise_audio: torch.Tensor, rows: Rows, video_cond: torch.Tensor | None = None,
                audio_cond: torch.Tensor | None = None) -> NoisyInputs:
    """Noised inputs per row. video [B, Cv, Tv, h, w], audio [B, Ca, Ta] clean latents of the batch items;
    noise_* shaped like the rows ([R, ...]). A clean modality gets sigma 0, so its input is exactly x0, or
    the item's `video_cond` / `audio_cond` (shaped like video / audio) when given."""
    x0_v, x0_a = video[rows.item], audio[rows.item]                                   # [R, ...]
    sigma_v = torch.where(rows.task == VIDEO_DRIVEN, 0.0, rows.sigma)                  # [R]
    sigma_a = torch.where(rows.task == AUDIO_DRIVEN, 0.0, rows.sigma)                  # [R]
    sv, sa = _per_row(sigma_v, x0_v), _per_row(sigma_a, x0_a)
    noisy_v = (1 - sv) * x0_v + sv * noise_video
    noisy_a = (1 - sa) * x0_a + sa * noise_audio
    if video_cond is not None:
        noisy_v = torch.where(_per_row(rows.task == VIDEO_DRIVEN, x0_v).bool(), video_cond[rows.item], noisy_v)
    if audio_cond is not None:
        noisy_a = torch.where(_per_row(rows.task == AUDIO_DRIVEN, x0_a).bool(), audio_cond[rows.item], noisy_a)
    t_video = sigma_v[:, None].expand(-1, x0_v.shape[2]).contiguous()                 # [R, Tv]
    t_audio = sigma_a[:, None].expand(-1, x0_a.shape[2]).contiguous()                 # [R, Ta]
    weight_v = rows.weight * (rows.task != VIDEO_DRIVEN).float()
    weight_a = rows.weight * (rows.task != AUDIO_DRIVEN).float()
    return NoisyInputs(noisy_v, noisy_a, t_video, t_audio, noise_video - x0_v, noise_audio - x0_a,
                       weight_v, weight_a, rows, x0_v)


@torch.no_grad()
def pixel_channel_weights(video_codec: torch.nn.Module, channels: int) -> torch.Tensor:
    """[C] weights, mean 1: the squared pixel energy that a unit of each latent channel decodes to (one
    latent cell of latent frame 1). Exact for a linear codec (the demo codec: DC channels ~64x the
    first-order ones); for a non-linear VAE it is only a local estimate."""
    eye = torch.eye(channels)                                                          # [C, C]
    latent = torch.zeros(channels, channels, 2, 1, 1)                                  # [C, C, 2, 1, 1]
    latent[:, :, 1, 0, 0] = eye
    zero = video_codec.decode(torch.zeros_like(latent[:1]))                            # [1, 3, F, H, W]
    pixels = video_codec.decode(latent) - zero                                         # [C, 3, F, H, W]
    energy = pixels.float().pow(2).flatten(1).sum(1)                                   # [C]
    if not bool((energy > 0).all()):
        raise ValueError("the video codec decodes some latent channel to nothing; use uniform weighting")
    return energy / energy.mean()


def motion_weights(clean_video: torch.Tensor, weight: float, cap: float) -> torch.Tensor:
    """[R, Cv, Tv, h, w] clean latents -> [R, 1, Tv, h, w] position weights 1 + weight * min(d / mean d, cap):
    d = squared change from the previous latent frame (mean over channels; latent frame 0 has none), mean d
    over the row's positions (a row without motion gets weight 1 everywhere)."""
    step = clean_video[:, :, 1:] - clean_video[:, :, :-1]                              # [R, Cv, Tv-1, h, w]
    d = torch.nn.functional.pad(step.float().pow(2).mean(1, keepdim=True), (0, 0, 0, 0, 1, 0))  # [R, 1, Tv, h, w]
    mean = d.flatten(1).mean(1).view(-1, 1, 1, 1, 1)
    ratio = torch.where(mean > 0, d / mean.clamp_min(1e-12), torch.zeros_like(d))
    return 1.0 + weight * ratio.clamp(max=cap)


def _row_scale(sigma: torch.Tensor, floor: float) -> torch.Tensor:
    """[R] loss scale (sigma / floor)^2 below `floor`, 1 above (all ones when floor is 0)."""
    if floor <= 0:
        return torch.ones_like(sigma)
    return (sigma / floor).clamp(max=1.0).pow(2)


def flow_loss(pred_video: torch.Tensor, pred_audio: torch.Tensor, inputs: NoisyInputs,
              batch: int, video_weights: torch.Tensor | None = None,
              config: LossConfig | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted objective (mean over the `batch` items) and per-task figures for logging.

    Per row, mse over all latent elements of each modality; a modality with weight 0 (the clean one of a
    driven task) contributes neither loss nor gradient. Logged (unweighted means over the rows of a task):
    joint_video, joint_audio, audio_driven (its video loss), video_driven (its audio loss).
    video_weights [Cv] (mean 1) weight the video channels (None: all alike). `config` adds its loss
    shaping (sigma_floor, motion_weight, temporal_weight; see LossConfig); the logged figures stay the
    plain mse.
    """
    diff_v = pred_video.float() - inputs.target_video                                  # [R, Cv, Tv, h, w]
    err_v = diff_v.pow(2)
    if video_weights is not None:
        err_v = err_v * video_weights.to(err_v).view(1, -1, *([1] * (err_v.ndim - 2)))
    mse_v = err_v.flatten(1).mean(1)                                                   # [R]
    mse_a = (pred_audio.float() - inputs.target_audio).pow(2).flatten(1).mean(1)       # [R]
    loss_v, loss_a = _shaped(mse_v, mse_a, err_v, diff_v, inputs, config)
    total = ((inputs.weight_video * loss_v).sum() + (inputs.weight_audio * loss_a).sum()) / batch
    task = inputs.rows.task
    stats: dict[str, float] = {}
    logged = (("joint_video", mse_v, JOINT), ("joint_audio", mse_a, JOINT),
              ("audio_driven", mse_v, AUDIO_DRIVEN), ("video_driven", mse_a, VIDEO_DRIVEN))
    for name, values, task_id in logged:
        chosen = values.detach()[task == task_id]
        if chosen.numel():
            stats[name] = float(chosen.mean())
    return total, stats


def _shaped(mse_v: torch.Tensor, mse_a: torch.Tensor, err_v: torch.Tensor, diff_v: torch.Tensor,
            inputs: NoisyInputs, config: LossConfig | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row video and audio losses [R] with the config's shaping applied (the plain mse without one)."""
    if config is None:
        return mse_v, mse_a
    loss_v = mse_v
    if config.motion_weight > 0:
        if inputs.clean_video is None:
            raise ValueError("motion_weight needs the rows' clean video (make_inputs provides it)")
        weights = motion_weights(inputs.clean_video, config.motion_weight, config.motion_cap)  # [R, 1, Tv, h, w]
        loss_v = (err_v * weights).flatten(1).mean(1)
    if config.temporal_weight > 0 and diff_v.shape[2] > 1:
        step = (diff_v[:, :, 1:] - diff_v[:, :, :-1]).pow(2).flatten(1).mean(1)        # [R]
        loss_v = loss_v + config.temporal_weight * step
    scale = _row_scale(inputs.rows.sigma.to(mse_v), config.sigma_floor)                 # [R]
    return loss_v * scale, mse_a * scale


def reference_crops(audio: torch.Tensor, rows: Rows, length: int, generator: torch.Generator) -> torch.Tensor:
    """Reference audio per row: a random `length`-latent crop of the row item's own clean audio
    [B, Ca, Ta] -> [R, Ca, length] (it only conditions; the loss never sees it)."""
    ta = audio.shape[-1]
    if not 1 <= length <= ta:
        raise ValueError(f"reference length {length} must lie in 1..{ta} audio latents")
    start = torch.randint(0, ta - length + 1, (int(rows.item.shape[0]),), generator=generator)   # [R]
    idx = start[:, None] + torch.arange(length)                                                   # [R, Tr]
    src = audio[rows.item]                                                                   # [R, Ca, Ta]
    return torch.gather(src, 2, idx[:, None, :].expand(-1, src.shape[1], -1).to(src.device))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)
