"""Conditioning tensors of one generation, batched, plus the Denoiser adapter the sampler calls."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..passes import PLAIN, PassFlags

UNIAVGEN_FILLER = -1   # UniAVGen transcripts pad with -1 (model/transcript_ids.py)


@dataclass(frozen=True)
class Conditioning:
    """video_context [B, Lv, Dv] and audio_context [B, La, Da]: caption embeddings (zero rows beyond a
    caption's length, as Wan pads); audio_context is None for a model without an audio caption (UniAVGen).
    transcript [B, Ls]: Harmony's byte ids (filler-padded), or UniAVGen's vocabulary ids (-1 filler) with
    transcript_lens [B] long: the length each row was built with (rows beyond it are batch padding, see
    `uniavgen_audio.F5Transcript`; None = every row's full width). ref_audio [B, C_a, Tr]: clean
    reference-audio latent or None. ref_image [B, Cv, 1, H, W]: the clean reference-image latent UniAVGen
    prepends to the video (`VideoConfig.ref_frame`), or None."""

    video_context: torch.Tensor
    audio_context: torch.Tensor | None
    transcript: torch.Tensor
    ref_audio: torch.Tensor | None = None
    ref_image: torch.Tensor | None = None
    transcript_lens: torch.Tensor | None = None

    @property
    def batch(self) -> int:
        return int(self.video_context.shape[0])

    def select(self, rows: torch.Tensor) -> Conditioning:
        """Rows of the batch, e.g. to stack guidance passes: [N] long -> Conditioning of batch N."""
        rows = rows.to(self.video_context.device)

        def pick(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[rows.to(t.device)]
        return Conditioning(
            video_context=self.video_context[rows],
            audio_context=None if self.audio_context is None else self.audio_context[rows],
            transcript=self.transcript[rows.to(self.transcript.device)],
            ref_audio=None if self.ref_audio is None else self.ref_audio[rows],
            ref_image=pick(self.ref_image),
            transcript_lens=pick(self.transcript_lens),
        )

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> Conditioning:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, dtype)
        return Conditioning(move(self.video_context), move(self.audio_context), self.transcript.to(device),
                            move(self.ref_audio), move(self.ref_image),
                            None if self.transcript_lens is None else self.transcript_lens.to(device))


def _pad_rows(t: torch.Tensor, length: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros(t.shape[0], length - t.shape[1], *t.shape[2:])], dim=1)


def _cat_optional(name: str, x: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor | None:
    if (x is None) != (y is None):
        raise ValueError(f"both conditionings must carry {name}, or neither")
    return None if x is None else torch.cat([x, y], dim=0)


def _stack_transcripts(a: Conditioning, b: Conditioning) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pad both transcripts to a common width: Harmony's with its filler; UniAVGen's (with lengths on
    either side) with -1, the lengths keeping each row's own numbers."""
    from .transcript import FILLER_ID

    n = max(a.transcript.shape[1], b.transcript.shape[1])
    uniavgen = a.transcript_lens is not None or b.transcript_lens is not None
    fill = UNIAVGEN_FILLER if uniavgen else FILLER_ID
    ts = [torch.cat([t, t.new_full((t.shape[0], n - t.shape[1]), fill)], 1) for t in (a.transcript, b.transcript)]
    if not uniavgen:
        return torch.cat(ts, dim=0), None
    lens = [c.transcript_lens if c.transcript_lens is not None else
            torch.full((c.batch,), c.transcript.shape[1], dtype=torch.long, device=c.transcript.device)
            for c in (a, b)]
    return torch.cat(ts, dim=0), torch.cat([x.to(lens[0].device) for x in lens])


def stack(a: Conditioning, b: Conditioning) -> Conditioning:
    """Concatenate two conditionings along the batch (padding captions/transcripts to a common length)."""
    def cat_ctx(x: torch.Tensor | None, y: torch.Tensor | None, name: str) -> torch.Tensor | None:
        if x is None or y is None:
            return _cat_optional(name, x, y)
        n = max(x.shape[1], y.shape[1])
        return torch.cat([_pad_rows(x, n), _pad_rows(y, n)], dim=0)

    transcript, lens = _stack_transcripts(a, b)
    return Conditioning(cat_ctx(a.video_context, b.video_context, "a video caption"),
                        cat_ctx(a.audio_context, b.audio_context, "an audio caption"), transcript,
                        _cat_optional("reference audio", a.ref_audio, b.ref_audio),
                        _cat_optional("a reference image", a.ref_image, b.ref_image), lens)


class HarmonyDenoiser:
    """Adapts a HarmonyModel to the sampler's Denoiser contract.

    Rows are passes stacked along the batch: row r is item r % B of pass r // B; `cond_index[r]` picks the
    positive (0) or negative (1) conditioning for that row. `flags` (keyword) switches parts of every row
    off (`passes.PassFlags`: interaction directions, skipped layers); the default runs the model as before.
    """

    def __init__(self, model: torch.nn.Module, positive: Conditioning, negative: Conditioning | None = None) -> None:
        self.model = model
        self.batch = positive.batch
        self.table = positive if negative is None else stack(positive, negative)

    def __call__(self, video: torch.Tensor, audio: torch.Tensor, t_video: torch.Tensor, t_audio: torch.Tensor,
                 cond_index: torch.Tensor, *, flags: PassFlags = PLAIN) -> tuple[torch.Tensor, torch.Tensor]:
        if int(cond_index.max()) * self.batch >= self.table.batch:
            raise ValueError("a negative pass was requested but no negative conditioning was given")
        item = torch.arange(video.shape[0], device=cond_index.device) % self.batch
        cond = self.table.select(cond_index * self.batch + item)
        if flags.plain:
            return self.model(video, audio, t_video, t_audio, cond)
        return self.model(video, audio, t_video, t_audio, cond, flags=flags)
