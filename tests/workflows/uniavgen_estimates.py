"""Memory and time per clip of the UniAVGen workflows at full size, computed from shapes (nothing runs, nothing is
measured): the tables of docs/uniavgen.md. `python tests/workflows/uniavgen_estimates.py` prints them.

Memory: the weights' bytes (the full-size model built on the meta device; the Wan2.2 VAE and the vocoder at
their released sizes) and `HarmonyPipeline.memory_plan`, the budget HarmonySampler / HarmonyDecode check before
they load anything (the widest sampling step's activations, the sampler's latent copies, the decode's pixel
buffers). Time: the FLOPs of one forward of our implementation (the matmuls and attention products of the two
towers and the 15 + 15 interaction modules; embeddings, norms, RoPE and the face-mask head are left out, < 2 %),
times the forwards of 50 steps of MA-CFG (cond + uncond, the uncond skipping one block), at an assumed sustained
throughput.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from harmony_core.codecs.uniavgen.codec import UniAVGenAudioCodec
from harmony_core.codecs.uniavgen.vocoder import OmniBigVGAN
from harmony_core.codecs.wan.codec import WanVideoCodec
from harmony_core.codecs.wan.vae import WanVAE, WanVAEConfig
from harmony_core.config import HarmonyConfig, preset
from harmony_core.model.load import build_empty
from harmony_core.pipeline import HarmonyPipeline, Media, Request

GIB = 1024 ** 3
STEPS, FRAMES, FPS = 50, 81, "16"
VOICE_SECONDS = 3.24                 # the example voice (RAVG reference, A2V driving speech)
TRANSCRIPT_IDS = 64                  # a sentence of about 60 characters
CAPTION_ROWS = 512                   # ComfyUI's umT5 output: 512 rows (zeros after the prompt)
THROUGHPUT = {"H100 SXM (989 TFLOP/s bf16 dense)": 989e12, "A100 (312 TFLOP/s bf16 dense)": 312e12}
UTILISATION = 0.4                    # assumed sustained fraction of the peak
TASKS = ("AVG (talking head)", "RAVG (with a voice)", "A2V (lip-sync)", "V2A (foley)")
SIZES = ((1312, 736), (736, 736))


def params(module_factory: object) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in module_factory().parameters())


def weights() -> dict[str, int]:
    return {"DiT": params(lambda: build_empty(preset("uniavgen"))), "Wan2.2 VAE": params(lambda: WanVAE(WanVAEConfig())),
            "vocoder": params(OmniBigVGAN)}


def pipeline() -> HarmonyPipeline:
    """The full-size model on the meta device with codecs of the released latent layouts (toy widths)."""
    toy = WanVAEConfig(dim=4, dec_dim=4, z_dim=48, dim_mult=(1, 2, 2, 2), num_res_blocks=1,
                       temperal_downsample=(False, True, True))
    return HarmonyPipeline(build_empty(preset("uniavgen")), WanVideoCodec.random(toy), UniAVGenAudioCodec.random())


def request(task: str, width: int, height: int) -> Request:
    h, w = height // 16, width // 16
    voice = torch.zeros(1, 80, math.ceil((VOICE_SECONDS + 0.3) * 100))
    image = torch.zeros(1, 48, 1, h, w)
    media = {"AVG (talking head)": Media(image_latent=image),
             "RAVG (with a voice)": Media(image_latent=image, ref_audio_latent=voice),
             "A2V (lip-sync)": Media(image_latent=image, audio_latent=voice[..., :324]),
             "V2A (foley)": Media(video_latent=torch.zeros(1, 48, 21, h, w))}[task]
    mode = {"A2V (lip-sync)": "audio_driven", "V2A (foley)": "video_driven"}.get(task, "joint")
    return Request(mode=mode, num_frames=FRAMES, width=width, height=height, fps=FPS, media=media)


@dataclass(frozen=True)
class Tokens:
    video: int        # video tokens of one row (the reference frame included)
    per_frame: int    # tokens of one latent frame
    audio: int        # audio tokens (target mel frames)
    ref: int          # prepended reference-voice mel frames


def _linear(n: int, c_in: int, c_out: int) -> int:
    return 2 * n * c_in * c_out


def _attention(queries: int, keys: int, width: int) -> int:
    return 4 * queries * keys * width


def forward_flops(cfg: HarmonyConfig, t: Tokens, blocks: int) -> int:
    """One forward over `blocks` of the towers' blocks (all interaction layers kept)."""
    v, a = cfg.video, cfg.audio
    n, c = t.video, v.dim
    video = (4 * _linear(n, c, c) + _attention(n, n, c) + 2 * _linear(n, c, c) + 2 * _linear(CAPTION_ROWS, c, c)
             + _attention(n, CAPTION_ROWS, c) + 2 * _linear(n, c, v.ffn_dim))
    m, d = t.audio + t.ref, a.dim
    audio = (4 * _linear(m, d, d) + _attention(m, m, d) + 2 * _linear(m, d, d) + 2 * _linear(TRANSCRIPT_IDS, d, d)
             + _attention(m, TRANSCRIPT_IDS, d) + 2 * _linear(m, d, a.ffn_dim))
    lv = n - t.per_frame                                              # the reference frame takes no part
    a2v = 2 * _linear(lv, c, c) + 2 * _linear(t.audio, d, c) + _attention(lv, 51, c)
    v2a = 2 * _linear(t.audio, d, d) + 2 * _linear(lv, c, d) + _attention(t.audio, t.per_frame, d)
    return blocks * (video + audio) + len(cfg.interacting_layers()) * (a2v + v2a)


