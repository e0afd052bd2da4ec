"""The memory kit in the loader (fp8 / swap_blocks / compile widgets, ComfyUI's --fp8_*-unet flags) and Harmony's
weights as ComfyUI managed layers (nodes/adapters/ops.py, memory_kit.py), against the ComfyUI stand-in.

Bit-identity is the bar wherever only the storage class or the place of a weight changes (comfy.ops layers, block
swap, casts per op): torch.equal, no tolerance. tests/e2e/test_e2e_memory_kit.py repeats the layer checks against
the real comfy.ops and the real lowvram load.
"""

from __future__ import annotations

import copy
import logging

import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import pytest
import torch
from comfy.cli_args import args
from comfy_api.latest import io

from node_harness import SAMPLER_WIDGETS, pack_module, run_node

loaders = pack_module("nodes.loaders")
sampling = pack_module("nodes.sampling")
adapter = pack_module("nodes.adapters.model_patcher")
ops = pack_module("nodes.adapters.ops")
memory_kit = pack_module("nodes.adapters.memory_kit")
fp8 = pack_module("harmony_core.model.fp8")
bench = pack_module("harmony_core.bench.kit")
gpu = pack_module("harmony_core.bench.gpu")
config = pack_module("harmony_core.config")
memory = pack_module("harmony_core.model.memory")
CPU = torch.device("cpu")


def load(**over):
    widgets = {"ckpt_name": loaders.DEMO_CHOICE, "weight_dtype": "default", "attention": "sdpa", **over}
    return run_node(loaders.HarmonyModelLoader, **widgets)[0]


def sample(model, codecs, positive):
    return run_node(sampling.HarmonySampler, hidden={io.Hidden.unique_id: "3"}, model=model, codecs=codecs,
                    positive=positive, **SAMPLER_WIDGETS)[0]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


gldi, MODELS = bench.small_gldi, bench.SMALL_MODELS


def managed(model):
    return [(n, m) for n, m in model.named_modules() if ops.is_managed(m)]


# --- the widgets -----------------------------------------------------------------------------------------------
def test_the_kit_widgets_are_optional_with_defaults_that_change_nothing():
    info = loaders.HarmonyModelLoader.GET_NODE_INFO_V1()["input"]
    assert set(info["optional"]) == {"fp8", "swap_blocks", "compile"}
    fp8_type, fp8_opt = info["optional"]["fp8"]
    assert fp8_type == ["off", "row", "tensor"] or fp8_opt["options"] == ["off", "row", "tensor"]
    assert fp8_opt["default"] == "off"
    swap_type, swap = info["optional"]["swap_blocks"]
    assert swap_type == "INT" and (swap["default"], swap["min"], swap["max"]) == (0, 0, loaders.MAX_SWAP)
    assert "ComfyUI's own offloading" in swap["tooltip"]
    assert info["optional"]["compile"][0] == "BOOLEAN" and info["optional"]["compile"][1]["default"] is False


def test_swap_blocks_beyond_the_models_layers_is_refused_naming_the_widget():
    layers = config.preset("demo").video.num_layers
    with pytest.raises(ValueError, match=rf"swap_blocks: {layers + 1} is more than this model's {layers} layers; "
                                         rf"choose 0\.\.{layers}"):
        load(swap_blocks=layers + 1)
    with pytest.raises(ValueError, match=r"swap_blocks = 65 is outside its range 0\.\.64"):
        load(swap_blocks=65)
    with pytest.raises(ValueError, match=r"fp8 = 'int8' is not one of its options"):
        load(fp8="int8")


def test_swap_blocks_of_a_checkpoint_is_checked_before_its_tensors_are_read(comfy_env, monkeypatch):
    ckpt = pack_module("harmony_core.loading.checkpoint")
    model = pack_module("harmony_core.model.harmony").HarmonyModel(config.preset("demo"))
    ckpt.save_checkpoint(model, comfy_env / "models" / "harmony" / "mine.safetensors")
    monkeypatch.setattr(loaders, "load_model", lambda *a, **k: pytest.fail("loaded before the check"))
    with pytest.raises(ValueError, match="swap_blocks: 9 is more than this model's"):
        load(ckpt_name="mine.safetensors", swap_blocks=9)


