"""Conditioning tensors of one generation, batched, plus the Denoiser adapter the sampler calls."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Conditioning:
    """video_context [B, Lv, Dv] and audio_context [B, La, Da]: caption embeddings (zero rows beyond a
    caption's length, as Wan pads); transcript [B, Ls] byte ids (filler-padded); ref_audio [B, C_a, Tr]
    clean reference-audio latent or None."""

    video_context: torch.Tensor
    audio_context: torch.Tensor
    transcript: torch.Tensor
    ref_audio: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return int(self.video_context.shape[0])

    def select(self, rows: torch.Tensor) -> Conditioning:
        """Rows of the batch, e.g. to stack guidance passes: [N] long -> Conditioning of batch N."""
        rows = rows.to(self.video_context.device)
        return Conditioning(
            video_context=self.video_context[rows],
            audio_context=self.audio_context[rows],
            transcript=self.transcript[rows.to(self.transcript.device)],
            ref_audio=None if self.ref_audio is None else self.ref_audio[rows],
        )

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> Conditioning:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, dtype)
        return Conditioning(move(self.video_context), move(self.audio_context), self.transcript.to(device),
                            move(self.ref_audio))


def _pad_rows(t: torch.Tensor, length: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros(t.shape[0], length - t.shape[1], *t.shape[2:])], dim=1)


def stack(a: Conditioning, b: Conditioning) -> Conditioning:
    """Concatenate two conditionings along the batch (padding captions/transcripts to a common length)."""
    from .transcript import FILLER_ID

    def cat_ctx(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[1], y.shape[1])
        return torch.cat([_pad_rows(x, n), _pad_rows(y, n)], dim=0)

    n = max(a.transcript.shape[1], b.transcript.shape[1])
    ts = [torch.cat([t, t.new_full((t.shape[0], n - t.shape[1]), FILLER_ID)], 1) for t in (a.transcript, b.transcript)]
    if (a.ref_audio is None) != (b.ref_audio is None):
        raise ValueError("both conditionings must carry reference audio, or neither")
    ref = None if a.ref_audio is None else torch.cat([a.ref_audio, b.ref_audio], dim=0)
    return Conditioning(cat_ctx(a.video_context, b.video_context), cat_ctx(a.audio_context, b.audio_context),
                        torch.cat(ts, dim=0), ref)


class HarmonyDenoiser:
    """Adapts a HarmonyModel to the sampler's Denoiser contract.

    Rows are passes stacked along the batch: row r is item r % B of pass r // B; `cond_index[r]` picks the
    positive (0) or negative (1) conditioning for that row.
    """

    def __init__(self, model: torch.nn.Module, positive: Conditioning, negative: Conditioning | None = None) -> None:
        self.model = model
        self.batch = positive.batch
        self.table = positive if negative is None else stack(positive, negative)

    def __call__(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
                 cond_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if int(cond_index.max()) * self.batch >= self.table.batch:
            raise ValueError("a negative pass was requested but no negative conditioning was given")
        item = torch.arange(video.shape[0], device=cond_index.device) % self.batch
        cond = self.table.select(cond_index * self.batch + item)
        return self.model(video, audio, t_video, t_audio, cond)
