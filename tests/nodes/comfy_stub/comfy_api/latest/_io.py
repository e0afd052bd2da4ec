"""Stand-in for `comfy_api.latest._io` (ComfyUI @ 783545f): the V3 schema subset the Harmony nodes use.

Same public names, constructor signatures and observable behaviour as the real module for: socket types
(`comfytype`, `Custom`, Int/Float/String/Combo widgets, Image/Latent/Conditioning/Model/Vae/Audio/
Video sockets), `Schema` (`finalize` adds prompt/extra_pnginfo to output nodes and default output ids,
`validate` rejects duplicate ids, `get_v1_info` is what `/object_info` serves), `ComfyNode` (GET_SCHEMA,
PREPARE_CLASS_CLONE with `hidden`, EXECUTE_NORMALIZED), `NodeOutput`, `Hidden`/`HiddenHolder`.
"""
from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


def prune_dict(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


class FolderType(str, Enum):
    input = "input"
    output = "output"
    temp = "temp"


class NumberDisplay(str, Enum):
    number = "number"
    slider = "slider"
    gradient_slider = "gradientslider"


class ControlAfterGenerate(str, Enum):
    fixed = "fixed"
    increment = "increment"
    decrement = "decrement"
    randomize = "randomize"


class _ComfyType:
    Type = Any
    io_type: str = None


class _IO_V3:
    Parent: type = None

    def validate(self) -> None:
        pass

    @property
    def io_type(self) -> str:
        return self.Parent.io_type


class Input(_IO_V3):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None,
                 lazy: bool = None, extra_dict=None, raw_link: bool = None, advanced: bool = None):
        self.id, self.display_name, self.optional, self.tooltip = id, display_name, optional, tooltip
        self.lazy, self.extra_dict, self.rawLink, self.advanced = lazy, extra_dict or {}, raw_link, advanced

    def as_dict(self) -> dict:
        own = {"display_name": self.display_name, "optional": self.optional, "tooltip": self.tooltip,
               "lazy": self.lazy, "rawLink": self.rawLink, "advanced": self.advanced}
        return prune_dict(own) | prune_dict(self.extra_dict)

    def get_io_type(self) -> str:
        return self.io_type

    def get_all(self) -> list[Input]:
        return [self]


class WidgetInput(Input):
    def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None,
                 lazy: bool = None, default: Any = None, socketless: bool = None, widget_type: str = None,
                 force_input: bool = None, extra_dict=None, raw_link: bool = None, advanced: bool = None):
        super().__init__(id, display_name, optional, tooltip, lazy, extra_dict, raw_link, advanced)
        self.default, self.socketless = default, socketless
        self.widget_type, self.force_input = widget_type, force_input

    def as_dict(self) -> dict:
        own = {"default": self.default, "socketless": self.socketless, "widgetType": self.widget_type,
               "forceInput": self.force_input}
        return super().as_dict() | prune_dict(own)


class Output(_IO_V3):
    def __init__(self, id: str = None, display_name: str = None, tooltip: str = None, is_output_list=False):
        self.id, self.display_name, self.tooltip = id, display_name or id, tooltip
        self.is_output_list = is_output_list


def comfytype(io_type: str, **kwargs):
    """Bind `io_type` to a socket-type class and give it its own Input/Output classes."""
    def decorator(cls):
        for name in ("Input", "Output"):
            inner = cls.__dict__.get(name) or getattr(cls, name, None)
            if inner is not None:
                setattr(cls, name, type(inner.__name__, (inner,), {"Parent": cls}))
        cls.io_type = io_type
        return cls
    return decorator


class ComfyTypeI(_ComfyType):
    class Input(Input):
        pass


class ComfyTypeIO(ComfyTypeI):
    class Output(Output):
        pass


def Custom(io_type: str) -> type[ComfyTypeIO]:
    """A socket type for a custom io_type string."""
    @comfytype(io_type=io_type)
    class CustomComfyType(ComfyTypeIO):
        pass
    return CustomComfyType


