"""UniAVGen's reference sampler traces, replayed through our `sample()` (reusable test helper).

`shared/parity/uniavgen_joint/case_sampler_{joint,ravg,a2v,v2a}.safetensors` (README there) record
`UniAVGenPipeline.generate` with 4 Euler steps, shift 5, MA-CFG (macfg_prop 0.5) and SLG (layer 1): the noise,
each step's cond and uncond model inputs (latents, scalar timestep t) and outputs, the final latents, and in
`meta["calls"]` every call's flags. A `Trace` turns one case into our terms:

| reference                                        | ours                                                      |
|--------------------------------------------------|-----------------------------------------------------------|
| latent_video [1, 48, F, h, w]                    | video [B, Cv, Tv, h, w] (same layout)                     |
| latent_audio [1, T, 80] (time-major mel)         | audio [B, Ca, Ta] = its transpose(1, 2)                   |
| scalar t (Wan units) + video_cond / audio_cond   | per-frame sigma = t / 1000 on generated frames, 0 on held |
| cond frames updated by Euler, replaced at input  | held frames: the clean latent (ModeSpec.impose)           |
| output video [48, F+1, h, w] (ref frame first)   | v_video [1, 48, F, h, w] = output[:, 1:]                  |
| zero_con / no_a2v / no_v2a / slg=k               | PassFlags(a2v, v2a, skip_blocks=(k,))                     |
| cond / uncond call                               | cond_index 0 / 1 (positive / negative texts)              |

Replay (the parity test):

    trace = load_trace(parity_dir, "joint")
    denoiser = TraceDenoiser(trace)                  # checks every call, returns the recorded outputs
    video, audio = run_trace(trace, denoiser)        # our sample() with trace.guidance(), trace.sigmas()
    denoiser.finish(); trace.check_final(video, audio)

Real model (the integration test): give `TraceDenoiser` an `inner` denoiser built from the fixture's
`weights.safetensors`, e.g. `TraceDenoiser(trace, inner=HarmonyDenoiser(model, positive, negative))` with
positive = the case's `text_ids` / `context_video` (+ `ref_audio` for ravg) and negative = `neg_text_ids` /
`neg_context_video`. Every call is still checked against the recorded inputs; `inner` is then called with the
same arguments (flags as the keyword `flags=`, always), its outputs are compared to the recorded ones at
`atol/rtol` and returned, so the trajectory is the model's own. The model side must map our inputs back to the
reference's: a prepended reference frame (`trace.ref_image`; equal to the held frame 0 except in v2a), the
held frames as cond frames, and ONE audio timestep per sample that is 0 when any audio frame is held (a2v's
generated 3-frame tail is denoised at t_a = 0). `trace.cond_audio`, `trace.ref_audio`, `trace.text_ids`, ...
expose the rest of the case.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import safe_open

from harmony_core.passes import PassFlags
from harmony_core.sampling import MACFG, Guidance, ModeSpec, audio_driven, joint, sample, uniavgen_sigmas, video_driven
from harmony_core.sampling.uniavgen import TASK_IDS

FIXTURE = "uniavgen_joint"
CASES = ("joint", "ravg", "a2v", "v2a")
ATOL = RTOL = 1e-4     # README: fp32; the guidance (x3) and 4 Euler steps amplify ulp-level differences
T_RTOL = 2.5e-7        # sigma = fl(t / 1000), then * 1000 again: at most 2 float32 roundings (2^-23 relative)


class TraceMismatch(AssertionError):
    """A call or a result of our sampler differs from the reference trace (names the step and the pass)."""


def reference_flags(call: dict) -> PassFlags:
    """The PassFlags of one `meta["calls"]` entry: zero_con -> both directions off, slg=k -> skip block k."""
    zero = bool(call.get("zero_con"))
    slg = call.get("slg")
    return PassFlags(a2v=not (zero or call.get("no_a2v")), v2a=not (zero or call.get("no_v2a")),
                     skip_blocks=(int(slg),) if slg is not None and slg > 0 else ())


def close(name: str, mine: torch.Tensor, ref: torch.Tensor, atol: float = ATOL, rtol: float = RTOL) -> float:
    """Max |mine - ref|; raises TraceMismatch (with `name`) beyond atol + rtol |ref|."""
    if mine.shape != ref.shape:
        raise TraceMismatch(f"{name}: shape {tuple(mine.shape)} != reference {tuple(ref.shape)}")
    err = (mine.double() - ref.double()).abs()
    if bool((err > atol + rtol * ref.double().abs()).any()) or not bool(torch.isfinite(mine).all()):
        raise TraceMismatch(f"{name}: max abs error {err.max().item():.3e} beyond atol {atol} / rtol {rtol}")
    return float(err.max()) if err.numel() else 0.0


def exact(name: str, mine: torch.Tensor, ref: torch.Tensor) -> None:
    if not torch.equal(mine, ref):
        raise TraceMismatch(f"{name}: held (clean) values differ from the reference's condition latent")


@dataclass(frozen=True, eq=False)
class Trace:
    """One sampler case: tensors (reference layout) and meta."""

    name: str
    tensors: dict[str, torch.Tensor]
    meta: dict

    def __getattr__(self, key: str) -> torch.Tensor:
        try:
            return self.tensors[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def steps(self) -> int:
        return int(self.meta["steps"])

    @property
    def video_cond(self) -> int:
        return int(self.tensors["video_cond"])

    @property
    def audio_cond(self) -> int:
        return int(self.tensors["audio_cond"])

    def mode(self) -> ModeSpec:
        """Our mode for the case: held frames = the reference's cond frames."""
        frames, t_audio = self.noise_video.shape[2], self.noise_audio.shape[1]
        task = int(self.meta["task"])
        if task in (0, 1):
            return joint(frames, t_audio, reference=self.cond_video)
        if task == 2:
            return audio_driven(self.cond_audio.T[None], frames, reference=self.cond_video, audio_frames=t_audio)
        return video_driven(self.cond_video, t_audio)

    def guidance(self, **changes: object) -> Guidance:
        """UniAVGen guidance with the case's settings (`changes` override MACFG fields)."""
        m = self.meta
        macfg = MACFG(video_scale=m["video_guide_scale"], audio_scale=m["audio_guide_scale"],
                      macfg_fraction=m["macfg_prop"], skip_blocks=(int(m["slg"]),),
                      reference_audio=int(m["task"]) == 1)
        return Guidance(macfg=replace(macfg, **changes))

    def sigmas(self, shift: float | None = None) -> torch.Tensor:
        return uniavgen_sigmas(self.steps, float(self.meta["shift"]) if shift is None else shift)

    def noise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(video [1, 48, F, h, w], audio [1, 80, T]) in our layout."""
        return self.noise_video.clone(), self.noise_audio.transpose(1, 2).contiguous()

    def check_final(self, video: torch.Tensor, audio: torch.Tensor) -> dict[str, float]:
        """Generated frames match the reference's finals; held frames equal the condition (the reference
        re-imposes them after `generate`). Returns the max errors."""
        vc, ac = self.video_cond, self.audio_cond
        exact("final video (held frames)", video[:, :, :vc], self.cond_video[:, :, :vc])
        if ac:
            exact("final audio (held frames)", audio[:, :, :ac], self.cond_audio.T[None])
        return {"video": close("final video", video[:, :, vc:], self.final_video[:, :, vc:]),
                "audio": close("final audio", audio[:, :, ac:], self.final_audio.transpose(1, 2)[:, :, ac:])}


def load_trace(parity_dir: Path, case: str) -> Trace:
    """Load `case_sampler_<case>.safetensors` (tensors + meta) from the parity folder."""
    path = Path(parity_dir) / FIXTURE / f"case_sampler_{case}.safetensors"
    with safe_open(path, "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["meta"])
    if int(meta["task"]) not in TASK_IDS.values():
        raise ValueError(f"{path}: unknown task {meta['task']}; known: {TASK_IDS}")
    return Trace(case, tensors, meta)


class TraceDenoiser:
    """Checks every denoiser call against the trace; returns the recorded outputs (or `inner`'s, checked).

    Calls are consumed in the reference's order (per step: cond, then uncond); a call of N rows consumes N
    recorded passes, so batched passes with equal flags are fine. `errors` holds the max input error per step.
    """

    def __init__(self, trace: Trace, inner: object | None = None) -> None:
        self.trace = trace
        self.inner = inner
        self.queue = list(trace.meta["calls"])
        self.errors: dict[int, float] = {}
        self.output_errors: dict[int, float] = {}

    def __call__(self, video, audio, t_video, t_audio, cond_index, *, flags=PassFlags()):
        rows = []
        for r in range(video.shape[0]):
            if not self.queue:
                raise TraceMismatch(f"call beyond the trace: the reference made {len(self.trace.meta['calls'])}")
            call = self.queue.pop(0)
            self._check_row(call, video[r], audio[r], t_video[r], t_audio[r], int(cond_index[r]), flags)
            rows.append(call)
        if self.inner is not None:
            out_v, out_a = self.inner(video, audio, t_video, t_audio, cond_index, flags=flags)
            for r, call in enumerate(rows):
                rec_v, rec_a = self._recorded_out(call)
                err = max(close(f"step {call['step']} {call['kind']} output video", out_v[r:r + 1], rec_v),
                          close(f"step {call['step']} {call['kind']} output audio", out_a[r:r + 1], rec_a))
                self.output_errors[call["step"]] = max(self.output_errors.get(call["step"], 0.0), err)
            return out_v, out_a
        outs = [self._recorded_out(call) for call in rows]
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def finish(self) -> None:
        """Raise when the reference made calls our sampler did not."""
        if self.queue:
            raise TraceMismatch(f"{len(self.queue)} reference call(s) never made, first: {self.queue[0]}")

    def _recorded_out(self, call: dict) -> tuple[torch.Tensor, torch.Tensor]:
        key = f"step{call['step']}.{call['kind']}"
        video = self.trace.tensors[f"{key}.out_video"][None, :, 1:]   # [1, 48, F, h, w]: ref frame dropped
        audio = self.trace.tensors[f"{key}.out_audio"].transpose(1, 2)  # [1, 80, T]
        return video, audio

    def _check_row(self, call: dict, video, audio, t_video, t_audio, cond: int, flags: PassFlags) -> None:
        tr, key = self.trace, f"step{call['step']}.{call['kind']}"
        where = f"step {call['step']} {call['kind']} pass"
        if cond != (0 if call["kind"] == "cond" else 1):
            raise TraceMismatch(f"{where}: cond_index {cond} (0 = positive, 1 = negative texts)")
        if flags != reference_flags(call):
            raise TraceMismatch(f"{where}: flags {flags} != reference {reference_flags(call)} ({call})")
        vc, ac = tr.video_cond, tr.audio_cond
        t = tr.tensors[f"{key}.t"].double()
        for name, sig, held in (("t_video", t_video, vc), ("t_audio", t_audio, ac)):
            if bool((sig[:held] != 0).any()):
                raise TraceMismatch(f"{where}: {name} of held frames must be 0, got {sig[:held].tolist()}")
            close(f"{where} {name} * 1000", sig[held:].double() * 1000, t.expand(sig.shape[0] - held),
                  atol=0.0, rtol=T_RTOL)
        exact(f"{where} video", video[:, :vc], tr.cond_video[0, :, :vc])
        err_v = close(f"{where} video", video[:, vc:], tr.tensors[f"{key}.in_video"][0, :, vc:])
        if ac:
            exact(f"{where} audio", audio[:, :ac], tr.cond_audio.T)
        err_a = close(f"{where} audio", audio[:, ac:], tr.tensors[f"{key}.in_audio"].T[:, ac:])
        self.errors[call["step"]] = max(self.errors.get(call["step"], 0.0), err_v, err_a)


def run_trace(trace: Trace, denoiser: object, guidance: Guidance | None = None,
              sigmas: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Our sampler on the trace's noise and mode (Euler; guidance / sigmas default to the trace's)."""
    noise_v, noise_a = trace.noise()
    return sample(denoiser, noise_v, noise_a, trace.mode(), guidance or trace.guidance(),
                  trace.sigmas() if sigmas is None else sigmas, solver="euler")
