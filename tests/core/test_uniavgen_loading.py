"""Loading UniAVGen checkpoints: its released layout (diffusers index + shards), one merged file, ComfyUI's
prefix; config from shapes + `constructor_kwargs`; strict (a missing interaction module is an error)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from harmony_core.config import preset
from harmony_core.loading import CheckpointError, read_header
from harmony_core.loading.keymaps import UNIAVGEN, detect
from harmony_core.model.load import load_model

INDEX = "diffusion_pytorch_model.safetensors.index.json"


@pytest.fixture
def weights(parity_dir):
    path = parity_dir / "uniavgen_joint" / "weights.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    return path, load_file(str(path)), metadata


def _same_weights(model, sd):
    ours = model.state_dict()
    assert len(ours) == len(sd)
    for key, value in sd.items():
        assert torch.equal(ours[UNIAVGEN.apply(key)], value), key


def test_uniavgen_fixture_file_loads(weights):
    path, sd, _ = weights
    model, report = load_model(path)
    assert report.format == "uniavgen" and report.ok and report.initialised == ()
    assert report.config == preset("uniavgen-tiny") and report.loaded == len(sd) == 333
    _same_weights(model, sd)


def _write_shards(folder, sd, metadata):
    keys = sorted(sd)
    halves = {"diffusion_pytorch_model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "diffusion_pytorch_model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, part in halves.items():
        save_file({k: sd[k] for k in part}, folder / name, metadata={"format": "pt"})
    index = {"metadata": {"total_size": 0, "constructor_kwargs": metadata["constructor_kwargs"]},
             "weight_map": {k: name for name, part in halves.items() for k in part}}
    (folder / INDEX).write_text(json.dumps(index))
    return halves


def test_uniavgen_sharded_folder_loads(weights, tmp_path):
    _, sd, metadata = weights
    _write_shards(tmp_path, sd, metadata)
    for where in (tmp_path, tmp_path / INDEX):
        model, report = load_model(where)
        assert report.ok and report.config == preset("uniavgen-tiny")
        _same_weights(model, sd)


def test_uniavgen_sharded_folder_errors(weights, tmp_path):
    _, sd, metadata = weights
    halves = _write_shards(tmp_path, sd, metadata)
    second = sorted(halves)[1]
    kept = {k: v for k, v in load_file(str(tmp_path / second)).items() if k != halves[second][0]}
    save_file(kept, tmp_path / second)
    with pytest.raises(CheckpointError, match="incomplete or mixed"):
        read_header(tmp_path)
    (tmp_path / second).unlink()
    with pytest.raises(CheckpointError, match="shard files missing"):
        read_header(tmp_path)
    (tmp_path / INDEX).unlink()
    with pytest.raises(CheckpointError, match="exactly one .safetensors"):
        save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
        read_header(tmp_path)


def test_uniavgen_comfyui_prefixed_file_loads(weights, tmp_path):
    _, sd, metadata = weights
    prefixed = tmp_path / "uniavgen_comfy.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in sd.items()}, prefixed, metadata=metadata)
    model, report = load_model(prefixed)
    assert report.ok and report.format == "uniavgen"
    _same_weights(model, sd)


def test_uniavgen_missing_interaction_module_is_an_error(weights, tmp_path):
    _, sd, metadata = weights
    gone = [k for k in sd if k.startswith("a2v_blocks.1.")]
    bad = tmp_path / "no_a2v1.safetensors"
    save_file({k: v for k, v in sd.items() if k not in gone}, bad, metadata=metadata)
    with pytest.raises(CheckpointError) as err:
        load_model(bad)
    msg = str(err.value)
    assert f"missing ({len(gone)})" in msg and "a2v_blocks.1.k.bias" in msg and str(bad) in msg
    no_mask = tmp_path / "no_mask.safetensors"
    save_file({k: v for k, v in sd.items() if ".mask_head." not in k}, no_mask, metadata=metadata)
    with pytest.raises(CheckpointError, match="a2v_blocks.0.mask_head"):
        load_model(no_mask)


def test_uniavgen_incomplete_file_names_the_size_key(weights, tmp_path):
    _, sd, metadata = weights
    bad = tmp_path / "no_embedding.safetensors"
    save_file({k: v for k, v in sd.items() if not k.startswith("audio_embedding.")}, bad, metadata=metadata)
    with pytest.raises(CheckpointError, match="audio_embedding.0.weight"):
        load_model(bad)


def test_uniavgen_detection_and_rename():
    keys = ["patch_embedding.weight", "blocks.0.self_attn.q.weight", "text_embedding_video.0.weight",
            "text_embedding.text_embed.weight", "a2v_blocks.0.q.weight"]
    assert detect(keys) is UNIAVGEN
    assert detect(keys[:2]).name == "wan2.2"                       # negative control: plain Wan2.2
    assert UNIAVGEN.apply("text_embedding_video.0.weight") == "video.text_embedding.0.weight"
    assert UNIAVGEN.apply("text_embedding.text_blocks.3.grn.gamma") == \
        "audio.transcript_embedding.text_blocks.3.grn.gamma"
    assert UNIAVGEN.apply("text_proj.weight") == "audio.transcript_embedding.proj.weight"
    assert UNIAVGEN.apply("a2v_blocks.14.mask_head.head.bias") == "interaction.28.a2v.mask_head.head.bias"
    assert UNIAVGEN.apply("v2a_blocks.1.o.weight") == "interaction.2.v2a.o.weight"
    assert UNIAVGEN.apply("head_audio.modulation") == "audio.head.modulation"
    assert UNIAVGEN.apply("head.modulation") == "video.head.modulation"
    assert UNIAVGEN.invert("audio.transcript_embedding.proj.weight") == "text_proj.weight"
