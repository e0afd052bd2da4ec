"""Harmony for ComfyUI: synchronized audio + video generation (arXiv 2511.21579) as a V3 node pack.

ComfyUI imports this file as a package and awaits `comfy_entrypoint()`; the nodes (and torch, harmony_core)
are imported only then. `WEB_DIRECTORY` serves the small frontend extension in web/.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():  # noqa: ANN201 (a typed return would import ComfyUI when the pack is imported)
    from .nodes import HarmonyExtension

    return HarmonyExtension()
