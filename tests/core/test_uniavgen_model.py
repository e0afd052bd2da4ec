"""The UniAVGen variant of HarmonyModel without fixtures: full size on the meta device, configs, pass flags,
batching, the window / interpolation tables, and clear errors. (Parity: test_parity_uniavgen_model.py.)"""
from __future__ import annotations

import pytest
import torch

from harmony_core.config import HarmonyConfig, preset
from harmony_core.loading.detect import config_for_uniavgen
from harmony_core.loading.keymaps import UNIAVGEN
from harmony_core.model.conditioning import Conditioning, HarmonyDenoiser, stack
from harmony_core.model.count import parameter_count, parameter_counts, state_shapes
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.memory import forward_bytes
from harmony_core.model.transcript import encode_transcripts
from harmony_core.model.transcript_ids import negative_transcript_ids, transcript_ids
from harmony_core.model.uniavgen_interaction import a2v_window_index, v2a_interpolation
from harmony_core.passes import PLAIN, PassFlags

FULL_PARAMS = 7_056_424_223   # uniavgen.md §2, fullsize_state_dict_keys.txt
FULL_TENSORS = 2036


def _live(model):
    """Random non-zero interaction outputs (the released init zeroes `o`), so both directions are live."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.interaction.named_parameters():
            if ".o." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return _live(HarmonyModel(preset("uniavgen-tiny"))).eval()


def _inputs(batch=1, frames=6, ta=131, ref=0, seed=1):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(batch, 48, frames, 6, 8, generator=g)
    audio = torch.randn(batch, 80, ta, generator=g)
    t_video = torch.full((batch, frames), 0.7)
    t_video[:, 0] = 0                                          # frame 0 held (the reference image's slot)
    t_audio = torch.full((batch, ta), 0.7)
    ids = transcript_ids(["Over the past week, it rained.", "Hi."][:batch] + ["x"] * max(0, batch - 2))
    cond = Conditioning(torch.randn(batch, 7, 32, generator=g), None, ids.ids,
                        ref_audio=torch.randn(batch, 80, ref, generator=g) if ref else None,
                        ref_image=torch.randn(batch, 48, 1, 6, 8, generator=g), transcript_lens=ids.lens)
    return video, audio, t_video, t_audio, cond


# -- full size ---------------------------------------------------------------------------------------------

def test_uniavgen_full_size_on_meta():
    cfg = preset("uniavgen")
    assert parameter_count(cfg) == FULL_PARAMS
    assert parameter_counts(cfg) == {"video": 4_999_787_712, "audio": 1_419_073_616, "interaction": 637_562_895}
    shapes = state_shapes(cfg)
    assert len(shapes) == FULL_TENSORS
    assert parameter_count(cfg.replace(**{"interaction.layers": (0, 2)})) < FULL_PARAMS   # negative control


def _reference_shapes(parity_dir):
    path = parity_dir / "uniavgen_joint" / "fullsize_state_dict_keys.txt"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    rows = [line.rstrip("\n").split("\t")[:2] for line in path.read_text().splitlines() if line.strip()]
    return {k: tuple(int(n) for n in s.strip("[]").split(",") if n.strip()) for k, s in rows}


def test_uniavgen_full_size_keys_match_the_reference(parity_dir):
    """Shape by shape after the key map: the released model's 2036 tensors, no more, no fewer."""
    theirs = _reference_shapes(parity_dir)
    ours = state_shapes(preset("uniavgen"))
    mapped = {UNIAVGEN.apply(k): s for k, s in theirs.items()}
    assert len(theirs) == FULL_TENSORS and sum(torch.Size(s).numel() for s in theirs.values()) == FULL_PARAMS
    assert mapped == ours
    assert {UNIAVGEN.invert(k) for k in ours} == set(theirs)            # the map is one to one
    assert config_for_uniavgen(mapped, {}) == preset("uniavgen")         # detected from shapes alone


# -- config ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["uniavgen", "uniavgen-tiny"])
def test_uniavgen_config_round_trip(name):
    cfg = preset(name)
    assert HarmonyConfig.from_json(cfg.to_json()) == cfg
    assert cfg.interacting_layers() == ((0, 2) if name.endswith("tiny") else tuple(range(0, 30, 2)))


