"""Read ComfyUI editor workflows (UI JSON, version 0.4) against node schemas in `/object_info` shape.

Used offline by tests/workflows (schemas of the Harmony nodes from the comfy stand-in, core nodes from
core_nodes.json) and live by tests/e2e (schemas from a running ComfyUI's /object_info).

Widget rule, as the editor applies it (comfyui-frontend-package 1.49.6): every input whose type is INT, FLOAT,
STRING, BOOLEAN or a combo (a list, or "COMBO") becomes a widget unless `forceInput` is set; one extra
"control_after_generate" widget follows each input with `control_after_generate`; upload combos are followed
by editor-only widgets (`UPLOAD_WIDGETS`: the upload button, and the audio player for audio). Frontend-only
nodes (Note) list theirs as `frontend_widgets`. `widgets_values` holds one value per widget in that order.

API ("prompt") format: `{"<id>": {"class_type", "inputs": {name: value | [origin_id, slot]}, "_meta": {...}}}`
with editor-only widgets, control_after_generate values, frontend-only nodes (Note) and muted nodes left out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL = "control_after_generate"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
MODE_NORMAL, MODE_MUTED, MODE_BYPASS = 0, 2, 4
TOP_LEVEL = ("last_node_id", "last_link_id", "nodes", "links", "groups", "config", "extra", "version")
NODE_KEYS = ("id", "type", "pos", "size", "flags", "order", "mode", "properties")
UPLOAD_WIDGETS = {"image_upload": ("upload",), "video_upload": ("upload",),
                  "audio_upload": ("audioUI", "upload")}
CORE_FIXTURE = Path(__file__).with_name("core_nodes.json")


@dataclass(frozen=True)
class Widget:
    """One widget of a node: `spec` is the schema input ([type, options]) or None for editor-only widgets."""

    name: str
    spec: list | None
    control: bool = False


def load_core_schemas() -> tuple[dict, dict]:
    """(core node schemas, frontend-only node schemas) from core_nodes.json."""
    data = json.loads(CORE_FIXTURE.read_text())
    return data["nodes"], data["frontend_only"]


def input_specs(schema: dict) -> dict[str, list]:
    """{input name: [type, options]} of the required then optional inputs, in the schema's input order."""
    order = schema.get("input_order") or {k: list(v) for k, v in schema.get("input", {}).items()}
    specs = {}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            entry = schema["input"][section][name]
            specs[name] = [entry[0], entry[1] if len(entry) > 1 else {}]
    return specs


def combo_options(spec: list) -> list | None:
    """The choices of a combo input, or None when the input is not a combo."""
    kind, options = spec
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        return list(options.get("options", []))
    return None


def is_widget(spec: list) -> bool:
    """Whether the editor shows this input as a widget (rather than a socket only)."""
    kind, options = spec
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput", False)


def widget_layout(schema: dict) -> list[Widget]:
    """The node's widgets in `widgets_values` order."""
    specs = input_specs(schema)
    if "frontend_widgets" in schema:
        return [Widget(w["name"], specs.get(w["name"])) for w in schema["frontend_widgets"]]
    layout = []
    for name, spec in specs.items():
        if is_widget(spec):
            layout.append(Widget(name, spec))
            if spec[1].get(CONTROL):
                layout.append(Widget(CONTROL, None, control=True))
            for flag, extra in UPLOAD_WIDGETS.items():
                if spec[1].get(flag):
                    layout += [Widget(name, None) for name in extra]
    return layout


def socket_type(spec: list) -> str:
    """The type a link into this input must carry (combos carry "COMBO")."""
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def types_match(produced: str, accepted: str) -> bool:
    """Link compatibility as the editor checks it: equal, a wildcard, or one of a comma-separated list."""
    if "*" in (produced, accepted):
        return True
    return bool(set(produced.split(",")) & set(accepted.split(",")))


def check_value(spec: list, value: object) -> str | None:
    """None when `value` is valid for the input `spec`, else a message naming what is accepted."""
    options = combo_options(spec)
    kind, opts = spec
    if options is not None:
        if not isinstance(value, str):
            return f"combo value {value!r} is not a string"
        if options and value not in options:
            return f"{value!r} is not one of {options}"
        return None
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{value!r} is not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{value!r} is not a string"
    if kind in ("INT", "FLOAT"):
        return _check_number(kind, opts, value)
    return f"input of type {kind} has no widget"


