"""Training batches: deterministic by (seed, step, rank), shapes and ranges the codecs and pipeline expect."""
from __future__ import annotations

import pytest
import torch

from harmony_core import timeline
from harmony_core.codecs.demo import DemoAudioCodec, DemoVideoCodec
from harmony_core.train.data import DataConfig, SyntheticLatents, frames_to_pixels, wave_to_latent_length
from harmony_core.train.synthetic import KINDS, SceneSpec, stream_clip
from harmony_core.train.synthetic_variety import condition_variation

SPEC = SceneSpec(num_frames=25, height=32, width=32)


def _source(rank: int = 0, world: int = 1, **kw) -> SyntheticLatents:
    return SyntheticLatents(DataConfig(batch=4, spec=SPEC, window=8, **kw), DemoVideoCodec(),
                            DemoAudioCodec(), rank, world)


def test_frames_become_codec_pixels():
    frames = torch.rand(5, 8, 16, 3)
    px = frames_to_pixels(frames)
    assert px.shape == (1, 3, 5, 8, 16)
    torch.testing.assert_close(px[0, 1, 2], frames[2, :, :, 1] * 2 - 1)


def test_batches_are_deterministic_and_fit_the_pipeline_layout():
    a, b = _source(), _source()
    first = a.batch(3)
    again = b.batch(3)
    assert first.indices == again.indices and torch.equal(first.video, again.video)
    assert torch.equal(first.audio, again.audio) and first.video_captions == again.video_captions
    codec = DemoAudioCodec()
    rate = timeline.audio_latent_rate(16000, codec.samples_per_latent)
    ta = timeline.audio_latents_for_frames(25, 25, rate)
    assert first.video.shape == (4, 16, 7, 4, 4) and first.audio.shape == (4, 64, ta)
    clip = stream_clip(0, first.indices[0], SPEC)
    assert first.video_captions[0] == clip.video_caption and first.kinds[0] == clip.kind


def test_fresh_clips_every_step_and_reuse_draws_from_recent_ones():
    src = _source()
    assert src.indices(0) == [0, 1, 2, 3] and src.indices(1) == [4, 5, 6, 7]
    reused = _source(reuse=2.0)
    idx = reused.indices(5)
    assert idx[:2] == [10, 11] and all(2 <= i < 10 for i in idx[2:]) and len(set(idx)) == 4


def test_ranks_read_disjoint_clips():
    r0, r1 = _source(0, 2).batch(0), _source(1, 2).batch(0)
    assert set(r0.indices).isdisjoint(r1.indices)
    assert r0.indices == (0, 2, 4, 6) and r1.indices == (1, 3, 5, 7)


def test_waves_are_padded_to_whole_latents():
    wave = torch.randn(2, 16000)
    out = wave_to_latent_length(wave, DemoAudioCodec(), 25, 25)
    assert out.shape == (2, 32 * 512) and torch.equal(out[:, :16000], wave) and not out[:, 16000:].any()


def test_bad_data_settings_are_refused():
    with pytest.raises(ValueError, match="reuse"):
        DataConfig(batch=4, reuse=8.0)
    with pytest.raises(ValueError, match="kinds"):
        DataConfig(kinds=("explosion",))


def test_cond_variety_gives_driven_tasks_a_plainer_rendering_of_the_same_events():
    assert _source().batch(0).video_cond is None                       # off by default
    src = _source(cond_variety=1.0)
    for step in (0, 1):                                                 # every kind, still included
        _check_conditions(src.batch(step), _source().batch(step))
    with pytest.raises(ValueError, match="cond_variety"):
        DataConfig(cond_variety=2.0)


def _check_conditions(batch, standard) -> None:
    assert torch.equal(batch.video, standard.video) and torch.equal(batch.audio, standard.audio)
    assert batch.video_captions == standard.video_captions
    for i, index in enumerate(batch.indices):
        kind = KINDS[index % len(KINDS)]
        var = condition_variation(stream_clip(0, index, SPEC).seed, 1.0, kind)
        assert (var is None) == (kind in ("drum", "still"))             # nothing to plain out there
        if var is not None:
            assert not var.jitter                                       # same event times as the standard
            plain = stream_clip(0, index, SPEC, KINDS, var)
            assert plain.event_times == stream_clip(0, index, SPEC).event_times
        video_differs = not torch.equal(batch.video_cond[i], batch.video[i])
        audio_differs = not torch.equal(batch.audio_cond[i], batch.audio[i])
        assert video_differs == (kind in ("impact", "flash")), kind     # plain landing, bare lamp
        assert audio_differs == (kind in ("speaker", "flash")), kind    # plain voice, free beep
