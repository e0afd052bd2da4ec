"""The dual-tower Harmony model: Wan2.2 video tower + audio MM-DiT, paired block by block with the
interaction module (paper Fig. 2b)."""
from __future__ import annotations

import torch
from torch import nn

from .. import cancel
from ..attention import resolve
from ..config import HarmonyConfig
from .audio import AudioTower
from .conditioning import Conditioning
from .interaction import AlignmentPlan, InteractionBlock
from .text_encoder import HashTextEncoder
from .video import WanVideoTower

TIMESTEP_SCALE = 1000.0  # sigma in [0, 1] -> Wan's num_train_timesteps units


class HarmonyModel(nn.Module):
    """forward(video, audio, t_video, t_audio, cond) -> (velocity_video, velocity_audio).

    video [B, 48, Tv, H, W] and audio [B, C_a, Ta] noisy latents; t_video [B, Tv] and t_audio [B, Ta]
    noise levels sigma in [0, 1] per latent frame (0 = clean: driven modes and reference frames).
    Parameter names: `video.*` = Wan2.2's own, `audio.*`, `interaction.<layer>.*`.
    """

    def __init__(self, cfg: HarmonyConfig, attention: str = "sdpa") -> None:
        super().__init__()
        self.cfg = cfg.validate()
        self.attention = attention
        backend = resolve(attention)
        self.video = WanVideoTower(cfg.video, backend)
        self.audio = AudioTower(cfg.audio, backend)
        self.interaction = nn.ModuleDict(
            {str(i): InteractionBlock(cfg, backend) for i in cfg.interacting_layers()})
        self.text_encoder = HashTextEncoder(cfg.text_encoder) if cfg.text_encoder is not None else None

    def rebuild_parts(self, parts: tuple[str, ...], device: str | torch.device = "cpu",
                      dtype: torch.dtype | None = None) -> None:
        """Re-create `audio` and/or `interaction` with fresh initial weights on `device` (used when a
        checkpoint provides only the video tower)."""
        backend = resolve(self.attention)
        with torch.device(device):
            if "audio" in parts:
                self.audio = AudioTower(self.cfg.audio, backend)
            if "interaction" in parts:
                self.interaction = nn.ModuleDict(
                    {str(i): InteractionBlock(self.cfg, backend) for i in self.cfg.interacting_layers()})
            if "video" in parts:
                self.video = WanVideoTower(self.cfg.video, backend)
        if dtype is not None:
            for name in parts:
                getattr(self, name).to(dtype)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
                cond: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(video, audio, t_video, t_audio, cond)
        v, grid = self.video.embed(video)                                      # [B, Lv, Cv]
        ev, ev0 = self.video.embed_time(t_video.float() * TIMESTEP_SCALE)      # [B, Tv, Cv], [B, Tv, 6, Cv]
        v_ctx = self.video.embed_text(cond.video_context)
        v_rope = self.video.rope(grid, v.device)

        ref = cond.ref_audio
        tr, ta = (0 if ref is None else ref.shape[-1]), audio.shape[-1]
        a = self.audio.embed(audio, ref, cond.transcript)                       # [B, Tr + Ta, Ca]
        t_tokens = torch.cat([t_audio.new_zeros(t_audio.shape[0], tr), t_audio.float()], dim=1)
        ea, ea0 = self.audio.embed_time(t_tokens * TIMESTEP_SCALE)              # [B, L, Ca], [B, L, 6, Ca]
        _, ctx_e0 = self.audio.embed_time(t_audio.float().mean(1, keepdim=True) * TIMESTEP_SCALE)
        a_ctx = self.audio.embed_text(cond.audio_context)
        a_rope = self.audio.rope(tr + ta, a.device)

        plan = AlignmentPlan.build(self.cfg, grid, ta, v.device) if len(self.interaction) else None
        for i, (vblock, ablock) in enumerate(zip(self.video.blocks, self.audio.blocks)):
            cancel.check()  # a cancel lands within one layer, even when one step takes minutes
            v = vblock(v, ev0, grid, v_rope, v_ctx)
            a, a_ctx = ablock(a, a_ctx, ea0, ctx_e0, a_rope)
            if str(i) in self.interaction:
                v, target, ref_tok = self.interaction[str(i)](v, a[:, tr:], a[:, :tr], plan)
                a = torch.cat([ref_tok, target], dim=1)

        video_out = self.video.unpatchify(self.video.head(v, ev, grid), grid)      # [B, 48, Tv, H, W]
        audio_out = self.audio.head(a[:, tr:], ea[:, tr:]).transpose(1, 2)        # [B, C_a, Ta]
        return video_out, audio_out

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
        for name, (got, want) in expected.items():
            if got != want:
                raise ValueError(f"{name} has shape/batch {got}, expected {want}")
