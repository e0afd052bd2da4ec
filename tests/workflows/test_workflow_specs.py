"""Each bundled workflow holds what its spec (tests/e2e/workflow_specs.py) says: the editor that built it kept every
node's type, title and widget values (a builder that lost a text would ship an empty caption) and every link."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from workflow_graph import widget_layout  # noqa: E402
from workflow_specs import all_specs  # noqa: E402  (tests/e2e, after the path insert)

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SPECS = {spec["name"]: spec for spec in all_specs()}


def test_every_workflow_has_a_spec_and_every_spec_a_workflow():
    assert sorted(SPECS) == sorted(p.stem for p in WORKFLOWS.glob("*.json"))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_workflow_keeps_its_specs_nodes_values_and_links(name, schemas, frontend_only):
    spec, workflow = SPECS[name], json.loads((WORKFLOWS / f"{name}.json").read_text())
    nodes = sorted(workflow["nodes"], key=lambda n: n["id"])  # ids follow the spec's node order
    assert [n["type"] for n in nodes] == [n["type"] for n in spec["nodes"]]
    ids = {}
    for want, node in zip(spec["nodes"], nodes):
        ids[want["key"]] = node
        assert node.get("title") == want.get("title"), (name, want["key"])
        schema = schemas.get(node["type"]) or frontend_only[node["type"]]
        saved = {w.name: v for w, v in zip(widget_layout(schema), node.get("widgets_values", []))}
        for widget, value in want.get("widgets", {}).items():
            assert saved[widget] == value, (name, want["key"], widget)
    links = {(link[1], link[2], link[3], link[4]) for link in workflow["links"]}
    for origin, output, target, input_name in spec["links"]:
        src, dst = ids[origin], ids[target]
        out = next(i for i, o in enumerate(src["outputs"]) if o["name"] == output)
        inp = next(i for i, s in enumerate(dst["inputs"]) if s["name"] == input_name)
        assert (src["id"], out, dst["id"], inp) in links, (name, origin, output, target, input_name)
    assert len(links) == len(spec["links"]), name
