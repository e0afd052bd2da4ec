"""The only code of the pack that touches ComfyUI internals (folder_paths, comfy.*, comfy_api types)."""