def clip_flops(cfg: HarmonyConfig, t: Tokens) -> int:
    """50 MA-CFG steps: a cond forward and an uncond forward that skips one block."""
    layers = cfg.video.num_layers
    return STEPS * (forward_flops(cfg, t, layers) + forward_flops(cfg, t, layers - len(cfg.defaults.macfg_skip_blocks)))


def rows() -> list[dict]:
    pipe, cfg = pipeline(), preset("uniavgen")
    out = []
    for width, height in SIZES:
        per_frame = (height // 32) * (width // 32)
        for task in TASKS:
            req = request(task, width, height)
            plan = pipe.memory_plan(req, element_size=2)
            lay = pipe.layout(pipe.resolve(req))
            ref = req.media.ref_audio_latent.shape[-1] if req.media.ref_audio_latent is not None else 0
            flops = clip_flops(cfg, Tokens((lay.video_frames + 1) * per_frame, per_frame, lay.audio_frames, ref))
            out.append({"size": f"{width}x{height}", "task": task, "sampling": plan.sampling / GIB,
                        "decode": plan.decode / GIB, "pflop": flops / 1e15,
                        **{gpu: flops / (peak * UTILISATION) for gpu, peak in THROUGHPUT.items()}})
    return out


def markdown() -> str:
    w = weights()
    lines = ["| weights | parameters | bf16 |", "|---|---:|---:|"]
    lines += [f"| {name} | {n:,} | {2 * n / GIB:.2f} GiB |" for name, n in w.items()]
    resident = 2 * sum(w.values()) / GIB   # the DiT and both codecs are on the GPU while sampling
    gpus = list(THROUGHPUT)
    lines += ["", "| size | task | sampling budget | with the weights | decode budget | PFLOP per clip | "
              + " | ".join(g.split(" (")[0] + " s" for g in gpus) + " |",
              "|---|---|---:|---:|---:|---:|" + "---:|" * len(gpus)]
    for r in rows():
        times = " | ".join(f"{r[g]:.0f}" for g in gpus)
        lines.append(f"| {r['size']} | {r['task']} | {r['sampling']:.2f} GiB | {r['sampling'] + resident:.1f} GiB | "
                     f"{r['decode']:.2f} GiB | {r['pflop']:.1f} | {times} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())  # noqa: T201
