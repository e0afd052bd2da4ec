"""HarmonySyncCFGGuider: Harmony's SyncCFG for ComfyUI's native LTX-2.x audio-video model, as a GUIDER for
SamplerCustomAdvanced (where CFGGuider would go).

The node checks its inputs, turns the widgets into harmony_core's `Guidance` (SyncCFG + text CFG; the same
pass plan and arithmetic HarmonySampler uses) and hands it to the adapter, which is the only code touching
ComfyUI's sampler internals (adapters/ltx_guider.py) and VAEs (adapters/ltx_anchors.py).
"""

from __future__ import annotations

import math

from comfy_api.latest import io

from ..harmony_core.sampling import Guidance, SyncCFG, TextCFG
from .validation import checked


def _float(name: str, default: float, high: float, tooltip: str) -> io.Float.Input:
    return io.Float.Input(name, default=default, min=0.0, max=high, step=0.1, round=0.01, tooltip=tooltip)


def _inputs() -> list:
    return [
        io.Model.Input("model", tooltip="The LTX-2.x audio-video model (Load Checkpoint). LoRAs and model "
                       "patches such as LTXV Modality Guidance or STG keep working."),
        io.Conditioning.Input("positive", tooltip="Positive prompt (CLIPTextEncode -> LTXVConditioning)."),
        io.Conditioning.Input("negative", tooltip="Negative prompt; used only when cfg is not 1."),
        _float("video_scale", 3.0, 10.0, "SyncCFG on the video: motion follows the audio, guided away from a "
               "mute soundtrack (1 = off; Harmony uses 3). Needs audio_vae."),
        _float("audio_scale", 2.0, 10.0, "SyncCFG on the audio: sounds follow the motion, guided away from a "
               "still video (1 = off; Harmony uses 2). Needs vae (and optionally image)."),
        _float("cfg", 1.0, 100.0, "Text CFG on both streams, as CFGGuider's cfg (1 = off, Harmony's default; "
               "the LTX-2 dev templates use 4)."),
        io.Float.Input("sync_start", default=0.0, min=0.0, max=1.0, step=0.01, round=0.01,
                       tooltip="SyncCFG starts at this fraction of the sampler's steps."),
        io.Float.Input("sync_end", default=1.0, min=0.0, max=1.0, step=0.01, round=0.01,
                       tooltip="SyncCFG ends at this fraction of the steps (outside: plain CFG, no extra pass)."),
        io.Vae.Input("audio_vae", optional=True, tooltip="The LTX-2 audio VAE (Load LTXV Audio VAE): encodes the "
                     "mute-audio anchor (silence, not the zero latent). Needed when video_scale != 1."),
        io.Vae.Input("vae", optional=True, tooltip="The LTX-2 video VAE: encodes the static-video anchor. Needed "
                     "when audio_scale != 1 and the audio is generated."),
        io.Image.Input("image", optional=True, tooltip="Picture held still for the static-video anchor (the "
                       "reference image). Without it, frame 0 of the clip is used (decoded once)."),
    ]


class HarmonySyncCFGGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="HarmonySyncCFGGuider",
            display_name="Harmony SyncCFG Guider (LTX-2)",
            category="Harmony/sampling",
            description="Harmony's synchronization guidance (SyncCFG) for ComfyUI's native LTX-2.x audio-video "
            "model: each step also runs the model with a mute soundtrack and/or a still video and guides "
            "away from them, so lips and motion follow the audio. Use with SamplerCustomAdvanced.",
            inputs=_inputs(),
            outputs=[io.Guider.Output(display_name="guider", tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    @checked
    def execute(cls, model: object, positive: list, negative: list, video_scale: float, audio_scale: float,
                cfg: float, sync_start: float, sync_end: float, audio_vae: object = None, vae: object = None,
                image: object = None) -> io.NodeOutput:
        from .adapters import ltx_anchors, ltx_guider  # ComfyUI's sampler internals: only when the node runs

        ltx_guider.check_model(model)
        if audio_vae is not None:
            ltx_anchors.check_audio_vae(audio_vae)
        if vae is not None:
            ltx_anchors.check_video_vae(vae)
        text = 1.0 if math.isclose(cfg, 1.0) else cfg  # ComfyUI skips the negative pass at cfg ~ 1
        guidance = Guidance(sync=SyncCFG(video_scale, audio_scale, sync_start, sync_end),
                            text=TextCFG(text, text))
        sources = ltx_guider.AnchorSources(audio_vae=audio_vae, vae=vae, image=image)
        guider = ltx_guider.SyncCFGGuider(model, guidance, sources)
        guider.set_conds(positive, negative)
        return io.NodeOutput(guider)
