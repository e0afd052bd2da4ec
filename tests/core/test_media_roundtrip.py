"""Write mp4/wav with harmony_core.media, read back with raw PyAV and with our readers.

All media are tiny (<= 64x48, ~1 s) and generated in tmp_path with PyAV. Formats whose encoder this
PyAV build lacks are skipped with the reason.
"""
from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from harmony_core import timeline as tl
from harmony_core.media import probe, read_audio, read_video, write_mp4, write_wav

F = 33
AAC_FRAME = 1024


def make_frames(n: int = F, h: int = 47, w: int = 63) -> np.ndarray:
    """uint8 [n, h, w, 3]: a smooth colour ramp with a bright square moving right."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 96)], -1)
    frames = np.repeat(base[None], n, 0).astype(np.uint8)  # [n, h, w, 3]
    for i in range(n):
        left = (i * 2) % max(w - 8, 1)
        frames[i, h // 2 - 4:h // 2 + 4, left:left + 8] = 255
    return frames


def tone(seconds: float, sr: int, freqs=(440.0,), amp: float = 0.5) -> torch.Tensor:
    """float32 [C, L] sine tones, one frequency per channel."""
    t = torch.arange(round(seconds * sr), dtype=torch.float64) / sr
    return torch.stack([amp * torch.sin(2 * torch.pi * f * t) for f in freqs]).float()


def peak_hz(wave: torch.Tensor, sr: int) -> float:
    spec = torch.fft.rfft(wave.double() * torch.hann_window(wave.shape[-1], dtype=torch.float64))
    return float(spec.abs().argmax()) * sr / wave.shape[-1]


def raw_decode(path: Path) -> dict:
    """What plain PyAV sees: streams, codecs, rates, decoded frame/sample counts."""
    with av.open(str(path)) as c:
        v, a = c.streams.video, c.streams.audio
        out = {"video": [s.codec_context.name for s in v], "audio": [s.codec_context.name for s in a],
               "pix_fmt": v[0].codec_context.pix_fmt,
               "size": (v[0].codec_context.width, v[0].codec_context.height),
               "fps": v[0].average_rate, "v_seconds": float(v[0].duration * v[0].time_base),
               "a_seconds": float(a[0].duration * a[0].time_base) if a else None, "meta": dict(c.metadata)}
    with av.open(str(path)) as c:
        out["frames"] = sum(1 for _ in c.decode(video=0))
    if out["audio"]:
        with av.open(str(path)) as c:
            out["samples"] = sum(fr.samples for fr in c.decode(audio=0))
    return out


@pytest.mark.parametrize("fps, sr, channels", [
    (Fraction(25), 16000, 1),
    (Fraction(24000, 1001), 44100, 2),
    (Fraction(30000, 1001), 16000, 1),
    (Fraction(25, 2), 44100, 1),
])
def test_mp4_roundtrip(tmp_path, fps, sr, channels):
    frames = make_frames()
    audio = tone(1.2, sr, freqs=(440.0, 660.0)[:channels])  # shorter or longer than the video: fitted
    path = write_mp4(tmp_path / "clip.mp4", frames, fps, audio, sr, metadata={"prompt": "a bell"})
    assert path == tmp_path / "clip.mp4"
    raw = raw_decode(path)
    assert raw["video"] == ["h264"] and raw["audio"] == ["aac"]
    assert raw["pix_fmt"] == "yuv420p" and raw["size"] == (64, 48)  # 63x47 padded to even
    assert raw["frames"] == F and raw["fps"] == fps
    duration = float(tl.frames_duration(F, fps))
    assert abs(raw["v_seconds"] - duration) < float(1 / fps)
    assert abs(raw["a_seconds"] - duration) < float(1 / fps)
    expected = tl.samples_for_frames(F, fps, sr)
    # AAC: FFmpeg drops the 1024-sample priming (edit list) but decodes the padded last frame whole.
    assert 0 <= raw["samples"] - expected < AAC_FRAME
    assert raw["meta"]["prompt"] == "a bell"

    wave, rate = read_audio(path, sr, mono=channels == 1)
    assert rate == sr and wave.shape == (channels, expected)  # edit-list length honoured
    ref = tl.fit_audio_to_video(audio, sr, F, fps)[0]
    n = min(ref.shape[1], round(1.2 * sr)) - AAC_FRAME  # compare where the tone is (before any padding)
    corr = torch.nn.functional.cosine_similarity(wave[:, AAC_FRAME:n], ref[:, AAC_FRAME:n], dim=1)
    assert (corr > 0.99).all(), corr

    video, got_fps = read_video(path, grid=None)
    assert got_fps == fps and video.shape == (F, 48, 64, 3) and video.dtype == torch.uint8
    err = (video[:, :47, :63].float() - torch.from_numpy(frames).float()).abs().mean()
    assert err < 4.0, err  # H.264 crf 18 on a 64x48 clip
    assert (video[:, :47, 63].float() - video[:, :47, 62].float()).abs().mean() < 4.0  # edge-replicated pad


def test_mp4_without_audio_and_float_frames(tmp_path):
    frames = torch.from_numpy(make_frames(5, 48, 64)).float() / 255.0
    path = write_mp4(tmp_path, frames, 24)
    assert path == tmp_path / "harmony_00001.mp4"
    raw = raw_decode(path)
    assert raw["audio"] == [] and raw["frames"] == 5 and raw["fps"] == 24
    info = probe(path)
    assert info.first("audio") is None and info.first("video").frames == 5
    video = info.first("video")
    assert video.fps == 24 and (video.width, video.height) == (64, 48)


def test_metadata_json_and_names_never_overwrite(tmp_path):
    frames = make_frames(5, 48, 64)
    workflow = {"nodes": [{"id": 1, "type": "HarmonySampler"}], "note": "ünïcode"}
    first = write_mp4(tmp_path / "clip.mp4", frames, 25, metadata={"workflow": workflow, "prompt": "x"})
    before = first.read_bytes()
    second = write_mp4(tmp_path / "clip.mp4", frames[:3], 25)
    third = write_mp4(tmp_path / "clip.mp4", frames[:4], 25)
    assert (second.name, third.name) == ("clip_00001.mp4", "clip_00002.mp4")
    assert first.read_bytes() == before
    assert json.loads(raw_decode(first)["meta"]["workflow"]) == workflow
    replaced = write_mp4(tmp_path / "clip.mp4", frames[:2], 25, overwrite=True)
    assert replaced == first and raw_decode(first)["frames"] == 2
    in_dir = [write_mp4(tmp_path / "out", frames[:2], 25, name_prefix="h") for _ in range(2)]
    assert [p.name for p in in_dir] == ["h_00001.mp4", "h_00002.mp4"]
    assert not [p for p in tmp_path.rglob(".*")], "temporary files left behind"


def test_nan_inf_and_range_are_cleaned_with_a_warning(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    frames = torch.from_numpy(make_frames(5, 48, 64)).float() / 255.0
    frames[0, 0, 0, 0], frames[1, 1, 1, 1], frames[2, 2, 2, 2] = float("nan"), float("inf"), 3.0
    audio = tone(0.2, 16000)
    audio[0, 10], audio[0, 11], audio[0, 12] = float("nan"), float("-inf"), 7.0
    path = write_mp4(tmp_path / "n.mp4", frames, 25, audio, 16000)
    text = caplog.text
    assert "frames had 2 NaN/Inf" in text and "1 value(s) outside [0, 1]" in text
    assert "audio had 2 NaN/Inf" in text and "1 value(s) outside [-1, 1]" in text
    assert "padded with silence from 3200 to 3200" not in text  # 5 frames @ 25 fps = 0.2 s exactly
    wave, _ = read_audio(path)
    assert torch.isfinite(wave).all() and wave.abs().max() <= 1.0


def test_wav_roundtrip_is_sample_exact(tmp_path):
    audio = tone(0.5, 22050, freqs=(300.0, 500.0))
    path = write_wav(tmp_path / "a.wav", audio, 22050, metadata={"comment": "hi"})
    wave, sr = read_audio(path, None, mono=False)
    assert sr == 22050 and wave.shape == audio.shape
    assert (wave - audio).abs().max() <= 1.0 / 32767 + 1e-6
    again = write_wav(tmp_path / "a.wav", audio[0], 22050)
    assert again.name == "a_00001.wav" and read_audio(again)[0].shape == (1, audio.shape[1])


# ------------------------------------------------------------------------------------------------
# Reading what other tools write
# ------------------------------------------------------------------------------------------------

def encode_audio(path: Path, fmt: str, codec: str, wave: torch.Tensor, sr: int) -> None:
    """Write float wave [C, L] with plain PyAV (FFmpeg converts to the codec's sample format)."""
    vcodec = {"webm": "libvpx", "matroska": "mpeg4"}.get(fmt)
    for name in (codec, vcodec):
        if name is not None and name not in av.codecs_available:
            pytest.skip(f"this PyAV build has no {name} encoder")
    layout = "mono" if wave.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=sr, layout=layout)
        if vcodec is not None:  # a video track too: read_audio must pick the audio stream
            v = c.add_stream(vcodec, rate=25)
            v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
            for i in range(int(wave.shape[1] / sr * 25)):
                c.mux(v.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), i, np.uint8), format="rgb24")))
            c.mux(v.encode(None))
        data = wave.numpy()
        for start in range(0, data.shape[1], 1024):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, start:start + 1024]), format="fltp",
                                            layout=layout)
            fr.sample_rate, fr.pts = sr, start
            c.mux(s.encode(fr))
        c.mux(s.encode(None))


