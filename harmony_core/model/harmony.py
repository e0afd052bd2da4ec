"""The dual-tower Harmony model: Wan2.2 video tower + audio tower, paired block by block with the
interaction module (paper Fig. 2b). The parts are variants chosen by the config:

| part        | Harmony (default)                        | UniAVGen (`preset("uniavgen")`)                         |
|-------------|------------------------------------------|---------------------------------------------------------|
| video       | Wan2.2-TI2V-5B                           | the same, reference-image latent prepended (ref_frame)  |
| audio       | MM-DiT over audio latents (audio.py)     | Wan blocks over mel frames, transcript cross-attention  |
|             |                                          | (`audio.kind == "mel"`, uniavgen_audio.py)              |
| interaction | GLDI / global (interaction.py)           | windowed A2V + interpolated V2A + face mask             |
|             |                                          | (`interaction.kind == "uniavgen"`, uniavgen_interaction)|

Both run the same loop: at each layer the video block, then the audio block, then (on interacting layers)
the exchange computed from the two post-block states. `PassFlags` switch interaction directions off or skip
whole layers (guidance passes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import cancel
from ..attention import Backend, resolve
from ..config import HarmonyConfig
from ..passes import PLAIN, PassFlags
from .audio import AudioTower
from .conditioning import Conditioning
from .embeddings import Rope
from .interaction import AlignmentPlan, InteractionBlock
from .layers import TIMESTEP_SCALE
from .offload import run_layers
from .text_encoder import HashTextEncoder
from .uniavgen_audio import MelAudioTower
from .uniavgen_interaction import UniAVGenInteraction, UniAVGenPlan
from .video import VideoGrid, WanVideoTower

__all__ = ["TIMESTEP_SCALE", "HarmonyModel", "velocity_from_x0"]

X0_SIGMA_FLOOR = 0.05   # x0 prediction: 1 / sigma is capped at 20 (JiT, arXiv 2511.13720, clips 1 - t at 0.05)


def velocity_from_x0(noisy: torch.Tensor, x0: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Flow-matching velocity of an x0 prediction: x_t = (1 - s) x0 + s eps and v = eps - x0 give
    v = (x_t - x0) / s; s is floored at X0_SIGMA_FLOOR (clean frames, s = 0, are conditions, never used).
    `sigma` broadcasts against the latents ([B, 1, T, 1, 1] video, [B, 1, T] audio)."""
    return (noisy.to(x0.dtype) - x0) / sigma.to(x0.dtype).clamp_min(X0_SIGMA_FLOOR)


def build_audio_tower(cfg: HarmonyConfig, backend: Backend) -> nn.Module:
    return MelAudioTower(cfg.audio, backend) if cfg.audio.kind == "mel" else AudioTower(cfg.audio, backend)


def build_interaction(cfg: HarmonyConfig, backend: Backend) -> nn.ModuleDict:
    make = UniAVGenInteraction if cfg.interaction.kind == "uniavgen" else InteractionBlock
    return nn.ModuleDict({str(i): make(cfg, backend) for i in cfg.interacting_layers()})


@dataclass
class VideoStream:
    x: torch.Tensor      # [B, L, C] float32, L = frames * per_frame (reference frame first when prepended)
    grid: VideoGrid
    e: torch.Tensor      # [B, F, C] per latent frame
    e0: torch.Tensor     # [B, F, 6, C]
    context: torch.Tensor
    rope: Rope
    lead: int            # frames prepended before the input's (1 with a reference frame, else 0)


