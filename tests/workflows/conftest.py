"""tests/workflows: the bundled workflows against the node schemas, without a ComfyUI checkout.

Harmony schemas come from the pack itself, imported through the comfy stand-in of tests/nodes (its
node_harness), in the `/object_info` shape ComfyUI serves (GET_NODE_INFO_V1); core node schemas from
core_nodes.json (copied from a real /object_info).
"""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from workflow_graph import load_core_schemas

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "nodes"))

from node_harness import load_pack, pack_module  # noqa: E402  (after the path insert)


def harmony_schemas() -> dict:
    """{node_id: /object_info entry} of every node the pack registers through comfy_entrypoint."""
    extension = asyncio.run(load_pack().comfy_entrypoint())
    asyncio.run(extension.on_load())
    nodes = asyncio.run(extension.get_node_list())
    return {cls.GET_SCHEMA().node_id: cls.GET_NODE_INFO_V1() for cls in nodes}


@pytest.fixture(scope="session")
def schemas() -> dict:
    core, _ = load_core_schemas()
    return {**core, **harmony_schemas()}


@pytest.fixture(scope="session")
def frontend_only() -> dict:
    return load_core_schemas()[1]


@pytest.fixture(scope="session")
def demo_choice() -> str:
    return pack_module("nodes.loaders").DEMO_CHOICE
