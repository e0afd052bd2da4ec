"""Model folders: `models/harmony` for Harmony checkpoints, ComfyUI's `models/vae` for the codec files.

`extra_model_paths.yaml` is read by ComfyUI before packs load; a `harmony:` entry there creates the folder
name with an empty extension set (any file). Registration keeps those paths, appends the default
`<models_dir>/harmony`, and narrows the accepted files to `.safetensors` (the only format the pack loads).
"""

from __future__ import annotations

import os

import folder_paths

HARMONY_FOLDER = "harmony"
CODEC_FOLDER = "vae"
EXTENSIONS = {".safetensors"}


def register() -> None:
    """Make `harmony` a model folder name (idempotent)."""
    default = os.path.join(folder_paths.models_dir, HARMONY_FOLDER)
    folder_paths.add_model_folder_path(HARMONY_FOLDER, default)
    paths = folder_paths.folder_names_and_paths[HARMONY_FOLDER][0]
    folder_paths.folder_names_and_paths[HARMONY_FOLDER] = (paths, set(EXTENSIONS))


def harmony_files() -> list[str]:
    """Checkpoint files under every `harmony` folder (relative names, as ComfyUI lists them)."""
    register()
    return folder_paths.get_filename_list(HARMONY_FOLDER)


def codec_files() -> list[str]:
    """`.safetensors` files under ComfyUI's `vae` folders (Wan2.2 VAE, MMAudio VAE, BigVGAN vocoder)."""
    return [
        f
        for f in folder_paths.get_filename_list(CODEC_FOLDER)
        if os.path.splitext(f)[1].lower() in EXTENSIONS
    ]


def full_path(folder: str, name: str, input_name: str) -> str:
    """Absolute path of a listed file; a name that is no longer there raises naming the input."""
    if folder == HARMONY_FOLDER:
        register()
    path = folder_paths.get_full_path(folder, name)
    if path is None:
        raise ValueError(
            f"{input_name}: {name!r} is not in models/{folder} (or an extra_model_paths folder for "
            f"'{folder}'); put the file there and refresh, or pick another"
        )
    return path