class HarmonyModel(nn.Module):
    """forward(video, audio, t_video, t_audio, cond, flags) -> (velocity_video, velocity_audio).
    With `cfg.prediction == "x0"` (the demo model) the towers output clean latents, turned into the
    velocity here (`velocity_from_x0`), so samplers and guidance see a velocity either way.

    video [B, 48, Tv, H, W] and audio [B, C_a, Ta] noisy latents; t_video [B, Tv] and t_audio [B, Ta]
    noise levels sigma in [0, 1] per latent frame (0 = clean: driven modes and reference frames).
    Parameter names: `video.*` = Wan2.2's own, `audio.*`, `interaction.<layer>.*`.

    UniAVGen variant: frames and audio latents at sigma 0 are held conditions (the reference's `video_cond`
    / `audio_cond`): the interaction never updates them; any held audio frame sets the audio tower's single
    timestep to 0. `cond.ref_image` is required there.
    """

    def __init__(self, cfg: HarmonyConfig, attention: str = "sdpa") -> None:
        super().__init__()
        self.cfg = cfg.validate()
        self.attention = attention
        backend = resolve(attention)
        self.video = WanVideoTower(cfg.video, backend)
        self.audio = build_audio_tower(cfg, backend)
        self.interaction = build_interaction(cfg, backend)
        self.text_encoder = HashTextEncoder(cfg.text_encoder) if cfg.text_encoder is not None else None
        self.block_swap = None   # offload.BlockSwap while layers live on the CPU (offload.enable_block_swap)

    def rebuild_parts(self, parts: tuple[str, ...], device: str | torch.device = "cpu",
                      dtype: torch.dtype | None = None) -> None:
        """Re-create `audio` and/or `interaction` with fresh initial weights on `device` (used when a
        checkpoint provides only the video tower)."""
        backend = resolve(self.attention)
        with torch.device(device):
            if "audio" in parts:
                self.audio = build_audio_tower(self.cfg, backend)
            if "interaction" in parts:
                self.interaction = build_interaction(self.cfg, backend)
            if "video" in parts:
                self.video = WanVideoTower(self.cfg.video, backend)
        if dtype is not None:
            for name in parts:
                getattr(self, name).to(dtype)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
                cond: Conditioning, flags: PassFlags = PLAIN) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(video, audio, t_video, t_audio, cond)
        vs = self._video_stream(video, t_video, cond)
        aud = self.audio.prepare(audio, t_audio, cond)
        plan = self._plan(vs, t_video, t_audio) if len(self.interaction) and flags.interaction else None
        order = [i for i in range(len(self.video.blocks)) if i not in flags.skip_blocks]
        for i in run_layers(self, order):   # with block swap, each layer's weights arrive just before use
            cancel.check()  # a cancel lands within one layer, even when one step takes minutes
            vs.x = self.video.blocks[i](vs.x, vs.e0, vs.grid, vs.rope, vs.context)
            self.audio.step(i, aud)
            if plan is not None and str(i) in self.interaction:
                tr = aud.ref_len
                vs.x, target, ref_tok = self.interaction[str(i)](vs.x, aud.x[:, tr:], aud.x[:, :tr], plan, flags)
                aud.x = torch.cat([ref_tok, target], dim=1)
        video_out = self.video.unpatchify(self.video.head(vs.x, vs.e, vs.grid), vs.grid)  # [B, 48, lead + Tv, H, W]
        video_out, audio_out = video_out[:, :, vs.lead:], self.audio.output(aud)
        if self.cfg.prediction == "x0":   # the towers predicted the clean latents: return their velocity
            video_out = velocity_from_x0(video, video_out, t_video[:, None, :, None, None])
            audio_out = velocity_from_x0(audio, audio_out, t_audio[:, None, :])
        return video_out, audio_out

    def _video_stream(self, video: torch.Tensor, t_video: torch.Tensor, cond: Conditioning) -> VideoStream:
        t, lead = t_video.float(), 0
        if self.cfg.video.ref_frame:      # UniAVGen: [ref image | frames], the reference frame at t = 0
            video = torch.cat([cond.ref_image.to(video), video], dim=2)          # [B, 48, 1 + Tv, H, W]
            t, lead = torch.cat([t.new_zeros(t.shape[0], 1), t], dim=1), 1
        x, grid = self.video.embed(video)                                       # [B, Lv, Cv]
        e, e0 = self.video.embed_time(t * TIMESTEP_SCALE)                       # [B, F, Cv], [B, F, 6, Cv]
        return VideoStream(x=x, grid=grid, e=e, e0=e0, context=self.video.embed_text(cond.video_context),
                           rope=self.video.rope(grid, x.device), lead=lead)

    def _plan(self, vs: VideoStream, t_video: torch.Tensor, t_audio: torch.Tensor) -> AlignmentPlan | UniAVGenPlan:
        if self.cfg.interaction.kind == "uniavgen":
            return UniAVGenPlan.build(self.cfg, vs.grid, vs.e[:, vs.lead:], t_video, t_audio)
        return AlignmentPlan.build(self.cfg, vs.grid, t_audio.shape[1], vs.x.device)

    def _check(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
               cond: Conditioning) -> None:
        vc, ac = self.cfg.video, self.cfg.audio
        if video.ndim != 5 or video.shape[1] != vc.in_dim:
            raise ValueError(f"video latent must be [B, {vc.in_dim}, T, H, W], got {tuple(video.shape)}")
        if audio.ndim != 3 or audio.shape[1] != ac.in_dim:
            raise ValueError(f"audio latent must be [B, {ac.in_dim}, T], got {tuple(audio.shape)}")
        _, ph, pw = vc.patch_size[0], vc.patch_size[1], vc.patch_size[2]
        if video.shape[3] % ph or video.shape[4] % pw:
            raise ValueError(f"video latent height/width {tuple(video.shape[3:])} must be multiples of {(ph, pw)}")
        b = video.shape[0]
        expected = {"audio": (audio.shape[0], b), "t_video": (tuple(t_video.shape), (b, video.shape[2])),
                    "t_audio": (tuple(t_audio.shape), (b, audio.shape[2])), "conditioning": (cond.batch, b)}
        if vc.ref_frame:
            ref = cond.ref_image
            if ref is None:
                raise ValueError("this model (UniAVGen layout) prepends the reference image: give "
                                 f"Conditioning.ref_image, its clean latent [B, {vc.in_dim}, 1, H, W]")
            expected["ref_image"] = (tuple(ref.shape), (b, vc.in_dim, 1, *video.shape[3:]))
        if cond.transcript_lens is not None:
            expected["transcript_lens"] = (tuple(cond.transcript_lens.shape), (cond.transcript.shape[0],))
        for name, (got, want) in expected.items():
            if got != want:
                raise ValueError(f"{name} has shape/batch {got}, expected {want}")
