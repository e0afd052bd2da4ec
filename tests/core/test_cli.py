"""`python -m harmony_core generate`: --out naming, seed range, resize notes, --takes / --keep-all, Ctrl-C.

Runs the bundled demo model on CPU with 2 steps and 9 frames; the --takes ranking tests swap the model's
output for synthetic clips with planted audio offsets, so which take is best is known.
"""
from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import json

import pytest
import torch

from harmony_core.cli import MAX_TAKES, SEED_MAX, main
from harmony_core.media import read_video
from harmony_core.pipeline import HarmonyPipeline, Result
from harmony_core.train.synthetic import SceneSpec, make_clip

FAST = ["generate", "--steps", "2", "--frames", "9", "--quiet"]


def _run(*extra: str) -> int:
    return main([*FAST, *extra])


def _tag(path: Path, key: str) -> str:
    with av.open(str(path)) as c:
        return c.metadata.get(key, "")


# ------------------------------------------------------------------------------------------------
# --out
# ------------------------------------------------------------------------------------------------
def test_out_without_extension_gets_mp4_with_a_note(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert _run("--out", str(tmp_path / "clip")) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    assert "has no extension: writing" in caplog.text


def test_out_existing_folder_is_written_inside(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    assert _run("--out", str(folder)) == 0
    assert [p.name for p in folder.iterdir()] == ["harmony_00001.mp4"]


def test_out_with_another_extension_is_refused_before_loading(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    assert _run("--out", str(tmp_path / "clip.mov")) == 2
    assert "only .mp4 files are written, not '.mov'" in caplog.text and "clip.mp4" in caplog.text
    assert "loaded" not in caplog.text and not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------
# --seed, --takes, --batch validation (no model is loaded)
# ------------------------------------------------------------------------------------------------
def test_seed_max_is_what_torch_accepts() -> None:
    torch.Generator().manual_seed(SEED_MAX)
    with pytest.raises((RuntimeError, ValueError, OverflowError)):
        torch.Generator().manual_seed(SEED_MAX + 1)


@pytest.mark.parametrize("argv", [["--seed", str(2**70)], ["--seed", "-1"],
                                  ["--seed", str(SEED_MAX), "--takes", "2"]])
def test_seed_out_of_range_names_the_range(argv: list[str], caplog: pytest.LogCaptureFixture) -> None:
    assert _run(*argv) == 2
    assert f"is out of range: seeds must be 0..{SEED_MAX}" in caplog.text
    assert f"--seed {argv[1]}" in caplog.text


@pytest.mark.parametrize("takes", [0, MAX_TAKES + 1])
def test_takes_outside_the_range_is_refused(takes: int, caplog: pytest.LogCaptureFixture) -> None:
    assert _run("--takes", str(takes)) == 2
    assert f"--takes must be 1..{MAX_TAKES}, got {takes}" in caplog.text


def test_takes_with_batch_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    assert _run("--takes", "3", "--batch", "2") == 2
    assert "--takes 3 and --batch 2 cannot be combined" in caplog.text


def test_takes_need_a_scorable_clip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert _run("--frames", "1", "--takes", "2", "--out", str(tmp_path / "a.mp4")) == 2  # last --frames wins
    assert "needs at least 5 frames" in caplog.text and not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------------------------
# resize notes
# ------------------------------------------------------------------------------------------------
def _odd_video(path: Path, width: int = 65, height: int = 47, frames: int = 9) -> Path:
    """A lossless (FFV1) clip with odd sides, as a phone or a screen recorder may produce."""
    with av.open(str(path), "w") as c:
        stream = c.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(frames):
            image = np.full((height, width, 3), 20 * i, np.uint8)
            c.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(stream.encode(None))
    return path


def test_read_video_logs_every_resize(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harmony_core.media.read")
    path = _odd_video(tmp_path / "odd.mkv")
    frames, _ = read_video(path, size=(64, 64), grid=16)
    assert frames.shape == (9, 64, 64, 3)
    assert ("frames resized from 65x47 to 64x64 (WxH): scaled to 89x64 then centre-cropped to 64x64"
            in caplog.text)
    caplog.clear()
    frames, _ = read_video(path, grid=None)
    assert frames.shape == (9, 47, 65, 3) and "resized" not in caplog.text


def test_driving_video_resize_is_noted_by_generate(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    video = _odd_video(tmp_path / "odd.mkv")
    assert _run("--video", str(video), "--out", str(tmp_path / "a.mp4")) == 0
    assert f"{video}: frames resized from 65x47 to 64x64" in caplog.text
    assert (tmp_path / "a.mp4").is_file()


# ------------------------------------------------------------------------------------------------
# --takes
# ------------------------------------------------------------------------------------------------
def _delayed_clip(seed: int, frames: int) -> Result:
    """A synthetic impact clip, its audio `frames` video frames late (0: in sync), as a pipeline Result."""
    clip = make_clip(seed, SceneSpec(kind="impact"))
    per_frame = clip.sample_rate // int(clip.fps)
    wave = torch.cat([clip.wave.new_zeros(frames * per_frame), clip.wave])[:clip.wave.shape[0]]
    return Result(clip.frames[None], wave[None], clip.fps, clip.sample_rate, torch.zeros(1), torch.zeros(1))


@pytest.fixture
def fake_takes(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """generate() returns plan[i] on call i: take 1 has its audio 3 frames late, take 2 is in sync, take 3 is
    1 frame late; a None in the plan raises KeyboardInterrupt (Ctrl-C). calls: (seed, batch) of each call."""
    fake = SimpleNamespace(plan=[_delayed_clip(0, 3), _delayed_clip(0, 0), _delayed_clip(0, 1)], calls=[])

    def generate(self, req, callback=None):
        fake.calls.append((req.sampling.seed, req.batch))
        result = fake.plan[len(fake.calls) - 1]
        if result is None:
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(HarmonyPipeline, "generate", generate)
    return fake


def test_takes_keep_the_best_by_sync_score(tmp_path: Path, fake_takes: SimpleNamespace,
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "best.mp4"
    assert _run("--takes", "3", "--keep-all", "--seed", "7", "--out", str(out)) == 0
    assert fake_takes.calls == [(7, 1), (8, 1), (9, 1)]  # one take after another, batch 1, seed + i
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.mp4", "best_take1.mp4", "best_take3.mp4"]
    assert [_tag(tmp_path / n, "seed") for n in ("best.mp4", "best_take1.mp4", "best_take3.mp4")] == [
        "8", "7", "9"]
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["take", "seed", "score", "best", "lag", "file"]
    rows = [line.split() for line in table[1:]]
    assert [r[:2] for r in rows] == [["1", "7"], ["2", "8"], ["3", "9"]]
    assert [r[3] for r in rows] == ["+120", "+0", "+40"]  # the planted delays, in ms
    assert [r[5:] for r in rows] == [[str(tmp_path / "best_take1.mp4")], [str(out), "<-", "best"],
                                     [str(tmp_path / "best_take3.mp4")]]
    assert max(float(r[2]) for r in rows) == float(rows[1][2])


def test_ctrl_c_between_takes_keeps_the_finished_best(tmp_path: Path, fake_takes: SimpleNamespace,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    fake_takes.plan[2] = None  # Ctrl-C during take 3
    out = tmp_path / "best.mp4"
    assert _run("--takes", "3", "--keep-all", "--out", str(out)) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.mp4", "best_take1.mp4"]
    assert _tag(out, "seed") == "1"
    assert "interrupted after 2 of 3 takes" in caplog.text


def test_takes_run_the_real_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "clip.mp4"
    assert _run("--takes", "2", "--out", str(out)) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [r[:2] for r in rows] == [["1", "0"], ["2", "1"]]
    (best,) = [r for r in rows if r[-3:] == [str(out), "<-", "best"]]
    (other,) = [r for r in rows if r[-2:] == ["(not", "kept)"]]
    assert float(best[2]) >= float(other[2]) and _tag(out, "seed") == best[1]


def test_driving_audio_with_nan_is_refused_naming_the_file(tmp_path, caplog):
    wave = np.zeros(16000, np.float32)
    wave[10:15] = np.nan
    path = tmp_path / "nan.wav"
    with av.open(str(path), mode="w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(wave[None], format="flt", layout="mono")
        frame.sample_rate = 16000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    code = main(["generate", "--audio", str(path), "--out", str(tmp_path / "x.mp4"), "--steps", "1"])
    assert code == 2 and "nan.wav: 5 of 16000 audio samples are NaN or infinite" in caplog.text
    assert not (tmp_path / "x.mp4").exists()


def test_info_preset_counts_without_allocating(capsys):
    """`info --preset uniavgen`: the full-size count (7,056,424,223) from the meta device, in seconds."""
    assert main(["info", "--preset", "uniavgen"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["total_parameters"] == 7_056_424_223
    assert info["parameters"] == {"video": 4_999_787_712, "audio": 1_419_073_616, "interaction": 637_562_895}
    assert main(["info", "x.safetensors", "--preset", "uniavgen"]) == 2   # main logs the error, exit code 2
    assert main(["info"]) == 2


def test_info_says_what_is_missing_and_what_is_too_much(caplog):
    assert main(["info"]) == 2 and "--preset NAME (harmony-5b, tiny, demo" in caplog.text
    assert "not both" not in caplog.text
    assert main(["info", "x.safetensors", "--preset", "demo"]) == 2 and "not both" in caplog.text
