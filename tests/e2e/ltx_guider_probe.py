"""HarmonySyncCFGGuider inside a real ComfyUI, in-process, on a tiny random LTXAV built from ComfyUI's classes.

Run by test_e2e_ltx_guider.py with ComfyUI's interpreter (COMFYUI_PYTHON):
    python ltx_guider_probe.py <COMFYUI_DIR> <out.json>
It imports the pack as ComfyUI does, builds a 2-layer LTXAV (model_base.LTXAV via supported_models.LTXAV), a
tiny LTX video VAE and a tiny LTX audio VAE (comfy.sd.VAE from random state dicts), runs CFGGuider and the
guider through core's SamplerCustomAdvanced node on joint / audio-driven / video-driven latents, and records
every diffusion-model call (batch, per-token timesteps, the x it was given, A/V cross-attention switches) and
every VAE call. The facts go to <out.json>; the test asserts on them. ComfyUI code is imported, never copied.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

import torch

COMFY = Path(sys.argv[1]).resolve()
OUT = Path(sys.argv[2])
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(COMFY))
torch.set_num_threads(1)

from comfy.cli_args import args  # noqa: E402  (ComfyUI is on sys.path only now)

args.cpu = True
import comfy.model_base  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.nested_tensor  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.sd  # noqa: E402
import comfy.supported_models  # noqa: E402
from comfy.ldm.lightricks.vae.audio_vae import AudioVAE  # noqa: E402
from comfy.ldm.lightricks.vae.causal_video_autoencoder import VideoVAE  # noqa: E402
from comfy_extras import nodes_custom_sampler as custom  # noqa: E402
from comfy_extras import nodes_lt  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
CPU = torch.device("cpu")
VIDEO = (1, 128, 3, 2, 3)  # [B, Cv, T, h, w]: 17 frames of 64x96 pixels
AUDIO = (1, 8, 10, 16)  # [B, Ca, Ta, F]: 0.4 s
SIGMAS = torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0])  # 4 steps
STEPS = SIGMAS.numel() - 1
MODEL_CONFIG = dict(image_model="ltxav", in_channels=128, audio_in_channels=128, cross_attention_dim=16,
                    audio_cross_attention_dim=16, attention_head_dim=8, audio_attention_head_dim=8,
                    num_attention_heads=2, audio_num_attention_heads=2, caption_channels=32, num_layers=2,
                    connector_attention_head_dim=8, connector_num_attention_heads=2, connector_num_layers=1)
VIDEO_VAE_CONFIG = {
    "dims": 3, "in_channels": 3, "out_channels": 3, "latent_channels": 128, "patch_size": 4,
    "encoder_blocks": [["res_x", {"num_layers": 1}]] + [["compress_all_res", {"multiplier": 1}]] * 3,
    "decoder_blocks": [["res_x", {"num_layers": 1, "inject_noise": False}]]
    + [["compress_all", {"residual": True, "multiplier": 1}]] * 3
    + [["res_x", {"num_layers": 1, "inject_noise": False}]],
    "encoder_base_channels": 8, "decoder_base_channels": 8, "norm_layer": "pixel_norm",
    "latent_log_var": "uniform", "causal_decoder": False, "timestep_conditioning": False}
AUDIO_VAE_CONFIG = {
    "audio_vae": {"model": {"params": {"sampling_rate": 16000, "ddconfig": {
        "double_z": True, "mel_bins": 64, "z_channels": 8, "resolution": 256, "downsample_time": False,
        "in_channels": 2, "out_ch": 2, "ch": 8, "ch_mult": [1, 2, 4], "num_res_blocks": 1, "attn_resolutions": [],
        "dropout": 0.0, "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"}}},
        "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160}}},
    "vocoder": {"resblock_kernel_sizes": [3], "upsample_rates": [5, 4, 2, 2, 2],
                "upsample_kernel_sizes": [10, 8, 4, 4, 4], "resblock_dilation_sizes": [[1, 3, 5]],
                "upsample_initial_channel": 32, "stereo": True}}


def load_pack():
    spec = importlib.util.spec_from_file_location("harmony_pack", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["harmony_pack"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("harmony_pack.nodes.guider"), importlib.import_module(
        "harmony_pack.nodes.adapters.ltx_anchors")


def randomize(tensors: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in tensors.items()}
    for k in out:
        if "std-of-means" in k:
            out[k] = out[k].abs() + 0.5
    return out


def build_model():
    config = comfy.supported_models.LTXAV(dict(MODEL_CONFIG))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    g = torch.Generator().manual_seed(0)
    for p in model.diffusion_model.parameters():
        p.data = torch.randn(p.shape, generator=g) * 0.05
    return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)


def build_vaes():
    video_sd = randomize(VideoVAE(config=VIDEO_VAE_CONFIG).state_dict(), 1)
    vae = comfy.sd.VAE(sd=video_sd, metadata={"config": json.dumps({"vae": VIDEO_VAE_CONFIG})})
    meta = {"config": json.dumps(AUDIO_VAE_CONFIG)}
    audio_sd = {("audio_vae." + k[len("autoencoder."):] if k.startswith("autoencoder.") else k): v
                for k, v in randomize(AudioVAE(meta).state_dict(), 2).items()}
    return vae, comfy.sd.VAE(sd=audio_sd, metadata=meta)


class Recorder:
    """Wraps the diffusion model's forward: what each call was given, as ComfyUI's apply_model hands it over."""

    def __init__(self, patcher):
        self.calls = []
        self.on = True
        model = patcher.model.diffusion_model
        forward = model.forward

        def record(x, timestep, context, *a, transformer_options=None, **kw):
            if self.on:
                video_t, audio_t = timestep if isinstance(timestep, (tuple, list)) else (timestep, timestep)
                opts = transformer_options or {}
                self.calls.append({"batch": x[0].shape[0], "video": x[0].detach().clone(),
                                   "audio": x[1].detach().clone(),
                                   "t_video": video_t.reshape(x[0].shape[0], -1).float().clone(),
                                   "t_audio": audio_t.reshape(x[0].shape[0], -1).float().clone(),
                                   "sigma": round(float(opts["sigmas"].reshape(-1)[0]), 6),
                                   "severed": opts.get("a2v_cross_attn") is False,
                                   "stg": bool(opts.get("stg_self_attn_blocks"))})
            return forward(x, timestep, context, *a, transformer_options=transformer_options, **kw)

        model.forward = record


class VaeCounter:
    def __init__(self, *vaes):
        self.count = {"encode": 0, "decode": 0}
        for vae in vaes:
            for name in self.count:
                setattr(vae, name, self._wrap(name, getattr(vae, name)))

    def _wrap(self, name, fn):
        def call(*a, **kw):
            self.count[name] += 1
            return fn(*a, **kw)
        return call

    def take(self) -> dict:
        out, self.count = dict(self.count), {"encode": 0, "decode": 0}
        return out


def joint_latent(video_mask=None, audio_mask=None) -> dict:
    g = torch.Generator().manual_seed(3)
    video, audio = torch.randn(VIDEO, generator=g), torch.randn(AUDIO, generator=g)
    out = {"samples": comfy.nested_tensor.NestedTensor((video, audio))}
    if video_mask is not None or audio_mask is not None:
        out["noise_mask"] = comfy.nested_tensor.NestedTensor((
            torch.ones(VIDEO) if video_mask is None else video_mask,
            torch.ones(AUDIO) if audio_mask is None else audio_mask))
    return out


A2V = {"audio_mask": torch.zeros(AUDIO)}  # the supplied voice kept: a zero noise mask
V2A = {"video_mask": torch.zeros(VIDEO)}
I2V = {"video_mask": torch.ones(VIDEO).index_fill(2, torch.tensor([0]), 0.0)}  # frame 0 given (in place)


class Probe:
    def __init__(self):
        self.guider_node, self.anchors = load_pack()
        self.model = build_model()
        self.vae, self.audio_vae = build_vaes()
        self.recorder = Recorder(self.model)
        self.vaes = VaeCounter(self.vae, self.audio_vae)
        g = torch.Generator().manual_seed(4)
        self.positive = [[torch.randn(1, 7, 64, generator=g), {"frame_rate": 25.0}]]
        self.negative = [[torch.randn(1, 7, 64, generator=g), {"frame_rate": 25.0}]]
        self.image = torch.rand(1, 70, 90, 3, generator=g)  # resized to 64x96 by the guider

    def guider(self, model=None, **widgets):
        inputs = dict(video_scale=3.0, audio_scale=2.0, cfg=2.5, sync_start=0.0, sync_end=1.0,
                      audio_vae=self.audio_vae, vae=self.vae, image=self.image)
        inputs.update(widgets)
        node = self.guider_node.HarmonySyncCFGGuider
        return node.execute(model=model or self.model, positive=self.positive, negative=self.negative,
                            **inputs).result[0]

    def cfg_guider(self, cfg, model=None):
        return custom.CFGGuider.execute(model or self.model, self.positive, self.negative, cfg).result[0]

    def sample(self, guider, latent, sampler="euler"):
        self.recorder.calls = []
        out = custom.SamplerCustomAdvanced.execute(custom.Noise_RandomNoise(42), guider,
                                                   comfy.samplers.sampler_object(sampler), SIGMAS, latent).result
        return out[0]["samples"].unbind(), out[1]["samples"].unbind(), list(self.recorder.calls)

    def expected_anchors(self) -> dict:
        """The anchors the adapter builds (ltx_anchors), in the model's latent space, as the model must see them."""
        process = self.model.model.process_latent_in
        return {"mute": process(self.anchors.mute_audio(self.audio_vae, AUDIO[1:])),
                "static": process(self.anchors.static_video(self.vae, self.image, VIDEO[1:]))}

    def reference_anchors(self) -> dict:
        """The same anchors computed here independently: 3 s of stereo silence encoded and cut; the picture
        resized and held for all 17 frames, encoded."""
        silence = torch.zeros(1, 3 * self.audio_vae.audio_sample_rate, 2)
        pixels = self.anchors.fit_image(self.image, 64, 96)
        return {"mute": self.audio_vae.encode(silence)[:, :, :AUDIO[2]].float(),
                "static": self.vae.encode(pixels.repeat(17, 1, 1, 1)).float()}


