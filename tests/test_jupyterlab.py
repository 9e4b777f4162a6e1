"""JupyterLab starts headless on a loopback port, lists every notebook, and offers the project's kernel."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from poolrep import paths


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.slow
def test_jupyterlab_lists_notebooks_and_kernel(tmp_path):
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists():
        pytest.fail(f"{lab} not installed: the environment must include JupyterLab (requirements.txt)")
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.Popen(
        [
            str(lab),
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={paths.ROOT}",
            "--ServerApp.open_browser=False",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "lab.log", "wb"),
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                _get(f"{base}/api/status", token)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail("jupyter-lab exited: " + (tmp_path / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        else:
            pytest.fail("jupyter-lab did not answer within 60 s: " + (tmp_path / "lab.log").read_text()[-2000:])
        listed = {c["name"] for c in _get(f"{base}/api/contents/notebooks", token)["content"]}
        expected = {p.name for p in paths.NOTEBOOKS.glob("*.ipynb")}
        assert expected and expected <= listed
        specs = _get(f"{base}/api/kernelspecs", token)["kernelspecs"]
        assert "poolrep" in specs and specs["poolrep"]["spec"]["display_name"] == "Python (poolrep)"
        # the lab UI itself is served
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=5) as r:
            assert r.status == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    # stopped by its process group: nothing answers on its port any more
    with pytest.raises(OSError, match="[Cc]onnection refused"):
        _get(f"{base}/api/status", token)