def _check_number(kind: str, opts: dict, value: object) -> str | None:
    """Type, min and max of an INT/FLOAT widget value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number"
    if kind == "INT" and value != int(value):
        return f"{value!r} is not an integer"
    if "min" in opts and value < opts["min"]:
        return f"{value!r} is below the minimum {opts['min']}"
    if "max" in opts and value > opts["max"]:
        return f"{value!r} is above the maximum {opts['max']}"
    return None


def schema_for(node_type: str, schemas: dict, frontend_only: dict) -> dict:
    """The schema of a node type; KeyError naming the type when neither table has it."""
    if node_type in schemas:
        return schemas[node_type]
    if node_type in frontend_only:
        return frontend_only[node_type]
    raise KeyError(f"unknown node type {node_type!r}")


def validate_workflow(workflow: dict, schemas: dict, frontend_only: dict) -> list[str]:
    """Every problem found in a UI workflow, as readable messages (empty when it is valid)."""
    errors = [f"top-level key {k!r} missing" for k in TOP_LEVEL if k not in workflow]
    if workflow.get("version") != 0.4:
        errors.append(f"version is {workflow.get('version')!r}, expected 0.4")
    nodes = {n["id"]: n for n in workflow.get("nodes", [])}
    if len(nodes) != len(workflow.get("nodes", [])):
        errors.append("node ids are not unique")
    if nodes and workflow.get("last_node_id", 0) < max(nodes):
        errors.append("last_node_id is below the highest node id")
    for node in nodes.values():
        label = f"node {node.get('id')} ({node.get('type')})"
        errors += [f"{label}: key {k!r} missing" for k in NODE_KEYS if k not in node]
        try:
            schema = schema_for(node["type"], schemas, frontend_only)
        except KeyError as err:
            errors.append(f"{label}: {err.args[0]}")
            continue
        errors += [f"{label}: {e}" for e in _node_errors(node, schema)]
    errors += _link_errors(workflow, nodes, schemas)
    return errors


def _node_errors(node: dict, schema: dict) -> list[str]:
    """Widget values, socket names/types and required links of one node."""
    layout = widget_layout(schema)
    errors = _widget_errors(node, layout)
    specs = input_specs(schema)
    editor_only = {w.name for w in layout if w.spec is None}
    for slot in node.get("inputs", []):
        spec = specs.get(slot["name"])
        if spec is None:
            if not ("widget" in slot and slot["name"] in editor_only):
                errors.append(f"input {slot['name']!r} is not in the schema")
        elif slot["type"] != socket_type(spec):
            errors.append(f"input {slot['name']!r} has type {slot['type']!r}, "
                          f"schema says {socket_type(spec)!r}")
    linked = {s["name"] for s in node.get("inputs", []) if s.get("link") is not None}
    required = schema.get("input_order", {}).get("required", [])
    for name in required:
        if not is_widget(specs[name]) and name not in linked:
            errors.append(f"required input {name!r} is not connected")
    outputs = list(zip(schema.get("output_name", []), schema.get("output", [])))
    got = [(o["name"], o["type"]) for o in node.get("outputs", [])]
    if got != outputs:
        errors.append(f"outputs {got} differ from the schema's {outputs}")
    return errors


def _widget_errors(node: dict, layout: list[Widget]) -> list[str]:
    """widgets_values count, order, types, ranges and combo choices (and widgets_values_named if saved)."""
    values = node.get("widgets_values", [])
    if len(values) != len(layout):
        return [f"widgets_values has {len(values)} values, the schema gives {len(layout)} widgets "
                f"{[w.name for w in layout]}"]
    errors = []
    for widget, value in zip(layout, values):
        if widget.control:
            if value not in CONTROL_VALUES:
                errors.append(f"control_after_generate value {value!r} is not one of {CONTROL_VALUES}")
        elif widget.spec is not None:
            problem = check_value(widget.spec, value)
            if problem:
                errors.append(f"widget {widget.name!r}: {problem}")
    named = node.get("widgets_values_named")
    if named is not None:
        expected = {w.name: v for w, v in zip(layout, values) if w.name in named}
        if named != expected or set(named) - {w.name for w in layout}:
            errors.append(f"widgets_values_named {named} disagrees with widgets_values")
    return errors


def _link_errors(workflow: dict, nodes: dict, schemas: dict) -> list[str]:
    """Both ends of every link exist, agree with the link record and carry compatible types."""
    errors, ids = [], set()
    for link in workflow.get("links", []):
        link_id, origin, out_slot, target, in_slot, kind = link
        ids.add(link_id)
        label = f"link {link_id}"
        if origin not in nodes or target not in nodes:
            errors.append(f"{label}: ends at a missing node")
            continue
        outputs, inputs = nodes[origin].get("outputs", []), nodes[target].get("inputs", [])
        if out_slot >= len(outputs) or in_slot >= len(inputs):
            errors.append(f"{label}: slot out of range")
            continue
        out, inp = outputs[out_slot], inputs[in_slot]
        if link_id not in (out.get("links") or []) or inp.get("link") != link_id:
            errors.append(f"{label}: not recorded on both nodes")
        origin_schema, target_schema = schemas.get(nodes[origin]["type"]), schemas.get(nodes[target]["type"])
        if origin_schema is None or target_schema is None or inp["name"] not in input_specs(target_schema):
            continue  # reported with the node
        produced = origin_schema["output"][out_slot]
        accepted = socket_type(input_specs(target_schema)[inp["name"]])
        consistent = produced == out["type"] == kind and inp["type"] == accepted
        if not (consistent and types_match(produced, accepted)):
            errors.append(f"{label}: {nodes[origin]['type']}.{out['name']} ({produced}) -> "
                          f"{nodes[target]['type']}.{inp['name']} ({accepted}) recorded as {kind!r}")
    if ids and workflow.get("last_link_id", 0) < max(ids):
        errors.append("last_link_id is below the highest link id")
    return errors


def to_api(workflow: dict, schemas: dict) -> dict:
    """The API prompt of a UI workflow: widget values by input name, links as [origin id, slot].

    Nodes whose type `schemas` lacks (Note, MarkdownNote) and muted nodes are left out; a bypassed node
    raises (bypass rewiring is not supported here).
    """
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in sorted(workflow["nodes"], key=lambda n: n["id"]):
        if node["type"] not in schemas or node.get("mode", MODE_NORMAL) == MODE_MUTED:
            continue
        if node.get("mode") == MODE_BYPASS:
            raise ValueError(f"node {node['id']} ({node['type']}) is bypassed; un-bypass it or remove it")
        schema = schemas[node["type"]]
        specs = input_specs(schema)
        inputs = {w.name: v for w, v in zip(widget_layout(schema), node.get("widgets_values", []))
                  if w.spec is not None and w.name in specs}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                _, origin, out_slot, *_ = links[slot["link"]]
                inputs[slot["name"]] = [str(origin), out_slot]
        title = node.get("title") or schema.get("display_name") or node["type"]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": title}}
    return prompt
