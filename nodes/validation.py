"""Declared ranges enforced when the node runs, read from the node's own schema (one declaration per input).

ComfyUI checks a widget's min/max and a combo's options only for values typed into the widget; a value that
arrives through a link (a Primitive node, a math node, another node's output) reaches `execute` unchecked. Every
Harmony node's `execute` is wrapped with `checked`, which re-reads the schema the editor shows and refuses a
number outside its min/max, a non-finite or non-integral number, or a combo value that is not an option, naming
the input, the value and the accepted range.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from comfy_api.latest import io


def _check_number(spec: io.Int.Input | io.Float.Input, value: object, node: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{node}: {spec.id} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{node}: {spec.id} is {value}; give a finite number")
    if isinstance(spec, io.Int.Input) and not float(value).is_integer():
        raise ValueError(f"{node}: {spec.id} must be a whole number, got {value}")
    low = -math.inf if spec.min is None else spec.min
    high = math.inf if spec.max is None else spec.max
    if not low <= value <= high:
        show = (lambda x: f"{x:g}") if isinstance(spec, io.Float.Input) else (lambda x: str(x))
        raise ValueError(f"{node}: {spec.id} = {show(value)} is outside its range {show(low)}..{show(high)} "
                         "(values that come through a link are held to the widget's range too)")


def enforce_ranges(node_cls: type[io.ComfyNode], values: dict, own: tuple[str, ...] = ()) -> None:
    """Check `values` (input id -> value) against the Int/Float/Combo inputs of the node's schema; inputs in
    `own` are left to the node (e.g. file names, which a loader checks with a more helpful message)."""
    schema = node_cls.define_schema()
    node = schema.display_name or schema.node_id
    for spec in schema.inputs:
        value = values.get(spec.id)
        if value is None or spec.id in own:
            continue
        if isinstance(spec, (io.Int.Input, io.Float.Input)):
            _check_number(spec, value, node)
        elif isinstance(spec, io.Combo.Input) and spec.options and value not in spec.options:
            shown = ", ".join(map(str, spec.options[:8])) + (", ..." if len(spec.options) > 8 else "")
            raise ValueError(f"{node}: {spec.id} = {value!r} is not one of its options ({shown})")


def checked(execute: Callable | None = None, *, own: tuple[str, ...] = ()) -> Callable:
    """Decorator for a node's `execute(cls, **inputs)` (put it under @classmethod): ranges first. `own`: inputs
    the node validates itself (see enforce_ranges)."""

    def wrap(function: Callable) -> Callable:
        @functools.wraps(function)
        def run(cls: type[io.ComfyNode], *args: object, **inputs: object) -> io.NodeOutput:
            enforce_ranges(cls, inputs, own)
            return function(cls, *args, **inputs)

        return run

    return wrap if execute is None else wrap(execute)
