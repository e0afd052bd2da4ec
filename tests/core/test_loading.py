"""safetensors loading: round trip, one clear error, format detection, meta-device 5B build."""
from __future__ import annotations

import os
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from harmony_core.config import preset
from harmony_core.loading import CheckpointError, read_header, save_checkpoint
from harmony_core.loading.safetensors_io import write_safetensors
from harmony_core.model.harmony import HarmonyModel
from harmony_core.model.load import build_empty, load_model


@pytest.fixture
def tiny_file(tmp_path):
    torch.manual_seed(1)
    model = HarmonyModel(preset("tiny"))
    return model, save_checkpoint(model, tmp_path / "tiny.safetensors")


def test_round_trip(tiny_file):
    model, path = tiny_file
    loaded, report = load_model(path)
    assert report.ok and report.format == "harmony" and report.config == model.cfg
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_dtype_on_load(tiny_file):
    _, path = tiny_file
    loaded, _ = load_model(path, dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}


def test_never_overwrites(tiny_file):
    model, path = tiny_file
    with pytest.raises(FileExistsError):
        save_checkpoint(model, path)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_written_files_get_ordinary_permissions_and_no_temp_file_is_left(tmp_path):
    mask = os.umask(0o022)                        # what a new file gets: 0o666 less the umask
    try:
        path = write_safetensors({"w": torch.zeros(2)}, tmp_path / "m.safetensors")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644     # not a private temp file's 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert torch.equal(load_file(str(path))["w"], torch.zeros(2))


def test_comfyui_prefixed_keys_load(tiny_file, tmp_path):
    model, path = tiny_file
    sd = load_file(path)
    header = read_header(path)
    prefixed = tmp_path / "comfy.safetensors"
    save_file({f"model.diffusion_model.{k}": v for k, v in sd.items()}, prefixed, metadata=header.metadata)
    loaded, report = load_model(prefixed)
    assert report.ok
    assert torch.equal(loaded.video.patch_embedding.weight, model.video.patch_embedding.weight)


def test_one_error_names_missing_unexpected_and_misshaped(tiny_file, tmp_path):
    _, path = tiny_file
    sd = load_file(path)
    del sd["audio.head.head.weight"]
    sd["video.blocks.0.extra"] = torch.zeros(1)
    sd["video.blocks.1.ffn.0.weight"] = torch.zeros(3, 3)
    bad = tmp_path / "bad.safetensors"
    save_file(sd, bad, metadata=read_header(path).metadata)
    with pytest.raises(CheckpointError) as err:
        load_model(bad)
    msg = str(err.value)
    assert "audio.head.head.weight" in msg and "video.blocks.0.extra" in msg
    assert "video.blocks.1.ffn.0.weight" in msg and "(3, 3)" in msg and str(bad) in msg


def test_refuses_pickles_and_garbage(tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="only .safetensors"):
        load_model(pt)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_model(junk)
    other = tmp_path / "other.safetensors"
    save_file({"encoder.conv.weight": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a Harmony or Wan2.2"):
        load_model(other)


def test_harmony_5b_on_meta_device():
    model = build_empty(preset("harmony-5b"))
    video = sum(p.numel() for p in model.video.parameters())
    assert all(p.is_meta for p in model.parameters())
    assert 4.95e9 < video < 5.05e9, video           # Wan2.2-TI2V-5B
    assert model.cfg.video.num_layers == 30 and model.cfg.video.head_dim == 128