@pytest.mark.parametrize("name, fmt, codec, sr, channels", [
    ("a.wav", "wav", "pcm_s16le", 22050, 2),
    ("a.flac", "flac", "flac", 48000, 1),
    ("a.mp3", "mp3", "libmp3lame", 44100, 2),
    ("a.m4a", "ipod", "aac", 16000, 1),
    ("a.ogg", "ogg", "libopus", 48000, 2),
    ("a.mkv", "matroska", "aac", 32000, 2),
    ("a.webm", "webm", "libopus", 48000, 1),
])
def test_read_audio_formats(tmp_path, name, fmt, codec, sr, channels):
    seconds = 0.8
    src = tone(seconds, sr, freqs=(440.0, 440.0)[:channels])
    encode_audio(tmp_path / name, fmt, codec, src, sr)
    mono, rate = read_audio(tmp_path / name, 16000)
    assert rate == 16000 and mono.shape[0] == 1 and mono.dtype == torch.float32
    # lossy codecs may add or drop up to one codec frame (mp3 1152, opus 960 at 48 kHz) around the edges
    assert abs(mono.shape[1] - seconds * 16000) <= 1152 * 16000 / sr + 1
    assert abs(peak_hz(mono[0], 16000) - 440.0) < 3.0
    assert mono.abs().max() <= 1.0
    stereo, _ = read_audio(tmp_path / name, 16000, mono=False)
    assert stereo.shape == (2, mono.shape[1])


