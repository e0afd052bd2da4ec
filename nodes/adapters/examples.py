"""Copy the pack's example inputs into ComfyUI's input folder so the bundled workflows run as shipped.

The workflows load `harmony_example_*.{wav,mp4,png}` with core LoadAudio / LoadVideo / LoadImage, which only
see files in the input folder. When the pack loads, each example that the folder lacks is copied there
(written to a hidden temporary file, then linked into place, so a file of that name is never replaced and an
interrupted copy leaves nothing behind). A read-only input folder only costs a warning: the workflows then
need the user to upload their own media.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path

import folder_paths

from ...harmony_core.media.examples import EXAMPLE_FILES, example_path

log = logging.getLogger(__name__)


def _copy_new(source: Path, target: Path) -> bool:
    """Copy `source` to `target` unless `target` exists; True when a copy was made."""
    if target.exists():
        return False
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        shutil.copyfile(source, temp)
        os.link(temp, target)  # fails if the name was taken meanwhile: never replaces a file
        return True
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)


def install(folder: str | None = None) -> list[str]:
    """Copy the examples the input folder lacks; returns the names copied."""
    target = Path(folder or folder_paths.get_input_directory())
    copied = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in EXAMPLE_FILES:
            if _copy_new(example_path(name), target / name):
                copied.append(name)
    except OSError as err:
        log.warning("Harmony: could not copy the example inputs into %s (%s); the bundled workflows that "
                    "load them need you to upload your own media", target, err)
    if copied:
        log.info("Harmony: example inputs copied into %s: %s", target, ", ".join(copied))
    return copied
