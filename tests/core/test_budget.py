"""Memory budget: the plan follows the shapes (no allocation), and an over-budget size is refused with a
message naming the size, the estimate and what is available, before any large allocation."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harmony_core import budget
from harmony_core.budget import GIB, MemoryBudgetError, MemoryPlan, check_budget
from harmony_core.cli import main
from harmony_core.build import load_pipeline
from harmony_core.pipeline import Request, Sampling


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(None)


def plan(pipe, batch: int = 1, **kw) -> MemoryPlan:
    return pipe.memory_plan(Request(sampling=Sampling(batch=batch), **kw), 4)


def test_decode_peak_counts_the_codecs_pixel_buffers_and_the_callers_copy(pipe):
    p = plan(pipe, width=256, height=128, num_frames=81, batch=2)
    buffers = pipe.video_codec.decode_buffers + 1  # the keyframe demo codec: 5.75, plus the caller's copy
    assert buffers == 6.75
    assert p.decode == int(buffers * 4 * 2 * 3 * 81 * 256 * 128)  # buffers x bytes x takes x RGB x F x H x W
    assert plan(pipe, width=512, height=256, num_frames=81, batch=2).decode == 4 * p.decode


def test_sampling_peak_grows_with_takes_and_tokens(pipe):
    one = plan(pipe, width=256, height=256, num_frames=81).sampling - budget.SAMPLING_SLACK
    two = plan(pipe, width=256, height=256, num_frames=81, batch=2).sampling - budget.SAMPLING_SLACK
    wide = plan(pipe, width=512, height=512, num_frames=81).sampling - budget.SAMPLING_SLACK
    assert one < two < 2 * one  # the anchor is built once, for all takes
    assert wide > 3 * one  # 4x the video tokens


def test_the_refusal_names_size_estimate_and_available_memory(pipe):
    p = plan(pipe, width=4096, height=4096, num_frames=81)
    assert p.peak > 50 * GIB and p.phase == "decoding"
    with pytest.raises(MemoryBudgetError) as caught:
        check_budget(p, 8 * GIB, "use fewer frames")
    text = str(caught.value)
    assert "4096x4096, 81 frames, 1 take(s)" in text and "8.00 GiB is available" in text
    assert f"{p.peak / GIB:.2f} GiB" in text and "use fewer frames" in text
    check_budget(p, None)  # unknown budget: allowed
    check_budget(plan(pipe, width=64, height=64, num_frames=81), 8 * GIB)


def test_cli_refuses_with_a_fake_small_budget(monkeypatch, tmp_path, caplog):
    monkeypatch.setattr(budget, "available_memory", lambda device: 64 * 1024 ** 2)  # 64 MiB
    code = main(["generate", "--width", "256", "--height", "256", "--out", str(tmp_path / "x.mp4")])
    assert code == 2 and "64 MiB" not in caplog.text and "0.06 GiB is available" in caplog.text
    assert list(tmp_path.iterdir()) == []
    code = main(["generate", "--width", "64", "--height", "64", "--frames", "9", "--steps", "1",
                 "--skip-memory-check", "--out", str(tmp_path / "y.mp4"), "--quiet"])
    assert code == 0 and (tmp_path / "y.mp4").is_file()


def test_cli_refusal_at_4096_allocates_nothing_large(tmp_path):
    """4096x4096x81 on this machine: refused after loading the model, peak RSS that of the loaded model (the
    clip alone would be 16 GiB in float32), unless the machine really has > 61 GiB available."""
    code = (
        "import json, resource, sys\n"
        "from harmony_core.cli import main\n"
        "from harmony_core.budget import available_memory\n"
        f"rc = main(['generate', '--width', '4096', '--height', '4096', '--frames', '81', '--out', "
        f"{str(tmp_path / 'big.mp4')!r}])\n"
        "print(json.dumps({'rc': rc, 'maxrss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "'available': available_memory('cpu')}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["available"] > 61 * GIB:
        pytest.skip("this machine has room for the 4096x4096x81 clip")
    assert result["rc"] == 2 and "needs about" in out.stderr
    assert result["maxrss_kb"] * 1024 < 3 * GIB  # torch + the demo model; any clip buffer would be >= 16 GiB
    assert not (tmp_path / "big.mp4").exists()
