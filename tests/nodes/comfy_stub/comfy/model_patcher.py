"""Stand-in for `comfy.model_patcher.ModelPatcher` (ComfyUI @ 783545f, the non-dynamic patcher).

What the pack relies on: the constructor signature, the bookkeeping attributes it sets on the wrapped
module (`device`, `model_loaded_weight_memory`, `model_lowvram`, ...), `model_size`, `model_dtype`
(the module's `get_dtype()`), `clone`/`is_clone`, and a full load (`partially_load` with enough memory moves
the whole module with `.to(device)`) / `detach` back to the offload device.
"""
from __future__ import annotations

import uuid


from . import model_management


class ModelPatcher:
    def __init__(self, model, load_device, offload_device, size=0, weight_inplace_update=False):
        self.size, self.model = size, model
        if getattr(self.model, "device", None) is None:
            self.model.device = offload_device
        self.load_device, self.offload_device = load_device, offload_device
        self.weight_inplace_update = weight_inplace_update
        self.patches, self.object_patches, self.attachments = {}, {}, {}
        self.model_options = {"transformer_options": {}}
        self.patches_uuid, self.parent = uuid.uuid4(), None
        for name, value in (("model_loaded_weight_memory", 0), ("lowvram_patch_counter", 0),
                            ("model_lowvram", False), ("current_weight_patches_uuid", None),
                            ("model_offload_buffer_memory", 0)):
            if not hasattr(self.model, name):
                setattr(self.model, name, value)

    def is_dynamic(self) -> bool:
        return False

    def model_size(self) -> int:
        if self.size > 0:
            return self.size
        self.size = model_management.module_size(self.model)
        return self.size

    def loaded_size(self) -> int:
        return self.model.model_loaded_weight_memory

    def model_dtype(self):
        if hasattr(self.model, "get_dtype"):
            return self.model.get_dtype()

    def clone(self) -> ModelPatcher:
        n = self.__class__(self.model, self.load_device, self.offload_device, self.model_size())
        n.patches = {k: v[:] for k, v in self.patches.items()}
        n.patches_uuid, n.parent = self.patches_uuid, self
        n.object_patches, n.attachments = self.object_patches.copy(), self.attachments.copy()
        return n

    def is_clone(self, other) -> bool:
        return hasattr(other, "model") and self.model is other.model

    def model_patches_models(self) -> list:
        return []

    def current_loaded_device(self):
        return self.model.device

    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False) -> int:
        """Load onto `device_to`; with memory for the whole module this is a full `.to(device_to)`."""
        before = self.model.model_loaded_weight_memory
        if before + extra_memory > self.model_size():
            self.model.to(device_to)
            self.model.device = device_to
            self.model.model_loaded_weight_memory = self.model_size()
            self.model.current_weight_patches_uuid = self.patches_uuid
        return self.model.model_loaded_weight_memory - before

    def detach(self, unpatch_all=True):
        self.model.to(self.offload_device)
        self.model.device = self.offload_device
        self.model.model_loaded_weight_memory = 0
        return self.model


CoreModelPatcher = ModelPatcher