# --- comfy.ops layers ------------------------------------------------------------------------------------------
def test_the_loader_makes_every_linear_and_the_patch_conv_a_managed_layer_with_the_same_weights(demo_model):
    model = demo_model.model.diffusion_model
    reference = pack_module("harmony_core.build").load_pipeline(None, allow_untrained=True).model
    kinds = {type(m).__name__ for _, m in managed(model)}
    assert kinds == {"Linear", "Conv3d"}
    plain = [n for n, m in model.named_modules() if type(m) in (torch.nn.Linear, torch.nn.Conv3d)]
    assert plain and all(n.startswith("text_encoder.") for n in plain)   # torch's fast path reads those weights
    assert isinstance(model.video.patch_embedding, comfy.ops.disable_weight_init.Conv3d)
    plain, ours = reference.state_dict(), model.state_dict()
    assert list(plain) == list(ours) and all(torch.equal(plain[k], ours[k]) for k in plain)


def plain_patcher():
    """MODEL of the demo model as the pack made it before comfy.ops: plain torch layers, no kit."""
    model = pack_module("harmony_core.build").load_pipeline(None, allow_untrained=True).model
    return comfy.model_patcher.ModelPatcher(adapter.HarmonyModule(model, "plain"), CPU, CPU)


@pytest.mark.parametrize("mode", ["joint", "audio_driven", "video_driven"])
def test_the_sampler_gives_the_same_bits_as_before_comfy_ops(mode, demo_model, demo_codecs, demo_text):
    extra = {}
    if mode == "audio_driven":
        wave = {"waveform": torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(0)) * 0.1,
                "sample_rate": 16000}
        extra["audio_cond"] = run_node(pack_module("nodes.conditioning").HarmonyAudioCondition, codecs=demo_codecs,
                                       audio=wave, role="drive", start_seconds=0.0, max_seconds=0.0)[0]
    if mode == "video_driven":
        images = torch.rand(9, 64, 64, 3, generator=torch.Generator().manual_seed(0))
        extra["video_cond"] = run_node(pack_module("nodes.conditioning").HarmonyVideoCondition, codecs=demo_codecs,
                                       images=images, fps=25.0)[0]

    def run(model):
        return run_node(sampling.HarmonySampler, hidden={io.Hidden.unique_id: "3"}, model=model, codecs=demo_codecs,
                        positive=demo_text[0], **{**SAMPLER_WIDGETS, "mode": mode}, **extra)[0]

    ours, before = run(demo_model), run(plain_patcher())
    assert torch.equal(ours["samples"], before["samples"])
    assert torch.equal(ours["harmony_audio"], before["harmony_audio"])


@pytest.mark.parametrize("kind", MODELS)
def test_managed_layers_are_bit_identical_to_plain_torch_even_when_cast_per_op(kind):
    model, x = MODELS[kind]()
    with torch.no_grad():
        ref = model(*x)
        ops.use_comfy_ops(model, CPU)
        assert same(model(*x), ref)
        for _, m in managed(model):   # what ComfyUI's lowvram load does to the layers it streams
            m.comfy_cast_weights = True
        before = comfy.ops.casts
        assert same(model(*x), ref)
        assert comfy.ops.casts - before >= len(managed(model)) - 1   # every layer cast (the head's mask may idle)


def _trap(model):
    """Every managed layer's own weight/bias made NaN, the true values handed out only by cast_bias_weight (a
    weight_function, as ComfyUI's LoRA patches are): a read that bypasses ComfyUI's cast sees NaN. The true copy
    keeps requires_grad: torch's matmul folds a non-contiguous 3-D input differently for a weight that requires grad
    (another summation order), which would change the last bits."""
    for _, m in managed(model):
        for key in ("weight", "bias"):
            p = m._parameters.get(key)
            if p is None:
                continue
            true = p.detach().clone().requires_grad_(p.requires_grad)
            p.data = torch.full_like(true, float("nan"))
            setattr(m, f"{key}_function", [lambda w, t=true: t.to(w.dtype)])


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("scaling", [None, "row", "tensor"])
def test_weights_read_outside_a_forward_come_through_comfys_cast(kind, scaling):
    """DIRECT_READS is complete: with every managed weight reachable only through cast_bias_weight the output is
    unchanged; negative control: without the hooks the direct reads see the NaN (or, for fp8, the raw fp8 storage,
    which torch refuses to mix with float32)."""
    model, x = MODELS[kind]()
    if scaling:
        fp8.quantize_model(model, scaling)
    with torch.no_grad():
        ref = model(*x)
        ops.use_comfy_ops(model, CPU)
        _trap(model)
        assert same(model(*x), ref)
        for module in model.modules():
            if hasattr(module, "_harmony_materialize"):
                module._forward_pre_hooks.clear()
        try:
            out = model(*x)
        except RuntimeError as err:
            assert scaling and "Float8" in str(err)
            return
    assert any(torch.isnan(o).any() for o in out)