def describe(calls, latent, anchors, process) -> list[list[dict]]:
    """Model calls grouped per step (by sigma): batch, the distinct timesteps of each row, what the inputs were
    (the step's joint input, the given latent, the anchors) and which A/V switches were set."""
    video, audio = (process(t) for t in latent["samples"].unbind())  # the model's latent space
    steps: dict[float, list] = {}
    for c in calls:
        steps.setdefault(c["sigma"], []).append(c)
    out = []
    for group in steps.values():
        joint = group[0]
        out.append([{
            "batch": c["batch"], "severed": c["severed"], "stg": c["stg"],
            "t_video": [sorted({round(v, 6) for v in row.tolist()}) for row in c["t_video"]],
            "t_audio": [sorted({round(v, 6) for v in row.tolist()}) for row in c["t_audio"]],
            "video_is_joint": torch.equal(c["video"][:1], joint["video"][:1]),
            "audio_is_joint": torch.equal(c["audio"][:1], joint["audio"][:1]),
            "audio_is_mute": torch.equal(c["audio"][:1], anchors["mute"]),
            "video_is_static": torch.equal(c["video"][:1], anchors["static"]),
            "audio_is_given": torch.equal(c["audio"][:1], audio),
            "video_is_given": torch.equal(c["video"][:1], video),
        } for c in group])
    return out


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def graphs(p: Probe, anchors: dict) -> dict:
    """Calls per step, their timesteps and inputs, for the joint / audio-driven / video-driven graphs."""
    out = {}
    cases = {
        "joint": (joint_latent(), {}),
        "joint_cfg1": (joint_latent(), {"cfg": 1.0}),
        "audio_driven": (joint_latent(**A2V), {"vae": None, "image": None}),
        "video_driven": (joint_latent(**V2A), {"audio_vae": None, "image": None}),
        "joint_range": (joint_latent(), {"sync_start": 0.5}),
        "joint_no_image": (joint_latent(), {"image": None}),
        "image_to_video": (joint_latent(**I2V), {"image": None}),
    }
    process = p.model.model.process_latent_in
    for name, (latent, widgets) in cases.items():
        p.vaes.take()
        _, _, calls = p.sample(p.guider(**widgets), latent)
        vae_calls = p.vaes.take()
        if name in ("video_driven", "image_to_video"):  # the still is the given frame 0, decoded
            frame = p.anchors.frame0_images(p.vae, latent["samples"].unbind()[0])
            anchors = {**anchors, "static": process(p.anchors.static_video(p.vae, frame, VIDEO[1:]))}
        out[name] = {"steps": describe(calls, latent, anchors, process), "vae_calls": vae_calls}
    _, _, calls = p.sample(p.cfg_guider(2.5), joint_latent())
    out["cfg_guider"] = {"steps": describe(calls, joint_latent(), anchors, process)}
    return out


