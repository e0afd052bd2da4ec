"""The pack as the Comfy Registry and ComfyUI read it: pyproject.toml fields, the frontend range, and the checks
of `comfy node validate` that run offline (ruff S102 exec, S307 eval, E702 several statements on one line)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
TESTED_FRONTEND = (1, 49, 6)  # the comfyui-frontend-package the e2e browser tests run (ComfyUI 0.33.0)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*$")  # registry id: no leading/double specials
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def test_registry_fields() -> None:
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    assert NAME.match(project["name"]) and len(project["name"]) < 100
    assert "comfyui" not in project["name"].lower()  # registry advice: no "ComfyUI" in the id
    assert SEMVER.match(project["version"])
    assert project["license"] in ({"text": "Apache-2.0"}, {"file": "LICENSE"})
    assert project["urls"]["Repository"].startswith("https://")
    assert comfy["PublisherId"] and comfy["DisplayName"]
    icon = comfy.get("Icon")
    assert icon is None or re.match(r"^https://\S+\.(svg|png|jpe?g|gif)$", icon), "Icon: a URL or none"
    assert "dynamic" not in project or "dependencies" not in project["dynamic"]


def test_frontend_range_is_declared_and_admits_the_tested_editor() -> None:
    deps = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("comfyui-frontend-package")]
    assert len(deps) == 1, "declare the editor range as a comfyui-frontend-package dependency"
    match = re.fullmatch(r"comfyui-frontend-package>=(\d+)\.(\d+)\.(\d+)", deps[0].replace(" ", ""))
    assert match, deps[0]
    assert tuple(int(g) for g in match.groups()) <= TESTED_FRONTEND


def test_user_requirements_stay_loose() -> None:
    """requirements.txt is what ComfyUI users install: no pinned torch, no frontend (ComfyUI ships its own)."""
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    lines = [line for line in lines if line]
    for line in lines:
        if line.startswith(("torch", "torchaudio", "torchvision")):
            assert not re.search(r"[=<>~]", line), line
    assert not any(line.startswith("comfyui-frontend-package") for line in lines)


def test_comfy_node_validate_security_rules() -> None:
    """`comfy node validate` runs ruff with S102 (exec), S307 (eval) and E702 (statements on one line)."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO), "--select", "S102,S307,E702",
                             "--output-format", "concise", "--no-cache"], capture_output=True, text=True)
    if "No module named ruff" in result.stderr:
        pytest.skip("ruff is not installed (requirements-dev.txt pins it)")
    assert result.returncode == 0, result.stdout + result.stderr


def test_comfyui_reads_the_pyproject() -> None:
    """ComfyUI's own parser (comfy_config) reads the same file: skipped without a checkout (COMFYUI_DIR)."""
    comfy = os.environ.get("COMFYUI_DIR")
    if not comfy or not (Path(comfy) / "comfy_config" / "config_parser.py").is_file():
        pytest.skip("COMFYUI_DIR is not set to a ComfyUI checkout")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from comfy_config import config_parser as c; "
            "cfg = c.extract_node_configuration(sys.argv[2]); "
            "print(cfg.project.name, cfg.project.version, cfg.tool_comfy.publisher_id, "
            "cfg.project.supported_comfyui_frontend_version)")
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    out = subprocess.run([python, "-c", code, comfy, str(REPO)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    project = PYPROJECT["project"]
    assert out.stdout.split() == [project["name"], project["version"], PYPROJECT["tool"]["comfy"]["PublisherId"],
                                  ">=" + ".".join(map(str, TESTED_FRONTEND))]