@pytest.mark.parametrize("scaling, shape", [("row", (-1, 1)), ("tensor", ())])
def test_fp8_layers_become_comfy_fp8_linear_bit_identical_for_row_and_tensor_scales(scaling, shape):
    model, x = gldi()
    fp8.quantize_model(model, scaling)
    with torch.no_grad():
        ref = model(*x)
        ops.use_comfy_ops(model, CPU)
        layers = [m for _, m in model.named_modules() if isinstance(m, fp8.FP8Linear)]
        assert layers and all(isinstance(m, ops.ComfyFP8Linear) for m in layers)
        first = layers[0]
        assert first.weight is first._parameters["weight"] and first.weight.dtype == torch.float8_e4m3fn
        want = (first.out_features, 1) if shape else ()
        assert tuple(first.scale_weight.shape) == want and first.scale_weight.dtype == torch.float32
        assert same(model(*x), ref)
        for m in layers:
            m.comfy_cast_weights = True
        assert same(model(*x), ref)


def test_move_strays_moves_what_comfy_does_not_stream():
    model, _ = gldi()
    fp8.quantize_model(model, "row")
    ops.use_comfy_ops(model, CPU)
    meta = torch.device("meta")   # a second device on a CPU-only machine
    moved = ops.move_strays(model, meta)
    assert moved > 0
    for name, m in model.named_modules():
        for key, t in (*m._parameters.items(), *m._buffers.items()):
            if t is None:
                continue
            streamed = ops.is_managed(m) and key in ("weight", "bias")
            assert t.is_meta != streamed, f"{name}.{key}"
    assert model.video.blocks[0].modulation.is_meta          # a module with own and child parameters
    assert ops.off_device(model, meta) is None and ops.off_device(model, CPU) is not None


# --- fp8 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("widget, scale_ndim", [("row", 2), ("tensor", 0)])
def test_fp8_widget_stores_fp8_with_its_scaling(widget, scale_ndim):
    model = load(fp8=widget).model.diffusion_model
    layers = [m for _, m in fp8.fp8_layers(model)]
    assert layers and all(isinstance(m, ops.ComfyFP8Linear) for m in layers)
    assert {m.weight.dtype for m in layers} == {torch.float8_e4m3fn}
    assert {m.scale_weight.ndim for m in layers} == {scale_ndim}


@pytest.mark.parametrize("flag, fmt", [("fp8_e4m3fn_unet", torch.float8_e4m3fn), ("fp8_e5m2_unet", torch.float8_e5m2)])
def test_comfy_fp8_unet_flags_give_fp8_weights_with_per_tensor_scales(flag, fmt, monkeypatch, caplog):
    monkeypatch.setattr(args, flag, True)
    with caplog.at_level(logging.INFO):
        model = load().model.diffusion_model
    layers = [m for _, m in fp8.fp8_layers(model)]
    assert layers and {m.weight.dtype for m in layers} == {fmt} and {m.scale_weight.ndim for m in layers} == {0}
    assert f"--{flag.replace('_unet', '-unet')}" in caplog.text
    row = load(fp8="row").model.diffusion_model   # the widget chooses the scaling, the flag the format
    assert {(m.weight.dtype, m.scale_weight.ndim) for _, m in fp8.fp8_layers(row)} == {(fmt, 2)}


def test_fp8_e8m0_flag_is_ignored_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(args, "fp8_e8m0fnu_unet", True)
    with caplog.at_level(logging.WARNING):
        model = load().model.diffusion_model
    assert not list(fp8.fp8_layers(model)) and "float8_e8m0fnu has no mantissa" in caplog.text


def test_comfy_unet_dtype_flags_act_as_weight_dtype_default(monkeypatch):
    monkeypatch.setattr(args, "bf16_unet", True)
    assert load().model_dtype() == torch.bfloat16
    assert load(weight_dtype="fp32").model_dtype() == torch.float32   # the widget wins when set


def test_fp8_model_samples_and_comfy_counts_its_cast_copies(demo_codecs, demo_text):
    model = load(fp8="tensor")
    assert model.model.manual_cast_dtype == torch.float32
    codecs_loader = run_node(loaders.HarmonyCodecLoader, model=model, video_vae=loaders.FROM_MODEL,
                             audio_vae=loaders.FROM_MODEL, vocoder=loaders.FROM_MODEL)[0]
    latent = sample(model, codecs_loader, demo_text[0])
    assert torch.isfinite(latent["samples"]).all() and torch.isfinite(latent["harmony_audio"]).all()


