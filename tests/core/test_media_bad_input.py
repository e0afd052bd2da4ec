"""Bad media input: every case raises MediaError naming the file and what is accepted, and writers leave
the output folder exactly as it was (no output, no temporary file, no new folder)."""
from __future__ import annotations

import wave as stdlib_wave
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from harmony_core.media import MediaError, read_audio, read_video, write_mp4, write_wav
from harmony_core.media import write as media_write


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


@pytest.fixture
def out(tmp_path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.mp4").write_bytes(b"existing output")
    return folder


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """Valid small inputs: a 1 s mp4 (33 frames @ 25 fps + 16 kHz AAC), a 1-frame mp4, a 1 s wav."""
    d = tmp_path_factory.mktemp("media")
    frames = np.random.default_rng(0).integers(0, 256, (33, 48, 64, 3), dtype=np.uint8)
    wave = 0.5 * torch.sin(torch.arange(16000) / 7.0)[None]
    return {
        "mp4": write_mp4(d / "clip.mp4", frames, 25, wave, 16000),
        "one": write_mp4(d / "one.mp4", frames[:1], 25),
        "wav": write_wav(d / "tone.wav", wave, 16000),
        "flac": _flac(d / "tone.flac", wave),
    }


def _flac(path: Path, wave: torch.Tensor) -> Path:
    with av.open(str(path), "w", format="flac") as c:
        s = c.add_stream("flac", rate=16000, layout="mono")
        fr = av.AudioFrame.from_ndarray(wave.numpy(), format="fltp", layout="mono")
        fr.sample_rate = 16000
        c.mux(s.encode(fr))
        c.mux(s.encode(None))
    return path


def expect_error(fn, *args, match: str, name: str | None = None, **kwargs) -> MediaError:
    with pytest.raises(MediaError, match=match) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "Accepted:" in message, message
    if name is not None:
        assert name in message, message
    assert isinstance(info.value, ValueError)
    return info.value


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------

def test_missing_directory_and_empty(tmp_path):
    expect_error(read_audio, tmp_path / "nope.wav", 16000, match="does not exist", name="nope.wav")
    expect_error(read_video, tmp_path, match="not a regular file")
    (tmp_path / "empty.mp4").write_bytes(b"")
    expect_error(read_video, tmp_path / "empty.mp4", match="empty", name="empty.mp4")


@pytest.mark.parametrize("name, data", [
    ("junk.mp4", bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8))),
    ("notes.wav", b"this is text, not audio\n" * 50),
    ("x.flac", b"fLaC" + b"\x00" * 10),
])
def test_corrupt_or_unsupported(tmp_path, name, data):
    (tmp_path / name).write_bytes(data)
    err = expect_error(read_audio, tmp_path / name, 16000, match="cannot open|corrupt|no samples", name=name)
    assert err.path == tmp_path / name


