"""tests/nodes: the pack's nodes against the in-repo ComfyUI stand-in (comfy_stub/), no ComfyUI needed.
See node_harness.py for how the pack is imported and nodes are run."""

from __future__ import annotations

import pytest

from node_harness import load_pack, pack_module, run_node

import comfy.model_management as mm  # noqa: I001  (the stand-in; node_harness put it on sys.path)
import comfy.utils
import comfy_api.latest as comfy_latest
import folder_paths
from comfy.cli_args import LatentPreviewMethod, args


@pytest.fixture(scope="session")
def pack():
    return load_pack()


@pytest.fixture(autouse=True)
def comfy_env(tmp_path, monkeypatch):
    """Fresh ComfyUI state per test: folders under tmp_path, no interrupt, no hook, no previews."""
    models = tmp_path / "models"
    for sub in ("vae", "harmony"):
        (models / sub).mkdir(parents=True)
    monkeypatch.setattr(folder_paths, "models_dir", str(models))
    monkeypatch.setattr(
        folder_paths,
        "folder_names_and_paths",
        {"vae": ([str(models / "vae")], folder_paths.supported_pt_extensions)},
    )
    monkeypatch.setattr(folder_paths, "output_directory", str(tmp_path / "output"))
    monkeypatch.setattr(args, "preview_method", LatentPreviewMethod.NoPreviews)
    monkeypatch.setattr(args, "disable_metadata", False)
    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", None)
    mm.interrupt_current_processing(False)
    mm.current_loaded_models.clear()
    comfy_latest.progress_updates.clear()
    yield tmp_path
    mm.interrupt_current_processing(False)


@pytest.fixture(scope="session")
def demo_model(pack):
    """MODEL of the bundled demo model (the untrained demo preset while the file is not bundled yet)."""
    loaders = pack_module("nodes.loaders")
    return run_node(
        loaders.HarmonyModelLoader, ckpt_name=loaders.DEMO_CHOICE, weight_dtype="default", attention="sdpa"
    )[0]


@pytest.fixture(scope="session")
def demo_codecs(demo_model):
    loaders = pack_module("nodes.loaders")
    return run_node(
        loaders.HarmonyCodecLoader,
        model=demo_model,
        video_vae=loaders.FROM_MODEL,
        audio_vae=loaders.FROM_MODEL,
        vocoder=loaders.FROM_MODEL,
    )[0]


@pytest.fixture(scope="session")
def demo_text(demo_model):
    cond = pack_module("nodes.conditioning")
    return run_node(
        cond.HarmonyTextEncode,
        model=demo_model,
        video_caption="a red ball bounces",
        audio_caption="a drum hit at each bounce",
        transcript="",
        negative="",
    )
