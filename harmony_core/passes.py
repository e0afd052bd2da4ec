"""What one denoiser pass switches off: the structural flags of a guidance pass.

Shared by the sampler (which plans passes) and the model (which runs them); plain data, no torch.
Harmony's own passes (joint, uncond, SyncCFG anchors) use the default, everything on. UniAVGen's guidance
(MA-CFG + skip-layer guidance, `../shared/reference/uniavgen.md` §7) switches the interaction off
(`zero_con`), one direction of it (`no_a2v` / `no_v2a`) or whole blocks (`slg`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PassFlags:
    """a2v: audio-to-video interaction on; v2a: video-to-audio on; skip_blocks: block indices whose
    video and audio blocks are skipped (the residual stream passes through unchanged)."""

    a2v: bool = True
    v2a: bool = True
    skip_blocks: tuple[int, ...] = ()

    @property
    def plain(self) -> bool:
        return self.a2v and self.v2a and not self.skip_blocks

    def without_interaction(self) -> PassFlags:
        return PassFlags(a2v=False, v2a=False, skip_blocks=self.skip_blocks)


PLAIN = PassFlags()
