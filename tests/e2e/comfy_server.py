"""Start a real ComfyUI (`main.py --cpu`) with this pack and talk to it over HTTP (standard library only).

The user's checkout is never modified: everything ComfyUI writes (input, output, temp, user folders) lives in
a work folder, the database is in memory, and the pack is linked into a temporary custom_nodes folder that an
extra_model_paths.yaml adds. Other custom nodes of the checkout are not loaded (--disable-all-custom-nodes
with this pack whitelisted), so the run depends on this pack only. With `user_models` (the default) the work
folder also gets the model files a UniAVGen user has (tiny random ones) in model folders the yaml adds, and the
test-only text encoder package that stands in for umT5 (user_models.py, whitelisted too); they are written by
the interpreter running the tests (torch + harmony_core), not by ComfyUI's.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PACK_FOLDER = "ComfyUI-Harmony"  # the folder name a git clone of the pack gets; also its /extensions/<name>
REPO = Path(__file__).resolve().parents[2]
WALL_TIMES: dict[str, float] = {}  # workflow name -> seconds from /prompt to its history entry
STREAMS: dict[str, list[str]] = {}  # workflow name -> one line per saved clip (size, frames, durations)
FUZZ_TABLE: list[tuple[str, str, float, str]] = []  # test_e2e_fuzz: (case, outcome, seconds, message)


@dataclass
class ComfyServer:
    """A running ComfyUI: its base URL, work folders, log file and process."""

    url: str
    work: Path
    process: subprocess.Popen
    log_path: Path

    @property
    def input_dir(self) -> Path:
        return self.work / "input"

    @property
    def output_dir(self) -> Path:
        return self.work / "output"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout: float = 30) -> object:
        """GET a JSON route."""
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def post(self, path: str, payload: dict, timeout: float = 30) -> tuple[int, object]:
        """POST JSON; returns (status, decoded body) for success and HTTP errors alike."""
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def download(self, entry: dict, target: Path) -> Path:
        """Fetch an output file ({filename, subfolder, type}) through /view."""
        query = urllib.parse.urlencode({k: entry.get(k, "") for k in ("filename", "subfolder", "type")})
        with urllib.request.urlopen(f"{self.url}/view?{query}", timeout=60) as response:
            target.write_bytes(response.read())
        return target

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_work(work: Path, pack_dir: Path = REPO, user_models: bool = True) -> tuple[Path, list[str]]:
    """Work folders, the pack linked into a temporary custom_nodes folder, the user's model files and the
    test-only packs (with `user_models`), and the yaml that adds them; returns the yaml and the packs to load."""
    for sub in ("input", "output", "temp", "user", "custom_nodes"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    link = work / "custom_nodes" / PACK_FOLDER
    if not link.exists():
        link.symlink_to(pack_dir, target_is_directory=True)
    folders, packs = {"custom_nodes": work / "custom_nodes"}, [PACK_FOLDER]
    if user_models:
        import user_models as models  # torch + harmony_core: only here

        folders.update(models.write_models(work))
        packs.append(models.write_text_pack(work / "custom_nodes"))
    yaml = work / "extra_model_paths.yaml"
    yaml.write_text("harmony_e2e:\n" + "".join(f"  {name}: {path}\n" for name, path in folders.items()))
    return yaml, packs


def start_server(comfy_dir: Path, python: str, work: Path, timeout: float = 240,
                 user_models: bool = True, flags: tuple[str, ...] = (), env: dict | None = None) -> ComfyServer:
    """Launch ComfyUI on a free port and wait until /object_info answers; raise with the log otherwise. `flags`:
    more ComfyUI options (e.g. --fp8_e4m3fn-unet; not --lowvram, which argparse refuses next to --cpu); `env`:
    variables added to the server's environment."""
    yaml, packs = prepare_work(work, user_models=user_models)
    port = free_port()
    command = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--extra-model-paths-config", str(yaml), "--disable-all-custom-nodes",
               "--whitelist-custom-nodes", *packs, "--disable-auto-launch",
               "--input-directory", str(work / "input"), "--output-directory", str(work / "output"),
               "--temp-directory", str(work / "temp"), "--user-directory", str(work / "user"),
               "--database-url", "sqlite:///:memory:", *flags]
    log_path = work / "comfyui.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **env} if env else None)
    server = ComfyServer(f"http://127.0.0.1:{port}", work, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with code {process.returncode}:\n{server.log()[-4000:]}")
        try:
            server.get("/object_info/HarmonySampler", timeout=5)
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    server.stop()
    raise RuntimeError(f"ComfyUI did not answer within {timeout:.0f} s:\n{server.log()[-4000:]}")


def run_prompt(server: ComfyServer, prompt: dict, timeout: float = 300) -> dict:
    """Queue an API prompt, wait for it on /history and return its history entry (raises on errors)."""
    status, body = server.post("/prompt", {"prompt": prompt, "client_id": "harmony-e2e"})
    if status != 200:
        raise RuntimeError(f"/prompt refused the workflow ({status}): {json.dumps(body)[:3000]}")
    prompt_id = body["prompt_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = server.get(f"/history/{prompt_id}")
        entry = history.get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            if entry["status"].get("status_str") != "success":
                raise RuntimeError(f"prompt failed: {json.dumps(entry['status'])[:4000]}")
            return entry
        time.sleep(0.5)
    raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")


def output_files(entry: dict) -> list[dict]:
    """Every {filename, subfolder, type} file a history entry lists, whatever the UI key."""
    files = []
    for outputs in entry.get("outputs", {}).values():
        for items in outputs.values():
            if isinstance(items, list):
                files += [i for i in items if isinstance(i, dict) and "filename" in i]
    return files