@comfytype(io_type="BOOLEAN")
class Boolean(ComfyTypeIO):
    Type = bool

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None,
                     lazy: bool = None, default: bool = None, label_on: str = None, label_off: str = None,
                     socketless: bool = None, force_input: bool = None, extra_dict=None, raw_link: bool = None,
                     advanced: bool = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None,
                             force_input, extra_dict, raw_link, advanced)
            self.label_on, self.label_off = label_on, label_off

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"label_on": self.label_on, "label_off": self.label_off})


@comfytype(io_type="INT")
class Int(ComfyTypeIO):
    Type = int

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None,
                     lazy: bool = None, default: int = None, min: int = None, max: int = None,
                     step: int = None, control_after_generate: bool | ControlAfterGenerate = None,
                     display_mode: NumberDisplay = None, socketless: bool = None, force_input: bool = None,
                     extra_dict=None, raw_link: bool = None, advanced: bool = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None,
                             force_input,
                             extra_dict, raw_link, advanced)
            self.min, self.max, self.step = min, max, step
            self.control_after_generate, self.display_mode = control_after_generate, display_mode

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({
                "min": self.min, "max": self.max, "step": self.step,
                "control_after_generate": self.control_after_generate,
                "display": self.display_mode.value if self.display_mode else None})


@comfytype(io_type="FLOAT")
class Float(ComfyTypeIO):
    Type = float

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None,
                     lazy: bool = None, default: float = None, min: float = None, max: float = None,
                     step: float = None, round: float = None, display_mode: NumberDisplay = None,
                     gradient_stops: list[dict] = None, socketless: bool = None, force_input: bool = None,
                     extra_dict=None, raw_link: bool = None, advanced: bool = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None,
                             force_input,
                             extra_dict, raw_link, advanced)
            self.min, self.max, self.step, self.round = min, max, step, round
            self.display_mode, self.gradient_stops = display_mode, gradient_stops

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({
                "min": self.min, "max": self.max, "step": self.step, "round": self.round,
                "display": self.display_mode, "gradient_stops": self.gradient_stops})


@comfytype(io_type="STRING")
class String(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, display_name: str = None, optional=False, tooltip: str = None,
                     lazy: bool = None, multiline=False, placeholder: str = None, default: str = None,
                     dynamic_prompts: bool = None, socketless: bool = None, force_input: bool = None,
                     extra_dict=None, raw_link: bool = None, advanced: bool = None):
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None,
                             force_input,
                             extra_dict, raw_link, advanced)
            self.multiline, self.placeholder, self.dynamic_prompts = multiline, placeholder, dynamic_prompts

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"multiline": self.multiline,
                                                   "placeholder": self.placeholder,
                                                   "dynamicPrompts": self.dynamic_prompts})


@comfytype(io_type="COMBO")
class Combo(ComfyTypeIO):
    Type = str

    class Input(WidgetInput):
        def __init__(self, id: str, options: list[str] | list[int] | type[Enum] = None,
                     display_name: str = None,
                     optional=False, tooltip: str = None, lazy: bool = None, default: str | int | Enum = None,
                     control_after_generate: bool | ControlAfterGenerate = None, upload=None,
                     image_folder=None, remote=None, socketless: bool = None, extra_dict=None,
                     raw_link: bool = None, advanced: bool = None):
            if isinstance(options, type) and issubclass(options, Enum):
                options = [v.value for v in options]
            if isinstance(default, Enum):
                default = default.value
            super().__init__(id, display_name, optional, tooltip, lazy, default, socketless, None, None,
                             extra_dict, raw_link, advanced)
            self.multiselect, self.options = False, options
            self.control_after_generate = control_after_generate

        def as_dict(self) -> dict:
            return super().as_dict() | prune_dict({"multiselect": self.multiselect, "options": self.options,
                                                   "control_after_generate": self.control_after_generate})