def test_uniavgen_config_refuses_mixed_parts():
    cfg = preset("uniavgen")
    with pytest.raises(ValueError, match="audio.kind 'mel'"):
        cfg.replace(**{"audio.kind": "mmdit"})
    with pytest.raises(ValueError, match="equal head dims"):
        cfg.replace(**{"audio.num_heads": 24})
    with pytest.raises(ValueError, match="ref_frame"):
        preset("tiny").replace(**{"video.ref_frame": True})


# -- flags ---------------------------------------------------------------------------------------------------

def test_uniavgen_pass_flags_from_reference():
    assert PassFlags.from_reference() == PLAIN
    assert PassFlags.from_reference(zero_con=True, slg=11) == PassFlags(False, False, (11,))
    assert PassFlags.from_reference(no_v2a=True, slg=-1) == PassFlags(a2v=True, v2a=False)
    assert PassFlags.from_reference(slg=0).skip_blocks == ()          # the reference skips only for slg > 0


def _zeroed(model, direction):
    clone = HarmonyModel(model.cfg).eval()
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in clone.interaction.named_parameters():
            if f".{direction}.o." in name:
                p.zero_()
    return clone


@pytest.mark.parametrize("direction", ["a2v", "v2a"])
def test_uniavgen_direction_off_equals_its_residual_removed(tiny, direction):
    """a2v / v2a off = that direction's residual dropped (the reference's `(1 - no_a2v) * delta`)."""
    args = _inputs()
    with torch.no_grad():
        off = tiny(*args, flags=PassFlags(**{direction: False}))
        zero = _zeroed(tiny, direction)(*args)
        plain = tiny(*args)
    for a, b, c in zip(off, zero, plain):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    moved = 0 if direction == "a2v" else 1
    assert (off[moved] - plain[moved]).abs().max() > 1e-3                       # negative control


def test_uniavgen_skipped_layer_changes_output(tiny):
    args = _inputs()
    with torch.no_grad():
        plain, skipped = tiny(*args), tiny(*args, flags=PassFlags(skip_blocks=(1,)))
    assert (plain[0] - skipped[0]).abs().max() > 1e-3 and (plain[1] - skipped[1]).abs().max() > 1e-3


def test_harmony_flags_without_interaction_equal_a_model_without_it():
    """Harmony's GLDI honours the flags too: both directions off = the same towers with kind 'none'."""
    torch.manual_seed(0)
    cfg = preset("tiny")
    model = HarmonyModel(cfg).eval()
    with torch.no_grad():
        for p in model.interaction.parameters():
            p.normal_(0, 0.2)
    bare = HarmonyModel(cfg.replace(**{"interaction.kind": "none"})).eval()
    bare.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("interaction.")})
    g = torch.Generator().manual_seed(3)
    args = (torch.randn(2, 48, 5, 8, 12, generator=g), torch.randn(2, 20, 31, generator=g),
            torch.rand(2, 5, generator=g), torch.rand(2, 31, generator=g),
            Conditioning(torch.randn(2, 6, 32, generator=g), torch.randn(2, 4, 32, generator=g),
                         encode_transcripts(["hello", "harmony"]), torch.randn(2, 20, 7, generator=g)))
    with torch.no_grad():
        off, ref, plain = model(*args, flags=PLAIN.without_interaction()), bare(*args), model(*args)
    assert torch.equal(off[0], ref[0]) and torch.equal(off[1], ref[1])
    assert (plain[0] - off[0]).abs().max() > 1e-3                              # negative control


def test_denoiser_passes_flags_as_keyword():
    seen = []

    class Fake(torch.nn.Module):
        def forward(self, video, audio, t_video, t_audio, cond, **kw):
            seen.append(kw)
            return video, audio

    video, audio, t_video, t_audio, cond = _inputs(batch=1)
    den = HarmonyDenoiser(Fake(), cond)
    den(video, audio, t_video, t_audio, torch.zeros(1, dtype=torch.long))
    den(video, audio, t_video, t_audio, torch.zeros(1, dtype=torch.long), flags=PassFlags(skip_blocks=(1,)))
    assert seen == [{}, {"flags": PassFlags(skip_blocks=(1,))}]


# -- batching ----------------------------------------------------------------------------------------------

