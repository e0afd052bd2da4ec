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
    {"config", "timeline", "cancel", "budget", "threads", "checks", "passes"},  # base: plain data, arithmetic, hooks
    {"attention", "loading", "media", "metrics", "sampling"},  # kernels, file formats, media I/O, metrics,
    # the sampler over a denoiser callable (it knows no model)
    {"model", "codecs"},
    {"request"},                                              # what to generate: plain data over Guidance
    {"families"},                                             # what a model family needs around the pipeline
    {"pipeline"},
    {"build"},                                                # the only place that assembles model + codecs
    {"train"},
    {"bench"},                                                # measures everything, the trainer's data too
    {"cli_takes"},                                            # generate --takes (best of N by sync score)
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
KNOWN: dict[tuple[str, str], str] = {}  # (from, to): why a wrong arrow is still there (none left)


def package_of(path: Path, core: Path = CORE) -> str:
    return path.relative_to(core).with_suffix("").parts[0]


def imported(path: Path, core: Path = CORE) -> set[str]:
    """harmony_core packages that `path` imports (relative imports resolved), lazily or not."""
    here = list(path.relative_to(core.parent).with_suffix("").parts[:-1])  # ["harmony_core", sub...]
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


def graph(core: Path = CORE) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in core.rglob("*.py"):
        source = package_of(path, core)
        edges[source] |= imported(path, core) - {source}
    return edges


def wrong_arrows(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in edges.items() if a in RANK for b in targets if RANK.get(b, -1) >= RANK[a]}


def test_every_package_has_a_layer():
    packages = {package_of(p) for p in CORE.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"give these packages a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_arrows_point_down_only():
    wrong = wrong_arrows(graph())
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
    """Negative control: in a made-up tree, a lazy relative import from loading up into model is a wrong
    arrow, and an absolute one too; on the real tree, cli's lazy imports are seen."""
    core = tmp_path / "harmony_core"
    (core / "loading").mkdir(parents=True)
    (core / "model").mkdir()
    (core / "loading" / "x.py").write_text("def f():\n    from ..model import harmony\n")
    (core / "media.py").write_text("import harmony_core.pipeline\n")
    assert wrong_arrows(graph(core)) == {("loading", "model"), ("media", "pipeline")}
    assert "pipeline" in imported(CORE / "build.py")
    assert {"bench", "build", "train"} <= graph()["cli"]  # cli imports these inside functions only


CODEC_FAMILIES = ("wan", "mmaudio", "demo", "uniavgen")
# UniAVGen's vocoder is a BigVGAN (Qwen2.5-Omni's): it builds on MMAudio's BigVGAN layers instead of a copy.
FAMILY_ARROWS = {("uniavgen", "mmaudio")}


def family_imports(core: Path = CORE) -> set[tuple[str, str]]:
    """(family, family) arrows between the codec subpackages (codecs/<family>/...)."""
    arrows = set()
    for family in CODEC_FAMILIES:
        for path in (core / "codecs" / family).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.ImportFrom):
                    continue
                module = (node.module or "").split(".")
                if node.level == 2:      # from ..<family>.x import y (sibling family)
                    target = module[0] if module and module[0] else None
                elif node.level == 0 and module[:2] == ["harmony_core", "codecs"] and len(module) > 2:
                    target = module[2]
                else:
                    target = None
                if target in CODEC_FAMILIES and target != family:
                    arrows.add((family, target))
    return arrows


def test_codec_families_stand_alone():
    """Each codec family uses the interface (codecs/base.py) and the base layers, not another family."""
    assert all((CORE / "codecs" / f).is_dir() for f in CODEC_FAMILIES)
    assert family_imports() == FAMILY_ARROWS


def test_no_import_by_string():
    """Imports are statements the graph above can read: no importlib.import_module / __import__ in the core, except
    the benchmark child (bench/measure.py) that runs a function given as an object in a fresh interpreter."""
    found = []
    for path in CORE.rglob("*.py"):
        if path == CORE / "bench" / "measure.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in ("import_module", "__import__"):
                    found.append(f"{path.relative_to(CORE)}:{node.lineno}")
    assert found == []
