"""Architecture rules that must hold everywhere: harmony_core imports no ComfyUI module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harmony_core import attention
from harmony_core.attention import AttentionUnavailable, reference_attention, resolve

CORE = Path(__file__).resolve().parents[2] / "harmony_core"
FORBIDDEN = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "server", "nodes", "node_helpers",
             "execution", "latent_preview"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_harmony_core_imports_no_comfyui():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    bad = {str(f.relative_to(CORE)): sorted(_imports(f) & FORBIDDEN) for f in files if _imports(f) & FORBIDDEN}
    assert not bad, f"harmony_core must not import ComfyUI: {bad}"


def test_harmony_core_imports_itself_relatively():
    """ComfyUI imports the pack as a package without putting it on sys.path: `import harmony_core...`
    inside the library would fail there (seen live), so every internal import must be relative."""
    absolute = {str(f.relative_to(CORE)) for f in CORE.rglob("*.py") if "harmony_core" in _imports(f)}
    assert not absolute, f"use relative imports inside harmony_core: {sorted(absolute)}"


def test_ast_check_detects_an_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import folder_paths\nfrom comfy.model_management import get_torch_device\n")
    assert _imports(f) & FORBIDDEN == {"folder_paths", "comfy"}


def test_sdpa_matches_reference():
    import torch
    q, k, v = (torch.randn(2, 7, 3, 16) for _ in range(3))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    torch.testing.assert_close(resolve("sdpa")(q, k, v, mask), reference_attention(q, k, v, mask),
                               atol=1e-5, rtol=1e-5)


def test_unknown_or_missing_backend_raises_clearly():
    with pytest.raises(AttentionUnavailable, match="unknown attention backend"):
        resolve("nope")
    for name in ("flash", "sage"):
        if name not in attention.available_names():
            with pytest.raises(AttentionUnavailable, match=name):
                resolve(name)


def test_backend_refuses_what_it_cannot_honour():
    import torch
    from harmony_core.attention.backends import FLASH
    q = torch.randn(1, 4, 2, 8)
    with pytest.raises(AttentionUnavailable, match="mask"):
        FLASH.check_call(q.half(), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(AttentionUnavailable, match="accepts"):
        FLASH.check_call(q, None)