def test_uniavgen_batch_rows_equal_single_rows(tiny):
    """Rows with different transcripts (lengths 30 and 10), held frames and reference images, batched through
    the denoiser's stacked conditioning, give each row's own numbers."""
    video, audio, t_video, t_audio, cond = _inputs(batch=2, ref=9)
    t_video[1, :2], t_audio[1, :40] = 0, 0                           # row 1: continuation-style held frames
    negative = Conditioning(cond.video_context[:, :1] * 0, None, negative_transcript_ids(2).ids,
                            ref_audio=cond.ref_audio, ref_image=cond.ref_image,
                            transcript_lens=negative_transcript_ids(2).lens)
    den = HarmonyDenoiser(tiny, cond, negative)
    rows = torch.tensor([0, 1, 1, 0])              # cond_index: row r is item r % 2 of the positive or negative
    with torch.no_grad():
        out = den(video.repeat(2, 1, 1, 1, 1), audio.repeat(2, 1, 1), t_video.repeat(2, 1), t_audio.repeat(2, 1),
                  rows)
        table = stack(cond, negative)
        for r, pick in enumerate([0, 3, 2, 1]):        # table = (pos 0, pos 1, neg 0, neg 1): row r reads `pick`
            one = tiny(video[r % 2:r % 2 + 1], audio[r % 2:r % 2 + 1], t_video[r % 2:r % 2 + 1],
                       t_audio[r % 2:r % 2 + 1], _trim(table.select(torch.tensor([pick]))))
            torch.testing.assert_close(out[0][r:r + 1], one[0], atol=2e-5, rtol=2e-5)
            torch.testing.assert_close(out[1][r:r + 1], one[1], atol=2e-5, rtol=2e-5)


def _trim(cond):
    """A single row's conditioning with its batch padding removed (as it would be built alone)."""
    n = int(cond.transcript_lens[0])
    return Conditioning(cond.video_context, None, cond.transcript[:, :n], cond.ref_audio, cond.ref_image,
                        cond.transcript_lens)


def test_uniavgen_held_frames_are_not_updated(tiny):
    """All video held (video-driven): the interaction leaves the video stream alone, so A2V on or off agree."""
    video, audio, t_video, t_audio, cond = _inputs()
    t_video.zero_()
    with torch.no_grad():
        on, off = tiny(video, audio, t_video, t_audio, cond), tiny(video, audio, t_video, t_audio, cond,
                                                                   flags=PassFlags(a2v=False))
    assert torch.equal(on[0], off[0]) and torch.equal(on[1], off[1])


# -- tables and errors -------------------------------------------------------------------------------------

def test_uniavgen_full_size_windows():
    """uniavgen.md §5 at 506 mel frames / 21 latent frames: 51 tokens each, edges duplicated."""
    w = a2v_window_index(506, 21, 5)
    assert w.shape == (21, 51)
    assert torch.equal(w[0], torch.cat([torch.zeros(37, dtype=torch.long), torch.arange(14)]))
    assert sorted(set(w[1].tolist())) == list(range(45)) and w[1][-1] == 44
    assert torch.equal(w[10], torch.arange(219, 270))
    assert w[20][0] == 469 and bool((w[20][37:] == 505).all()) and torch.equal(w[20][:37], torch.arange(469, 506))


def test_uniavgen_v2a_tail_weights_sum_to_two():
    """Tokens at pixel position >= 80 (j >= 80 * 506 / 81, i.e. the last 6) read the last pixel frame twice."""
    down, up, w_down, w_up = v2a_interpolation(506, 21)
    total = w_down + w_up
    assert torch.allclose(total[:500], torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(total[500:], torch.tensor(2.0), atol=1e-5)
    assert int(up.max()) == 20 and int(down.min()) == 0 and bool((up[500:] == 20).all())


def test_uniavgen_clear_errors(tiny):
    video, audio, t_video, t_audio, cond = _inputs()
    no_ref = Conditioning(cond.video_context, None, cond.transcript, transcript_lens=cond.transcript_lens)
    with pytest.raises(ValueError, match="ref_image"):
        tiny(video, audio, t_video, t_audio, no_ref)
    bad_ids = Conditioning(cond.video_context, None, cond.transcript + 5000, ref_image=cond.ref_image)
    with pytest.raises(ValueError, match="transcript ids"):
        tiny(video, audio, t_video, t_audio, bad_ids)
    with pytest.raises(ValueError, match="at least 2 latent frames"):
        tiny(video[:, :, :1], audio, t_video[:, :1], t_audio, cond)


def test_uniavgen_memory_estimate_is_gb_scale():
    cfg = preset("uniavgen")
    one = forward_bytes(cfg, 1, 22 * 943, 506, element_size=2)
    assert 1 * 2**30 < one < 16 * 2**30
    assert forward_bytes(cfg, 2, 22 * 943, 506, element_size=2) == pytest.approx(2 * one, rel=1e-6)
