"""What one denoiser pass switches off: the structural flags of a guidance pass.

Shared by the sampler (which plans passes) and the model (which runs them); plain data, no torch.
Harmony's own passes (joint, uncond, SyncCFG anchors) use the default, everything on. UniAVGen's guidance
(MA-CFG + skip-layer guidance, `../shared/reference/uniavgen.md` §7) switches the interaction off
(`zero_con`), one direction of it (`no_a2v` / `no_v2a`) or whole layers (`slg`).

How the reference's forward arguments map (`wan/modules/model.py::WanModel.forward`, read at 6d9a41b):
- `zero_con=True` only sets `no_a2v = no_v2a = True` (nothing else): `PassFlags(a2v=False, v2a=False)`;
- `no_a2v` / `no_v2a` multiply that direction's residual by 0; the modules still run there because V2A reads
  A2V's face mask. Skipping a direction's residual is the same numbers (x + 0 = x);
- `slg=k` with k > 0 skips layer k whole: its audio block, its video block and the interaction at k
  (`skip_blocks=(k,)`); `slg <= 0` skips nothing (`from_reference`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PassFlags:
    """a2v: audio-to-video interaction on; v2a: video-to-audio on (Harmony's global style alignment, which
    carries video into the reference-audio tokens, counts as v2a); skip_blocks: layer indices skipped whole
    (the video block, the audio block and that layer's interaction: the residual streams pass unchanged)."""

    a2v: bool = True
    v2a: bool = True
    skip_blocks: tuple[int, ...] = ()

    @property
    def plain(self) -> bool:
        return self.a2v and self.v2a and not self.skip_blocks

    @property
    def interaction(self) -> bool:
        """True when at least one direction of the interaction is on."""
        return self.a2v or self.v2a

    def without_interaction(self) -> PassFlags:
        return PassFlags(a2v=False, v2a=False, skip_blocks=self.skip_blocks)

    @classmethod
    def from_reference(cls, zero_con: bool = False, no_a2v: bool = False, no_v2a: bool = False,
                       slg: int = -1) -> PassFlags:
        """The flags of UniAVGen's forward keywords (`zero_con`, `no_a2v`, `no_v2a`, `slg`)."""
        off = bool(zero_con)
        return cls(a2v=not (off or no_a2v), v2a=not (off or no_v2a), skip_blocks=(int(slg),) if slg > 0 else ())


PLAIN = PassFlags()
