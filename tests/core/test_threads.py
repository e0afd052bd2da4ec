"""The CPU thread policy: one thread for small models, the count left alone for large ones, overrides win,
and the previous count comes back on exit, exceptions included. No timing here: the measurements are in
harmony_core/threads.py and harmony_core/bench/cpu.py."""
from __future__ import annotations

import pytest
import torch

from harmony_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from harmony_core.config import preset
from harmony_core.threads import ENV, SMALL_MACS_PER_TOKEN, macs_per_token, thread_budget, threads_for


@pytest.fixture(autouse=True)
def _two_threads(monkeypatch):
    """Start every test from a known count above one, without HARMONY_THREADS, and put the count back."""
    monkeypatch.delenv(ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


class _Weights(torch.nn.Module):
    """Stands in for a codec with learned weights (the Wan2.2 VAE has ~1e8)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(n), requires_grad=False)


def test_demo_model_runs_on_one_thread_and_large_models_keep_the_count() -> None:
    demo, large = preset("demo"), preset("harmony-5b")  # configs only: nothing is built
    assert macs_per_token(demo) < SMALL_MACS_PER_TOKEN <= macs_per_token(large)
    assert threads_for(demo) == 1
    assert threads_for(demo, DemoVideoCodec.default(), DemoAudioCodec.default()) == 1
    assert threads_for(large) is None
    assert threads_for(demo, _Weights(10_000_000)) is None  # a small model with a heavy codec: left alone
    with thread_budget(demo) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with thread_budget(large) as n:
        assert n == 2 and torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2


def test_count_is_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError, match="inside"):
        with thread_budget(preset("demo")):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_overrides_win_argument_first(monkeypatch) -> None:
    demo, large = preset("demo"), preset("harmony-5b")
    with thread_budget(demo, threads=2):
        assert torch.get_num_threads() == 2
    with thread_budget(large, threads=1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    monkeypatch.setenv(ENV, "2")
    assert threads_for(demo) == 2 and threads_for(demo, threads=1) == 1
    monkeypatch.setenv(ENV, "1")
    with thread_budget(large):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ValueError, match=ENV):
            threads_for(demo)
    with pytest.raises(ValueError, match="threads"):
        threads_for(demo, threads=0)


def test_pipeline_sample_and_decode_run_under_the_budget(monkeypatch) -> None:
    """The demo config (untrained) with its codecs: sampling steps and decoding see one thread, the caller
    keeps two."""
    from harmony_core.model.harmony import HarmonyModel
    from harmony_core.pipeline import HarmonyPipeline, Request, Sampling

    cfg = preset("demo")
    pipe = HarmonyPipeline(HarmonyModel(cfg).eval(), DemoVideoCodec.from_config(cfg.codecs["video"]),
                           DemoAudioCodec.from_config(cfg.codecs["audio"]))
    seen: list[int] = []
    video_decode = pipe.video_codec.decode
    monkeypatch.setattr(pipe.video_codec, "decode",
                        lambda z: seen.append(torch.get_num_threads()) or video_decode(z))
    callback = lambda *args: seen.append(torch.get_num_threads())  # noqa: E731  (called once per step)
    result = pipe.generate(Request(prompt="a red ball", sampling=Sampling(steps=2), num_frames=9, width=64, height=64), callback)
    assert result.frames.shape[1] == 9 and seen == [1, 1, 1]
    assert torch.get_num_threads() == 2
