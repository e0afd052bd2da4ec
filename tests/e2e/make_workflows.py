"""Rebuild workflows/*.json in ComfyUI's own editor and their .jpg thumbnails from real runs.

    COMFYUI_DIR=/opt/ComfyUI COMFYUI_PYTHON=/opt/venv/bin/python .venv/bin/python tests/e2e/make_workflows.py

Starts ComfyUI with the pack (comfy_server.py; the pack copies its example inputs into the empty input folder; the
tiny stand-ins of the user's UniAVGen files are in its model folders), builds each spec of workflow_specs.py in the
editor (headless chromium, browser/build_workflows.js) and saves what the editor serializes, checks every workflow
against the live /object_info, runs it through /prompt and writes the middle frame of its mp4 as
workflows/<name>.jpg. Workflows for models the user brings (USER_MODEL_WORKFLOWS) are built and checked, not run:
a thumbnail from random weights would show noise (test_e2e_uniavgen.py runs the UniAVGen ones). Needs node,
chromium and `npm ci` in tests/e2e.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "workflows"), str(HERE.parents[1])]

from comfy_server import REPO, output_files, run_prompt, start_server  # noqa: E402
from media_checks import write_thumbnail  # noqa: E402
from workflow_graph import load_core_schemas, to_api, validate_workflow  # noqa: E402
from workflow_specs import USER_MODEL_WORKFLOWS, all_specs  # noqa: E402

WORKFLOWS = REPO / "workflows"


def build(url: str, work: Path) -> list[Path]:
    """Run the editor builder; returns the workflow files it wrote."""
    specs = all_specs()
    specs_file = work / "specs.json"
    specs_file.write_text(json.dumps(specs))
    script = HERE / "browser" / "build_workflows.js"
    subprocess.run(["node", str(script), url, str(specs_file), str(WORKFLOWS)], check=True, timeout=300)
    return [WORKFLOWS / f"{spec['name']}.json" for spec in specs]


def main() -> None:
    comfy_dir = Path(os.environ["COMFYUI_DIR"])
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="harmony-make-workflows-") as tmp:
        work = Path(tmp)
        server = start_server(comfy_dir, python, work)
        try:
            schemas = server.get("/object_info")
            frontend_only = load_core_schemas()[1]
            for path in build(server.url, work):
                workflow = json.loads(path.read_text())
                errors = validate_workflow(workflow, schemas, frontend_only)
                if errors:
                    raise SystemExit(f"{path.name}: " + "; ".join(errors))
                if path.stem in USER_MODEL_WORKFLOWS:
                    print(f"{path.name}: built and checked (needs the user's models; not run)")  # noqa: T201
                    continue
                start = time.monotonic()
                entry = run_prompt(server, to_api(workflow, schemas))
                mp4 = next(f for f in output_files(entry) if f["filename"].endswith(".mp4"))
                clip = server.download(mp4, work / f"{path.stem}.mp4")
                thumbnail = write_thumbnail(clip, path.with_suffix(".jpg"))
                print(f"{path.name}: ran in {time.monotonic() - start:.1f} s, thumbnail {thumbnail.name}")  # noqa: T201
        finally:
            server.stop()


if __name__ == "__main__":
    main()