@pytest.mark.parametrize("kind", ["mp4", "flac"])
def test_truncated(tmp_path, media, kind):
    data = media[kind].read_bytes()
    cut = tmp_path / f"cut.{kind}"
    cut.write_bytes(data[: len(data) // 2])
    expect_error(read_audio, cut, 16000, match="truncated|corrupt|cannot open", name=cut.name)
    if kind == "mp4":
        expect_error(read_video, cut, match="truncated|corrupt", name=cut.name)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "silent.wav"
    with stdlib_wave.open(str(path), "wb") as w:  # a valid header with a 0-byte data chunk
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    assert path.stat().st_size > 0
    expect_error(read_audio, path, 16000, match="no samples|zero-length|cannot open", name="silent.wav")


def test_wrong_stream_kind(media):
    expect_error(read_audio, media["one"], 16000, match="has no audio stream", name="one.mp4")
    expect_error(read_video, media["wav"], match="has no video stream", name="tone.wav")


def test_too_few_frames(media):
    frames, _ = read_video(media["one"], grid=None)
    assert frames.shape[0] == 1
    expect_error(read_video, media["one"], min_frames=2, match="1 decodable frame", name="one.mp4")


def test_limits(media):
    expect_error(read_audio, media["wav"], 16000, max_seconds=0.5, match="lasts at least 0.5",
                 name="tone.wav")
    expect_error(read_video, media["mp4"], max_seconds=1.0, match="longer than the limit", name="clip.mp4")
    assert read_video(media["mp4"], max_frames=20, max_seconds=1.0)[0].shape[0] == 20  # stops in time
    expect_error(read_video, media["mp4"], max_side=32, match="64x48", name="clip.mp4")


def test_bad_read_arguments(media):
    expect_error(read_video, media["mp4"], mode="zoom", match="mode 'zoom'")
    expect_error(read_video, media["mp4"], size=(40, 32), match="multiple of the grid 32")
    expect_error(read_video, media["mp4"], grid=128, match="smaller than the 128-px grid")
    expect_error(read_video, media["mp4"], max_frames=0, match="reads nothing")
    expect_error(read_audio, media["wav"], 44.1, match="sample_rate 44.1")


# ------------------------------------------------------------------------------------------------
# Writing: nothing reaches the disk
# ------------------------------------------------------------------------------------------------

FRAMES = np.zeros((5, 48, 64, 3), np.uint8)
WAVE = np.zeros((1, 3200), np.float32)


@pytest.mark.parametrize("kwargs, match", [
    (dict(frames=np.zeros((5, 48, 64), np.uint8)), r"shape \(5, 48, 64\)"),
    (dict(frames=np.zeros((5, 48, 64, 4), np.uint8)), "RGB frames"),
    (dict(frames=np.zeros((0, 48, 64, 3), np.uint8)), r"F >= 1"),
    (dict(frames=np.zeros((2, 48, 64, 3), np.int32)), "dtype int32"),
    (dict(frames=np.zeros((1, 4100, 2, 3), np.uint8)), "2x4100"),
    (dict(frames=np.zeros((61, 8, 8, 3), np.uint8), fps=1), "61.00 s, longer"),
    (dict(fps=0), "fps must be positive"),
    (dict(fps="fast"), "not a number"),
    (dict(audio=np.zeros((1, 0), np.float32)), "zero samples"),
    (dict(audio=np.zeros((3, 100), np.float32)), r"C = 1 or 2"),
    (dict(audio=np.zeros((1, 100), np.int16)), "dtype int16"),
    (dict(audio=WAVE, sample_rate=31250), "31250 cannot be stored"),
    (dict(audio=WAVE, sample_rate=None), "without a sample_rate"),
    (dict(metadata={"obj": object()}), "not JSON-serialisable"),
    (dict(metadata={3: "x"}), "metadata key 3"),
])
def test_write_mp4_rejects_before_writing(out, kwargs, match):
    before = snapshot(out)
    args = dict(frames=FRAMES, fps=25, audio=None, sample_rate=16000) | kwargs
    target = out / "new" / "clip.mp4"
    expect_error(write_mp4, target, args.pop("frames"), args.pop("fps"), match=match, name="clip.mp4", **args)
    assert snapshot(out) == before


def test_write_wrong_extension_and_wav_inputs(out):
    before = snapshot(out)
    expect_error(write_mp4, out / "clip.avi", FRAMES, 25, match="extension '.avi'")
    expect_error(write_wav, out / "a.mp3", WAVE, 16000, match="extension '.mp3'")
    expect_error(write_wav, out / "a.wav", np.zeros(0, np.float32), 16000, match="zero samples")
    expect_error(write_wav, out / "a.wav", WAVE, 12.5, match="sample rate 12.5 is invalid")
    expect_error(write_wav, out / "a.wav", np.zeros((1, 100)), 16000, max_seconds=0.001, match="longer")
    assert snapshot(out) == before


def test_failed_encode_leaves_nothing(out, monkeypatch):
    """A crash mid-encode leaves neither the target nor the temporary file, and keeps existing files."""
    def broken(tmp, *args):
        tmp.write_bytes(b"half a file")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(media_write, "_encode_mp4", broken)
    before = snapshot(out)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_mp4(out / "keep.mp4", FRAMES, 25, overwrite=True)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_mp4(out, FRAMES, 25)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_mp4(out / "new" / "deeper", FRAMES, 25)  # folders made for it are removed again
    assert snapshot(out) == before


def test_control_characters_in_the_name_are_refused_before_writing(out):
    before = snapshot(out)
    expect_error(write_mp4, out / "a\x00b.mp4", FRAMES, 25, match="control character")
    expect_error(write_wav, out / "x\ny.wav", WAVE, 16000, match="control character")
    assert snapshot(out) == before


@pytest.mark.parametrize("overwrite", [False, True])
def test_failed_commit_leaves_nothing(out, monkeypatch, overwrite):
    """Encoding succeeded but moving the file into place failed (no hard links, and the rename refused): the
    temporary file and the folders made for it are removed."""
    def refuse(*args):
        raise PermissionError("refused")

    monkeypatch.setattr(media_write.os, "link", refuse)
    monkeypatch.setattr(media_write.os, "replace", refuse)
    before = snapshot(out)
    with pytest.raises(PermissionError):
        write_mp4(out / "new" / "clip.mp4", FRAMES, 25, overwrite=overwrite)
    assert snapshot(out) == before


def test_missing_h264_encoder_is_a_clear_error(out, monkeypatch):
    monkeypatch.setattr(media_write, "H264_ENCODERS", ("no_such_h264",))
    media_write.h264_encoder.cache_clear()
    before = snapshot(out)
    try:
        expect_error(write_mp4, out / "x.mp4", FRAMES, 25, match="no usable H.264 encoder")
    finally:
        media_write.h264_encoder.cache_clear()
    assert snapshot(out) == before