def test_resample_length_and_downmix(tmp_path):
    src = tone(0.5, 48000, freqs=(1000.0, 1000.0))
    src[1] = -src[1]  # L and R cancel in the mean
    path = write_wav(tmp_path / "s.wav", src, 48000)
    mono, _ = read_audio(path, 16000)
    assert mono.shape == (1, 8000) and mono.abs().max() < 1e-3
    left, _ = read_audio(path, 44100, mono=False)
    assert left.shape == (2, 22050)
    assert abs(peak_hz(left[0], 44100) - 1000.0) < 3.0


def test_read_video_crop_resize_and_limits(tmp_path):
    frames = make_frames(9, 48, 64)
    path = write_mp4(tmp_path / "v.mp4", frames, Fraction(30000, 1001))
    native, fps = read_video(path, grid=None)
    assert fps == Fraction(30000, 1001) and native.shape == (9, 48, 64, 3)
    cropped, _ = read_video(path)  # grid 32: centre crop 48 -> 32 rows, no scaling
    assert torch.equal(cropped, native[:, 8:40])
    squeezed, _ = read_video(path, mode="resize")
    assert squeezed.shape == (9, 32, 64, 3)
    square, _ = read_video(path, size=(32, 32), grid=16)  # scale to 43x32 (cover), crop 32x32
    assert square.shape == (9, 32, 32, 3)
    stretched, _ = read_video(path, size=(64, 32), mode="resize", as_float=True, max_frames=4)
    assert stretched.shape == (4, 64, 32, 3) and stretched.dtype == torch.float32
    assert 0.0 <= float(stretched.min()) and float(stretched.max()) <= 1.0
