"""The Harmony node pack: V3 nodes registered through `HarmonyExtension` (see ../__init__.py)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .adapters import examples, paths


class HarmonyExtension(ComfyExtension):
    async def on_load(self) -> None:
        paths.register()
        examples.install()
        from .adapters import progress  # torch and ComfyUI's model management: only once loading

        progress.register_cancel()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .conditioning import (
            HarmonyAudioCondition,
            HarmonyConditioning,
            HarmonyReferenceImage,
            HarmonyTextEncode,
            HarmonyVideoCondition,
        )
        from .guider import HarmonySyncCFGGuider
        from .loaders import HarmonyCodecLoader, HarmonyModelLoader
        from .media import HarmonyDecode, HarmonyMux, HarmonySaveAV
        from .sampling import HarmonySampler
        from .takes import HarmonyBestOfTakes, HarmonySyncScore

        return [
            HarmonyModelLoader,
            HarmonyCodecLoader,
            HarmonyTextEncode,
            HarmonyConditioning,
            HarmonyAudioCondition,
            HarmonyVideoCondition,
            HarmonyReferenceImage,
            HarmonySampler,
            HarmonyBestOfTakes,
            HarmonyDecode,
            HarmonyMux,
            HarmonySaveAV,
            HarmonySyncScore,
            HarmonySyncCFGGuider,
        ]