def _socket(io_type: str) -> type[ComfyTypeIO]:
    @comfytype(io_type=io_type)
    class Socket(ComfyTypeIO):
        pass
    return Socket


Image = _socket("IMAGE")
Latent = _socket("LATENT")
Conditioning = _socket("CONDITIONING")
Model = _socket("MODEL")
Vae = _socket("VAE")
Audio = _socket("AUDIO")
Video = _socket("VIDEO")
Guider = _socket("GUIDER")


class Hidden(str, Enum):
    unique_id = "UNIQUE_ID"
    prompt = "PROMPT"
    extra_pnginfo = "EXTRA_PNGINFO"
    dynprompt = "DYNPROMPT"
    auth_token_comfy_org = "AUTH_TOKEN_COMFY_ORG"
    api_key_comfy_org = "API_KEY_COMFY_ORG"
    comfy_usage_source = "COMFY_USAGE_SOURCE"


class HiddenHolder:
    """Hidden values of one call; a name that was not provided reads as None."""

    def __init__(self, unique_id: str, prompt: Any, extra_pnginfo: Any, dynprompt: Any,
                 auth_token_comfy_org: str, api_key_comfy_org: str, comfy_usage_source: str = None, **kwargs):
        self.unique_id, self.prompt, self.extra_pnginfo = unique_id, prompt, extra_pnginfo
        self.dynprompt = dynprompt
        self.auth_token_comfy_org, self.api_key_comfy_org = auth_token_comfy_org, api_key_comfy_org
        self.comfy_usage_source = comfy_usage_source

    def __getattr__(self, key: str):
        return None

    @classmethod
    def from_dict(cls, d: dict | None) -> HiddenHolder:
        d = d or {}
        return cls(**{h.name: d.get(h) for h in Hidden})

    @classmethod
    def from_v3_data(cls, v3_data: dict | None) -> HiddenHolder:
        return cls.from_dict(v3_data["hidden_inputs"] if v3_data else None)


@dataclass
class Schema:
    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list[Input] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    hidden: list[Hidden] = field(default_factory=list)
    description: str = ""
    search_aliases: list[str] = field(default_factory=list)
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_dev_only: bool = False
    is_api_node: bool = False
    price_badge: Any = None
    not_idempotent: bool = False
    enable_expand: bool = False
    accept_all_inputs: bool = False
    essentials_category: str | None = None
    has_intermediate_output: bool = False

    def validate(self) -> None:
        """Input and output ids must be unique."""
        issues = []
        for label, ids in (("Input", [i.id for i in self.inputs]), ("Output", [o.id for o in self.outputs])):
            dupes = [k for k, n in Counter(ids).items() if n > 1]
            if dupes:
                issues.append(f"{label} ids must be unique, but {dupes} are not.")
        if issues:
            raise ValueError("\n".join(issues))
        for item in [*self.inputs, *self.outputs]:
            item.validate()

    def finalize(self) -> None:
        """Output nodes get the prompt and extra_pnginfo hidden inputs; unnamed outputs get `_<i>_<TYPE>_`."""
        self.inputs, self.outputs, self.hidden = self.inputs or [], self.outputs or [], self.hidden or []
        if self.is_output_node:
            for h in (Hidden.prompt, Hidden.extra_pnginfo):
                if h not in self.hidden:
                    self.hidden.append(h)
        for i, output in enumerate(self.outputs):
            if output.id is None:
                output.id = f"_{i}_{output.io_type}_"

    def get_v1_info(self, cls) -> NodeInfoV1:
        inputs: dict[str, dict] = {"required": {}}
        for i in self.inputs:
            spec = i.as_dict()
            spec.pop("optional", None)
            inputs.setdefault("optional" if i.optional else "required", {})[i.id] = (i.get_io_type(), spec)
        for h in self.hidden:
            inputs.setdefault("hidden", {})[h.name] = (h.value,)
        return NodeInfoV1(
            input=inputs, input_order={k: list(v) for k, v in inputs.items()},
            is_input_list=self.is_input_list,
            output=[o.io_type for o in self.outputs], output_is_list=[o.is_output_list for o in self.outputs],
            output_name=[o.display_name or o.io_type for o in self.outputs],
            output_tooltips=[o.tooltip or None for o in self.outputs], name=self.node_id,
            display_name=self.display_name, description=self.description,
            python_module=getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"), category=self.category,
            output_node=self.is_output_node, deprecated=self.is_deprecated, experimental=self.is_experimental,
            dev_only=self.is_dev_only, api_node=self.is_api_node,
            search_aliases=self.search_aliases or None)