def equalities(p: Probe) -> dict:
    """Scales at 1 against CFGGuider, frozen streams, post-CFG patches, anchors, cache."""
    res = {}
    for name, latent, cfg in (("joint_cfg2.5", joint_latent(), 2.5), ("joint_cfg1", joint_latent(), 1.0),
                              ("audio_driven_cfg2.5", joint_latent(**A2V), 2.5)):
        ours = p.sample(p.guider(video_scale=1.0, audio_scale=1.0, cfg=cfg, audio_vae=None, vae=None), latent)
        core = p.sample(p.cfg_guider(cfg), latent)
        res[f"scales1_equal_cfgguider_{name}"] = same(ours[0], core[0]) and same(ours[1], core[1])
    given = joint_latent(**A2V)["samples"].unbind()
    for sampler in ("euler", "dpmpp_2m"):
        ours = p.sample(p.guider(), joint_latent(**A2V), sampler)
        core = p.sample(p.cfg_guider(2.5), joint_latent(**A2V), sampler)
        res[f"a2v_{sampler}_audio_equals_cfgguider"] = torch.equal(ours[0][1], core[0][1])
        res[f"a2v_{sampler}_audio_equals_given"] = torch.equal(ours[0][1], given[1])
        res[f"a2v_{sampler}_denoised_audio_equals_given"] = torch.equal(ours[1][1], given[1])
        res[f"a2v_{sampler}_video_differs_from_cfgguider"] = not torch.equal(ours[0][0], core[0][0])
    given = joint_latent(**V2A)["samples"].unbind()
    ours = p.sample(p.guider(), joint_latent(**V2A), "dpmpp_2m")
    res["v2a_dpmpp_2m_video_equals_given"] = torch.equal(ours[0][0], given[0])
    res["v2a_dpmpp_2m_denoised_video_equals_given"] = torch.equal(ours[1][0], given[0])
    plain = p.sample(p.guider(), joint_latent())
    for patch, model in (("modality", nodes_lt.LTXVModalityGuidance.execute(p.model, 3.0, 0.0, 1.0).result[0]),
                         ("stg", nodes_lt.LTXVSpatioTemporalGuidance.execute(p.model, 1.5, "0", 0.0, 1.0)
                          .result[0])):
        patched = p.sample(p.guider(model=model), joint_latent())
        res[f"{patch}_changes_output"] = not same(patched[0], plain[0])
        res[f"{patch}_calls_per_step"] = len(patched[2]) / STEPS
        res[f"{patch}_flagged_calls"] = sum(c["severed"] or c["stg"] for c in patched[2])
    return res