# --- block swap ------------------------------------------------------------------------------------------------
def test_swap_parks_the_last_layers_out_of_comfys_sight_and_samples_bit_identically(demo_model, demo_codecs,
                                                                                    demo_text):
    swapped = load(swap_blocks=2)
    model = swapped.model.diffusion_model
    swap = model.block_swap
    layers = len(model.video.blocks)
    assert isinstance(swap, memory_kit.ParkedBlockSwap) and swap.swapped == {layers - 2, layers - 1}
    parked = sum(swap.layer_bytes(i) for i in swap.swapped)
    assert swapped.model_size() == demo_model.model_size() - parked      # ComfyUI sees the resident weights only
    assert all(p.numel() == 0 for p in model.video.blocks[-1].parameters())
    codecs = run_node(loaders.HarmonyCodecLoader, model=swapped, video_vae=loaders.FROM_MODEL,
                      audio_vae=loaders.FROM_MODEL, vocoder=loaders.FROM_MODEL)[0]
    mm.memory_requests.clear()
    ours = sample(swapped, codecs, demo_text[0])
    asked_swap = mm.memory_requests[-1]
    theirs = sample(demo_model, demo_codecs, demo_text[0])
    asked_plain = mm.memory_requests[-1]
    assert torch.equal(ours["samples"], theirs["samples"]) and torch.equal(ours["harmony_audio"],
                                                                           theirs["harmony_audio"])
    assert all(p.numel() == 0 for p in model.video.blocks[-1].parameters())   # parked again after the run
    staged = memory.kit_bytes(model, 4)
    assert staged == 2 * max(swap.layer_bytes(i) for i in swap.swapped)
    assert asked_swap - asked_plain == staged + adapter.extra_bytes(swapped) - adapter.extra_bytes(demo_model)


def test_swap_with_fp8_counts_the_parked_fp8_cast(demo_text):
    swapped = load(swap_blocks=config.preset("demo").video.num_layers, fp8="row")   # every layer parked
    model = swapped.model.diffusion_model
    largest = max(s.home.numel() for slots in model.block_swap.layers.values() for s in slots
                  if s.name == "weight" and fp8.is_fp8(s.home))
    assert memory_kit.extra_bytes(model, 4) == largest * 4
    assert adapter.extra_bytes(swapped) >= largest * 4


def test_swap_is_not_applied_under_dynamic_vram(monkeypatch, caplog):
    monkeypatch.setattr(comfy.model_patcher.ModelPatcher, "is_dynamic", lambda self: True)
    with caplog.at_level(logging.WARNING):
        model = load(swap_blocks=2).model.diffusion_model
    assert model.block_swap is None and "dynamic VRAM streams every layer" in caplog.text


# --- compile, load -----------------------------------------------------------------------------------------------
def test_compile_widget_compiles_the_blocks_for_the_load_device(monkeypatch):
    seen = []
    monkeypatch.setattr(memory_kit, "compile_blocks", lambda model, device: seen.append(device))
    load(compile=True)
    assert seen == [mm.get_torch_device()]
    with pytest.raises(ValueError, match="compile must be true or false"):
        load(compile="yes")


def test_load_asks_comfy_for_the_activations_plus_what_it_cannot_count(demo_model):
    mm.memory_requests.clear()
    adapter.load(demo_model, memory_required=1000)
    model = demo_model.model.diffusion_model
    assert mm.memory_requests == [1000 + ops.extra_bytes(model, 4)]
    hooked = max(m._harmony_materialize.bytes(4) for m in model.modules() if hasattr(m, "_harmony_materialize"))
    unmanaged = sum(t.numel() * 4 for m in model.modules() for key, t in (*m._parameters.items(), *m._buffers.items())
                    if t is not None and not (ops.is_managed(m) and key in ("weight", "bias")))
    assert hooked > 0 and ops.extra_bytes(model, 4) == hooked + unmanaged


@pytest.mark.parametrize("name", ["uniavgen", "harmony-5b"])
def test_what_comfy_cannot_count_is_under_one_percent_of_a_real_model(name):
    model = pack_module("harmony_core.model.load").build_empty(config.preset(name))
    ops.use_comfy_ops(model, CPU)
    total = sum(p.numel() for p in model.parameters()) * 2
    assert ops.extra_bytes(model, 2) < total / 100


def test_a_tensor_left_off_the_device_is_reported(demo_model, monkeypatch):
    monkeypatch.setattr(ops, "move_strays", lambda module, device: 0)
    monkeypatch.setattr(ops, "off_device", lambda module, device: "video.blocks.0.modulation")
    with pytest.raises(RuntimeError, match=r"video\.blocks\.0\.modulation is not on cpu after loading"):
        adapter.load(demo_model)


def test_copies_of_a_kit_model_still_run(demo_text):
    model = load(fp8="row").model.diffusion_model
    clone = copy.deepcopy(model)
    assert all(type(a) is type(b) for a, b in zip(model.modules(), clone.modules(), strict=True))