@dataclass
class NodeInfoV1:
    input: dict = None
    input_order: dict = None
    is_input_list: bool = None
    output: list = None
    output_is_list: list = None
    output_name: list = None
    output_tooltips: list = None
    name: str = None
    display_name: str = None
    description: str = None
    python_module: Any = None
    category: str = None
    output_node: bool = None
    deprecated: bool = None
    experimental: bool = None
    dev_only: bool = None
    api_node: bool = None
    search_aliases: list = None


class _UIOutput:
    def as_dict(self) -> dict:
        raise NotImplementedError


class NodeOutput:
    """A node's result: positional outputs plus an optional UI dict/object."""

    def __init__(self, *args: Any, ui: _UIOutput | dict = None, expand: dict = None,
                 block_execution: str = None):
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    @property
    def result(self):
        return self.args if len(self.args) > 0 else None

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


class _classproperty:
    def __init__(self, f):
        self.f = f

    def __get__(self, obj, owner):
        return self.f(owner)


class ComfyNode:
    """Base of V3 nodes: classmethods only, no class state (ComfyUI locks the class during a call)."""

    RELATIVE_PYTHON_MODULE = None
    SCHEMA = None
    hidden: HiddenHolder = None

    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError

    @classmethod
    def FINALIZE_SCHEMA(cls) -> Schema:
        schema = cls.define_schema()
        schema.finalize()
        return schema

    @classmethod
    def GET_SCHEMA(cls) -> Schema:
        if "define_schema" not in _own_methods(cls) or "execute" not in _own_methods(cls):
            raise Exception(f"No define_schema/execute function was defined for node class {cls.__name__}.")
        schema = cls.FINALIZE_SCHEMA()
        schema.validate()
        cls.SCHEMA = schema
        return schema

    @classmethod
    def GET_NODE_INFO_V1(cls) -> dict:
        return asdict(cls.GET_SCHEMA().get_v1_info(cls))

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return cls.FINALIZE_SCHEMA().get_v1_info(cls).input

    @classmethod
    def PREPARE_CLASS_CLONE(cls, v3_data: dict | None) -> type[ComfyNode]:
        clone = type(f"{cls.__name__}Clone", (cls, *cls.__bases__), dict(cls.__dict__))
        clone.hidden = HiddenHolder.from_v3_data(v3_data)
        return clone

    @classmethod
    def EXECUTE_NORMALIZED(cls, *args, **kwargs) -> NodeOutput:
        out = cls.execute(*args, **kwargs)
        if out is None:
            return NodeOutput()
        if isinstance(out, tuple):
            return NodeOutput(*out)
        if not isinstance(out, NodeOutput):
            raise Exception(f"Invalid return type from node: {type(out)}")
        return out

    @_classproperty
    def FUNCTION(cls) -> str:  # noqa: N802 (ComfyUI's name)
        is_async = inspect.iscoroutinefunction(cls.execute)
        return "EXECUTE_NORMALIZED_ASYNC" if is_async else "EXECUTE_NORMALIZED"


def _own_methods(cls: type) -> set[str]:
    """Names defined by `cls` or a base below ComfyNode."""
    names: set[str] = set()
    for c in cls.__mro__:
        if c is ComfyNode:
            break
        names.update(c.__dict__)
    return names
