"""The sampler, best-of-takes and decode refuse a size that does not fit ComfyUI's free memory (a fake small
budget here), before loading anything or allocating from the size."""

from __future__ import annotations

import comfy.model_management as mm
import comfy.model_patcher
import pytest
import torch
from comfy_api.latest import io

from node_harness import SAMPLER_WIDGETS, pack_module, run_node

sampling = pack_module("nodes.sampling")
takes = pack_module("nodes.takes")
media = pack_module("nodes.media")
MIB = 1024 ** 2


@pytest.fixture
def budget(monkeypatch):
    def set_budget(nbytes):
        monkeypatch.setattr(mm, "free_memory_bytes", nbytes)
    return set_budget


@pytest.fixture
def positive(demo_text):
    return demo_text[0]


def test_sampler_refuses_before_loading(demo_model, demo_codecs, positive, budget):
    budget(64 * MIB)
    with pytest.raises(ValueError, match=r"256x256, 81 frames, 1 take\(s\) needs about .* GiB while decoding .* "
                                         r"but only 0.06 GiB is available; lower width/height"):
        run_node(sampling.HarmonySampler, hidden={io.Hidden.unique_id: "1"}, model=demo_model, codecs=demo_codecs,
                 positive=positive, **{**SAMPLER_WIDGETS, "width": 256, "height": 256, "frames": 81})
    assert mm.current_loaded_models == [] and mm.memory_requests == []
    widgets = {k: v for k, v in SAMPLER_WIDGETS.items() if k != "batch"}
    with pytest.raises(ValueError, match="needs about"):
        run_node(takes.HarmonyBestOfTakes, hidden={io.Hidden.unique_id: "1"}, model=demo_model,
                 codecs=demo_codecs, positive=positive, takes=3, **{**widgets, "width": 512, "height": 512})


def test_sampler_counts_what_comfy_could_free(demo_model, demo_codecs, positive, budget):
    """Another model ComfyUI holds on the device counts as available (ComfyUI unloads it when we load); our
    own models do not. The 64x64, 9-frame clip needs about 0.13 GiB."""
    budget(64 * MIB)
    other = comfy.model_patcher.ModelPatcher(torch.nn.Linear(1, 1), "cpu", "cpu")
    other.model.model_loaded_weight_memory = 512 * MIB
    run = dict(hidden={io.Hidden.unique_id: "1"}, model=demo_model, codecs=demo_codecs, positive=positive,
               **SAMPLER_WIDGETS)
    mm.current_loaded_models[:] = [demo_model]
    with pytest.raises(ValueError, match="needs about 0.13 GiB"):
        run_node(sampling.HarmonySampler, **run)
    mm.current_loaded_models[:] = [other]
    assert run_node(sampling.HarmonySampler, **run)[0]["samples"].shape[0] == 1


def test_decode_refuses_a_latent_too_large_to_decode(demo_codecs, budget):
    budget(64 * MIB)
    cells = 512 // demo_codecs.video.spatial_stride  # 6.75 pixel buffers of 2 x 3 x 81 x 512 x 512 floats
    video = torch.zeros(2, demo_codecs.video.latent_channels, 21, cells, cells)  # 2 takes, 81 frames, 512x512
    latent = {"samples": video, "harmony_audio": torch.zeros(2, demo_codecs.audio.latent_channels, 102),
              "harmony_fps": "25"}
    with pytest.raises(ValueError, match=r"decoding 512x512, 81 frames, 2 take\(s\) needs about 3.20 GiB"):
        run_node(media.HarmonyDecode, codecs=demo_codecs, latent=latent)
