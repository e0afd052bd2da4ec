"""Stand-in for ComfyUI's `folder_paths` (@ 783545f): model folders, the output folder and the save counter.

Paths start under a throw-away base folder (ComfyUI uses its own checkout); tests point them elsewhere with
the same module attributes and setters the real module has. Listing honours each folder's extension set (an
empty set accepts any file, as for a name first created by `add_model_folder_path`) and walks subfolders.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time

supported_pt_extensions: set[str] = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}

base_path = tempfile.mkdtemp(prefix="comfy_stub_")
models_dir = os.path.join(base_path, "models")
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {
    "checkpoints": ([os.path.join(models_dir, "checkpoints")], supported_pt_extensions),
    "vae": ([os.path.join(models_dir, "vae")], supported_pt_extensions),
    "text_encoders": ([os.path.join(models_dir, "text_encoders"), os.path.join(models_dir, "clip")],
                      supported_pt_extensions),
    "diffusion_models": ([os.path.join(models_dir, "unet"), os.path.join(models_dir, "diffusion_models")],
                         supported_pt_extensions),
    "custom_nodes": ([os.path.join(base_path, "custom_nodes")], set()),
}
output_directory = os.path.join(base_path, "output")
input_directory = os.path.join(base_path, "input")
temp_directory = os.path.join(base_path, "temp")


def map_legacy(folder_name: str) -> str:
    return {"unet": "diffusion_models", "clip": "text_encoders"}.get(folder_name, folder_name)


def set_output_directory(output_dir: str) -> None:
    global output_directory
    output_directory = output_dir


def get_output_directory() -> str:
    return output_directory


def get_input_directory() -> str:
    return input_directory


def get_temp_directory() -> str:
    return temp_directory


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Append (or, as default, move to the front) a folder for `folder_name`; a new name accepts any file."""
    folder_name = map_legacy(folder_name)
    if folder_name not in folder_names_and_paths:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())
        return
    paths = folder_names_and_paths[folder_name][0]
    if full_folder_path in paths:
        if is_default and paths[0] != full_folder_path:
            paths.remove(full_folder_path)
            paths.insert(0, full_folder_path)
    elif is_default:
        paths.insert(0, full_folder_path)
    else:
        paths.append(full_folder_path)


def get_folder_paths(folder_name: str) -> list[str]:
    return folder_names_and_paths[map_legacy(folder_name)][0][:]


def _walk(directory: str) -> list[str]:
    found = []
    for dirpath, subdirs, filenames in os.walk(directory, followlinks=True):
        subdirs[:] = [d for d in subdirs if d != ".git"]
        found += [os.path.relpath(os.path.join(dirpath, f), directory) for f in filenames]
    return found


def get_filename_list(folder_name: str) -> list[str]:
    """Relative paths of the files under every folder of `folder_name` whose extension is accepted."""
    paths, extensions = folder_names_and_paths[map_legacy(folder_name)]
    files = {f for p in paths for f in _walk(p)}
    return sorted(f for f in files if not extensions or os.path.splitext(f)[-1].lower() in extensions)


def get_full_path(folder_name: str, filename: str) -> str | None:
    folder_name = map_legacy(folder_name)
    if folder_name not in folder_names_and_paths:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")
    for folder in folder_names_and_paths[folder_name][0]:
        full = os.path.join(folder, filename)
        if os.path.isfile(full):
            return full
        if os.path.islink(full):
            logging.warning("WARNING path %s exists but doesn't link anywhere, skipping.", full)
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    full = get_full_path(folder_name, filename)
    if full is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full


def is_within_directory(directory: str, target: str) -> bool:
    directory, target = os.path.realpath(directory), os.path.realpath(target)
    return os.path.commonpath((directory, target)) == directory


def _expand(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    for key, value in (("%width%", width), ("%height%", height), ("%year%", now.tm_year),
                       ("%month%", f"{now.tm_mon:02}"), ("%day%", f"{now.tm_mday:02}"),
                       ("%hour%", f"{now.tm_hour:02}"), ("%minute%", f"{now.tm_min:02}"),
                       ("%second%", f"{now.tm_sec:02}")):
        prefix = prefix.replace(key, str(value))
    return prefix


def get_save_image_path(filename_prefix: str, output_dir: str, image_width=0, image_height=0,
                        ) -> tuple[str, str, int, str, str]:
    """(full_output_folder, filename, counter, subfolder, filename_prefix).

    `counter` is one more than the highest N among files named `<filename>_<N>...` in the folder (1 when
    none); the folder is created when missing. A prefix that leaves the output folder raises.
    """
    if "%" in filename_prefix:
        filename_prefix = _expand(filename_prefix, image_width, image_height)
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    if not is_within_directory(output_dir, full_output_folder):
        raise Exception("**** ERROR: Saving image outside the output folder is not allowed.")

    def counter_of(name: str) -> tuple[int, str]:
        cut = len(os.path.basename(filename_prefix))
        try:
            digits = int(name[cut + 1:].split(".")[0].split("_")[0])
        except ValueError:
            digits = 0
        return digits, name[:cut + 1]

    try:
        counter = max(c for c, head in map(counter_of, os.listdir(full_output_folder))
                      if os.path.normcase(head[:-1]) == os.path.normcase(filename) and head[-1:] == "_") + 1
    except ValueError:
        counter = 1
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
        counter = 1
    return full_output_folder, filename, counter, subfolder, filename_prefix
