"""Model folders: `models/harmony` for Harmony and UniAVGen checkpoints, ComfyUI's `models/vae` for the codec files.

`extra_model_paths.yaml` is read by ComfyUI before packs load; a `harmony:` entry there creates the folder
name with an empty extension set (any file). Registration keeps those paths, appends the default
`<models_dir>/harmony`, and narrows the accepted files to `.safetensors` (the only format the pack loads).

Besides files, two kinds of folders are offered, named by their path relative to the model folder with a
trailing "/":
- a sharded checkpoint (a diffusers `*.safetensors.index.json` beside its shards, as HF MCG-NJU/UniAVGen is
  downloaded into `models/harmony/UniAVGen/`): offered as the model, its shards and everything below it hidden;
- a vocoder folder (a transformers folder holding `model.safetensors`, UniAVGen's `code2wav_bigvgan_model/`),
  under `models/harmony` or `models/vae`: offered as a vocoder.
"""

from __future__ import annotations

import os

import folder_paths

HARMONY_FOLDER = "harmony"
CODEC_FOLDER = "vae"
EXTENSIONS = {".safetensors"}
INDEX_SUFFIX = ".safetensors.index.json"  # a diffusers-sharded checkpoint folder
VOCODER_WEIGHTS = "model.safetensors"  # what transformers' save_pretrained writes into a model folder
FOLDER = "/"  # the mark of a folder choice


def register() -> None:
    """Make `harmony` a model folder name (idempotent)."""
    default = os.path.join(folder_paths.models_dir, HARMONY_FOLDER)
    folder_paths.add_model_folder_path(HARMONY_FOLDER, default)
    paths = folder_paths.folder_names_and_paths[HARMONY_FOLDER][0]
    folder_paths.folder_names_and_paths[HARMONY_FOLDER] = (paths, set(EXTENSIONS))


def _roots(folder: str) -> list[str]:
    if folder == HARMONY_FOLDER:
        register()
    return folder_paths.get_folder_paths(folder) if folder in folder_paths.folder_names_and_paths else []


def _folders_holding(folder: str, wanted: object) -> list[str]:
    """Subfolders (relative, '/'-separated, with a trailing '/') of every `folder` root for which
    `wanted(file_names)` holds."""
    found = set()
    for root in _roots(folder):
        for dirpath, subdirs, files in os.walk(root, followlinks=True):
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            rel = os.path.relpath(dirpath, root)
            if rel != "." and wanted(files):
                found.add(rel.replace(os.sep, "/") + FOLDER)
    return sorted(found)


def checkpoint_folders() -> list[str]:
    """Sharded checkpoints under `models/harmony` (folders holding a `*.safetensors.index.json`)."""
    return _folders_holding(HARMONY_FOLDER, lambda files: any(f.endswith(INDEX_SUFFIX) for f in files))


def vocoder_folders() -> list[str]:
    """Vocoder folders (holding model.safetensors) under `models/harmony` and `models/vae`."""
    holds = lambda files: VOCODER_WEIGHTS in files  # noqa: E731
    return sorted(set(_folders_holding(HARMONY_FOLDER, holds) + _folders_holding(CODEC_FOLDER, holds)))


def harmony_files() -> list[str]:
    """Checkpoint choices under every `harmony` folder: files (relative names, as ComfyUI lists them) and
    sharded checkpoint folders; shards, files inside a checkpoint folder and vocoder weights are left out."""
    register()
    sharded = checkpoint_folders()
    vocoders = {f + VOCODER_WEIGHTS for f in vocoder_folders()}
    files = [f.replace(os.sep, "/") for f in folder_paths.get_filename_list(HARMONY_FOLDER)]
    kept = [f for f in files if f not in vocoders and not any(f.startswith(s) for s in sharded)]
    return sorted(kept + sharded)


def codec_files() -> list[str]:
    """`.safetensors` files under ComfyUI's `vae` folders (Wan2.2 VAE, MMAudio VAE, BigVGAN vocoder)."""
    return [
        f
        for f in folder_paths.get_filename_list(CODEC_FOLDER)
        if os.path.splitext(f)[1].lower() in EXTENSIONS
    ]


def _find_folder(name: str, folders: tuple[str, ...]) -> str | None:
    rel = os.path.normpath(name.rstrip(FOLDER)).lstrip(os.sep)
    if rel.startswith(".."):
        return None
    for folder in folders:
        for root in _roots(folder):
            path = os.path.join(root, rel)
            if os.path.isdir(path):
                return path
    return None


def full_path(folder: str, name: str, input_name: str, also: tuple[str, ...] = ()) -> str:
    """Absolute path of a listed file or folder choice (a folder is looked up in `folder`, then in `also`);
    a name that is no longer there raises naming the input."""
    if folder == HARMONY_FOLDER:
        register()
    if name.endswith(FOLDER):
        path = _find_folder(name, (folder, *also))
    else:
        path = folder_paths.get_full_path(folder, name)
    if path is None:
        raise ValueError(
            f"{input_name}: {name!r} is not in models/{folder} (or an extra_model_paths folder for "
            f"'{folder}'); put the file there and refresh, or pick another"
        )
    return path
