"""The small example inputs that ship with the pack (harmony_core/assets/examples/).

The bundled workflows load them by name from ComfyUI's input folder (the node pack copies them there when it
loads, never over an existing file), and the CLI accepts them like any other file. They are rendered from the
synthetic scenes the demo model was trained on, at its size (64x64, 25 fps, 16 kHz; the face for the UniAVGen
workflows at 656x368, UniAVGen's 16:9 aspect), by
`python tests/workflows/workflow_inputs.py` (deterministic per seed).
"""
from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "examples"

SPEECH_WAV = "harmony_example_speech.wav"        # a "speaker" scene's voice, 3.24 s mono 16 kHz
IMPACTS_MP4 = "harmony_example_impacts.mp4"      # an "impact" scene, 81 frames at 25 fps, no sound
FIRST_FRAME_PNG = "harmony_example_first_frame.png"  # frame 0 of another impact scene, 64x64
FACE_PNG = "harmony_example_face.png"            # a "speaker" scene's face, 656x368 (the UniAVGen workflows)
EXAMPLE_FILES = (SPEECH_WAV, IMPACTS_MP4, FIRST_FRAME_PNG, FACE_PNG)


def example_path(name: str) -> Path:
    """Absolute path of a bundled example input; raises naming the ones there are."""
    if name not in EXAMPLE_FILES:
        raise ValueError(f"{name!r} is not a bundled example input; the examples are {', '.join(EXAMPLE_FILES)}")
    path = EXAMPLES_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"bundled example {path} is missing: reinstall the pack (or regenerate it with "
                                "`python tests/workflows/workflow_inputs.py`)")
    return path
