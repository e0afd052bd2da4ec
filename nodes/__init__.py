"""The Harmony node pack: V3 nodes registered through `HarmonyExtension` (see ../__init__.py)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .adapters import paths


class HarmonyExtension(ComfyExtension):
    async def on_load(self) -> None:
        paths.register()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .conditioning import (
            HarmonyAudioCondition,
            HarmonyConditioning,
            HarmonyReferenceImage,
            HarmonyTextEncode,
            HarmonyVideoCondition,
        )
        from .loaders import HarmonyCodecLoader, HarmonyModelLoader
        from .media import HarmonyDecode, HarmonyMux, HarmonySaveAV
        from .sampling import HarmonySampler

        return [
            HarmonyModelLoader,
            HarmonyCodecLoader,
            HarmonyTextEncode,
            HarmonyConditioning,
            HarmonyAudioCondition,
            HarmonyVideoCondition,
            HarmonyReferenceImage,
            HarmonySampler,
            HarmonyDecode,
            HarmonyMux,
            HarmonySaveAV,
        ]