def anchor_facts(p: Probe) -> dict:
    """The adapter's anchors against independent encodings (equal up to fp32 rounding of differently sized
    convolutions), against the zero latent and a tiled frame 0; no VAE call once cached."""
    mute = p.anchors.mute_audio(p.audio_vae, AUDIO[1:])
    static = p.anchors.static_video(p.vae, p.image, VIDEO[1:])
    reference = p.reference_anchors()
    p.vaes.take()
    p.sample(p.guider(), joint_latent())
    return {
        "mute_vs_silence_encoding_max_diff": float((mute - reference["mute"]).abs().max()),
        "mute_vs_zero_latent_mean_diff": float(mute.abs().mean()),
        "static_vs_still_clip_encoding_max_diff": float((static - reference["static"]).abs().max()),
        "static_mean_abs": float(static.abs().mean()),
        "static_vs_tiled_frame0_max_diff": float((static - static[:, :, :1].expand_as(static)).abs().max()),
        "vae_calls_when_cached": p.vaes.take(),
    }


def errors(p: Probe) -> dict:
    import types

    def message(fn) -> str:
        try:
            fn()
        except ValueError as err:
            return str(err)
        return ""

    fake = {name: types.SimpleNamespace(model=object.__new__(getattr(comfy.model_base, name)))
            for name in ("LTXV", "MiniMaxH3", "WAN21")}
    plain_latent = {"samples": torch.zeros(1, 128, 3, 2, 3)}
    return {
        **{f"model_{name}": message(lambda m=m: p.guider(model=m)) for name, m in fake.items()},
        "audio_vae_is_video_vae": message(lambda: p.guider(audio_vae=p.vae)),
        "vae_is_audio_vae": message(lambda: p.guider(vae=p.audio_vae)),
        "no_audio_vae": message(lambda: p.sample(p.guider(audio_vae=None), joint_latent())),
        "no_vae": message(lambda: p.sample(p.guider(vae=None), joint_latent())),
        "video_only_latent": message(lambda: p.sample(p.guider(), plain_latent)),
    }


def timings(p: Probe, takes: int = 7) -> dict:
    """Best-of wall time of SamplerCustomAdvanced (4 steps) per graph: CFGGuider(2.5) vs the guider."""
    out = {}
    p.recorder.on = False
    for name, extra in (("joint", {}), ("audio_driven", A2V), ("video_driven", V2A)):
        best = {"cfg_guider": float("inf"), "synccfg": float("inf")}
        for _ in range(takes):
            for kind, guider in (("cfg_guider", p.cfg_guider(2.5)), ("synccfg", p.guider())):
                start = time.perf_counter()
                p.sample(guider, joint_latent(**extra))
                best[kind] = min(best[kind], time.perf_counter() - start)
        out[name] = {**best, "ratio": best["synccfg"] / best["cfg_guider"]}
    p.recorder.on = True
    return out


@torch.inference_mode()  # as ComfyUI runs nodes
def main() -> None:
    p = Probe()
    anchors = p.expected_anchors()
    facts = {"graphs": graphs(p, anchors), "anchors": anchor_facts(p)}
    facts["equalities"] = equalities(p)
    facts["errors"] = errors(p)
    facts["timings"] = timings(p)
    facts["sigma_t"] = [float(p.model.model.model_sampling.timestep(s)) for s in SIGMAS[:-1]]
    OUT.write_text(json.dumps(facts, indent=1))


if __name__ == "__main__":
    main()
