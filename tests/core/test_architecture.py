"""The layering of harmony_core (DESIGN.md): arrows point down only, and no package-level cycle.

Every import is read from the source (AST), lazy ones inside functions included, and mapped to the package
it lands in (a subpackage such as `codecs`, or a top-level module such as `pipeline`). A package may import
only packages of a lower layer. The one arrow that still points the wrong way is listed in KNOWN with the
issue that removes it; the test fails on any new wrong arrow and when a known one is gone (shrink the list).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "harmony_core"

LAYERS = [
    {"config", "timeline", "cancel", "budget", "threads"},   # base: plain data, arithmetic, hooks
    {"attention", "loading", "media", "metrics", "sampling"},  # kernels, file formats, media I/O, metrics,
    # the sampler over a denoiser callable (it knows no model)
    {"model", "codecs"},
    {"pipeline"},
    {"build"},                                                # the only place that assembles model + codecs
    {"train"},
    {"bench"},                                                # measures everything, the trainer's data too
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
KNOWN = {  # (from, to): why it is still there
    ("loading", "model"): "#16: loading/load.py builds a HarmonyModel; it moves into build.py",
}


def package_of(path: Path) -> str:
    parts = path.relative_to(CORE).with_suffix("").parts
    return parts[0]


def imported(path: Path) -> set[str]:
    """harmony_core packages that `path` imports (relative imports resolved), lazily or not."""
    here = list(path.relative_to(CORE.parent).with_suffix("").parts[:-1])  # ["harmony_core", sub...]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            if module[:1] != ["harmony_core"]:
                continue
            found |= {module[1]} if len(module) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("harmony_core.")}
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in CORE.rglob("*.py"):
        source = package_of(path)
        edges[source] |= imported(path) - {source}
    return edges


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in CORE.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"give these packages a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_arrows_point_down_only():
    wrong = {(a, b) for a, targets in graph().items() if a in RANK for b in targets if RANK[b] >= RANK[a]}
    assert wrong - set(KNOWN) == set(), f"imports that point up or sideways: {sorted(wrong - set(KNOWN))}"
    assert set(KNOWN) - wrong == set(), f"fixed, remove from KNOWN: {sorted(set(KNOWN) - wrong)}"


def test_no_package_level_cycle():
    edges = graph()
    seen, stack = set(), []

    def visit(node: str) -> None:
        if node in stack:
            raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(node):] + [node])}")
        if node in seen:
            return
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for start in sorted(edges):
        visit(start)


def test_the_graph_reader_sees_lazy_and_relative_imports(tmp_path):
    """Negative control: a lazy import inside a function, two levels up, is found."""
    assert "pipeline" in imported(CORE / "build.py")
    assert {"bench", "build", "train"} <= graph()["cli"]  # cli imports these inside functions only
