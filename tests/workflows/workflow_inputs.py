"""The example input files the bundled workflows load: how the shipped copies were made.

The pack ships them in harmony_core/assets/examples/ (harmony_core.media.examples) and copies them into
ComfyUI's input folder when it loads. `write_example_inputs(folder)` renders them from the synthetic scenes of
`harmony_core.train.synthetic` (deterministic per seed) at the demo model's size (64x64, 25 fps, 16 kHz);
`python tests/workflows/workflow_inputs.py` rewrites the shipped copies (`--face` only the face png).
"""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import torch

from harmony_core.media import write_mp4, write_wav
from harmony_core.media.examples import EXAMPLE_FILES as EXAMPLE_INPUTS  # noqa: F401 (re-exported)
from harmony_core.media.examples import EXAMPLES_DIR, FACE_PNG, FIRST_FRAME_PNG, IMPACTS_MP4, SPEECH_WAV
from harmony_core.train.synthetic import SceneSpec, make_clip


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB image [H, W, 3] uint8 as a PNG with PyAV's png encoder."""
    with av.open(str(path), mode="w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def write_face(folder: Path) -> Path:
    """The face png of the UniAVGen workflows: frame 0 of the speaker scene of the speech wav (seed 7), drawn
    at 656x368 (UniAVGen's 16:9 aspect, half of 1312x736)."""
    speaker = make_clip(7, SceneSpec(kind="speaker", num_frames=25, height=368, width=656))
    face = (speaker.frames[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # [H, W, 3]
    return write_png(folder / FACE_PNG, face)


def write_example_inputs(folder: Path) -> dict[str, Path]:
    """Write the four example inputs into `folder` (overwriting) and return {file name: path}.

    speech wav: a "speaker" scene's voice (3.24 s, 16 kHz mono) for audio-driven video;
    impacts mp4: an "impact" scene's 81 frames without sound for video-driven audio;
    first-frame png: frame 0 of another impact scene for image + text -> audio + video;
    face png: the speaker's face at 656x368 (write_face), the reference image of the UniAVGen workflows.
    """
    folder.mkdir(parents=True, exist_ok=True)
    speaker = make_clip(7, SceneSpec(kind="speaker"))
    impacts = make_clip(11, SceneSpec(kind="impact"))
    still = make_clip(23, SceneSpec(kind="impact"))
    first = (still.frames[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # [H, W, 3]
    return {
        SPEECH_WAV: write_wav(folder / SPEECH_WAV, speaker.wave, speaker.sample_rate, overwrite=True),
        IMPACTS_MP4: write_mp4(folder / IMPACTS_MP4, impacts.frames, impacts.fps, overwrite=True),
        FIRST_FRAME_PNG: write_png(folder / FIRST_FRAME_PNG, first),
        FACE_PNG: write_face(folder),
    }


if __name__ == "__main__":
    import sys

    written = {FACE_PNG: write_face(EXAMPLES_DIR)} if "--face" in sys.argv else write_example_inputs(EXAMPLES_DIR)
    for name, path in written.items():
        print(f"{name}: {path.stat().st_size} bytes")  # noqa: T201
