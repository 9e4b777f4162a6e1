"""JupyterLab as a person uses it: a real Chromium opens a paper notebook from the file browser, on the project's
"Python (poolrep)" kernel, runs it with Run > Run All Cells, and sees every code cell executed, no error output and
every figure the notebook makes.

The notebook is ``crosslayer.ipynb`` on its own defaults (its parameters cell: the smoke profile), the cheapest
paper notebook (about 10 s of kernel time here); it needs what nbval needs for it: the CIFAR-10 JPEG archive and the
MobileNetV2 weights, from data/ or the mirror (POOLREP_DATA_MIRROR, as in CI). It runs from a copy under
``scratch/browser-test/`` (JupyterLab's autosave never writes the tracked notebook) whose only change is ``out_dir``:
the figures it saves land in that folder, one more witness of what it made. The server's and Chromium's profiles,
settings and temporary files stay in that folder too; it is removed when the test passes and kept (with a
screenshot) when it fails.

Chromium is Debian's package (``apt-get install -y chromium``; ``.ci/run`` installs it), driven by Playwright's
Python package (requirements.txt) with ``executable_path``: no ``playwright install`` download. In CI (CI=true) a
missing browser, Playwright or data fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import ast
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser import CHROMIUM, CHROMIUM_ARGS  # tests/browser.py: one Chromium set-up

from poolrep import paths

NOTEBOOK = "crosslayer.ipynb"
NEEDS = ["cifar10-jpeg", "mobilenet_v2"]  # what crosslayer.ipynb reads on its defaults (poolrep.data names)

BUDGET_S = 270  # every wait below shares this deadline; pytest-timeout's 300 s is only the backstop
STDERR = "application/vnd.jupyter.stderr"  # JupyterLab 4 renders an error output (a traceback) with this mime type too


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _require(ok: bool, msg: str) -> None:
    if ok:
        return
    if _in_ci():  # CI must run the browser test, never skip it
        pytest.fail(f"{msg} (CI=true: this test must run, not be skipped)")
    pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _figure_calls(nb) -> int:
    """The number of ``save_figure(...)`` calls in the notebook's code cells: each makes one figure, which the inline
    backend shows under its cell. Every call must run once per cell run (not in a loop), or the count is no
    expectation: then this fails, asking for another way to count."""
    count = 0

    def visit(node, in_loop):
        nonlocal count
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name == "save_figure":
                assert not in_loop, f"{NOTEBOOK}: save_figure in a loop: count its figures another way"
                count += 1
        for child in ast.iter_child_nodes(node):
            visit(child, in_loop or isinstance(node, (ast.For, ast.While, ast.comprehension)))

    for cell in nb.cells:
        if cell.cell_type == "code":
            src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            try:
                tree = ast.parse(src)
            except SyntaxError:  # makes no figure; the browser shows its error, which the test reports
                continue
            visit(tree, False)
    return count


def _copy_notebook(src: Path, dest: Path, out: Path) -> None:
    """``src`` written to ``dest`` with ``out_dir = <out>`` in its parameters cell (nothing else changes)."""
    nb = nbformat.read(src, as_version=4)
    params = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{src.name}: expected one cell tagged 'parameters'"
    new, n = re.subn(r"^out_dir = None$", f"out_dir = {str(out)!r}", params[0].source, flags=re.M)
    assert n == 1, f"{src.name}: its parameters cell has no line 'out_dir = None'"
    params[0].source = new
    dest.parent.mkdir(parents=True)
    nbformat.write(nb, dest)


def _start_lab(root: Path, work: Path, deadline: float):
    """jupyter-lab on a loopback port with every per-user folder under ``work``; returns (proc, base url, token)."""
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists():
        pytest.fail(f"{lab} not installed: the environment must include JupyterLab (requirements.txt)")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        **{
            var: str(work / sub)
            for var, sub in (
                ("JUPYTER_CONFIG_DIR", "jupyter-config"),
                ("JUPYTER_DATA_DIR", "jupyter-data"),
                ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
                ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
                ("IPYTHONDIR", "ipython"),
                ("TMPDIR", "tmp"),
            )
        },
    }
    # The suite (tests/conftest.py) and the Makefile set MPLBACKEND=Agg for headless runs; inherited by the kernel,
    # it replaces the inline backend and JupyterLab shows no figure at all. A person's `jupyter lab` has no such
    # variable: the kernel then picks the inline backend itself (ipykernel sets MPLBACKEND only when unset).
    env.pop("MPLBACKEND", None)
    log = open(work / "lab.log", "wb")
    proc = subprocess.Popen(
        [
            str(lab),
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.open_browser=False",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    limit = min(deadline, time.monotonic() + 60)
    while True:
        try:
            req = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                json.loads(r.read())
            return proc, base, token
        except OSError:
            if proc.poll() is not None:
                pytest.fail("jupyter-lab exited: " + _tail(work / "lab.log"))
            if time.monotonic() > limit:
                _stop_lab(proc, work)
                pytest.fail("jupyter-lab did not answer in time: " + _tail(work / "lab.log"))
            time.sleep(0.5)


def _stop_lab(proc: subprocess.Popen, work: Path) -> None:
    """Stop the server's process group, then any kernel it started that outlived it (a kernel runs in a session
    of its own; it is found by its connection file in this test's runtime folder) by its pid."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
    marker = str(work / "jupyter-runtime")
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(d.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


def _tail(path: Path, n: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


_STATE_JS = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return null;
  const ind = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
  return {
    prompts: [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea .jp-InputPrompt')].map(e => e.textContent.trim()),
    status: ind ? ind.getAttribute('data-status') : null,
    dialog: [...document.querySelectorAll('.jp-Dialog')].map(e => e.textContent.trim()).join(' | '),
  };
}"""

# In a stderr-typed output: a traceback (IPython's, or one a library printed), or a line that starts with an exception's
# name (IPython shows a SyntaxError without the word Traceback). Warnings ("x.py:21: TqdmWarning: ...") and progress
# bars, which the notebooks print to stderr too, are not errors.
_OUTPUTS_JS = """(stderrMime) => {
  const ERROR = /Traceback \\(most recent call last\\)|^\\s*([A-Za-z_]\\w*\\.)*\\w*(Error|Exception|KeyboardInterrupt|SystemExit)\\b/m;
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  const outs = [...nb.querySelectorAll('.jp-OutputArea-output')];
  const errors = outs.filter(e => {
    const mime = e.getAttribute('data-mime-type') || '';
    return mime === 'application/vnd.jupyter.error' ||
           (mime === stderrMime && ERROR.test(e.textContent));
  }).map(e => e.textContent.slice(0, 1500));
  const imgs = [...nb.querySelectorAll('.jp-OutputArea-output img')];
  return {errors, images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length};
}"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_person_runs_a_paper_notebook_in_jupyterlab(monkeypatch):
    start = time.monotonic()
    deadline = start + BUDGET_S

    def left(cap: float) -> float:
        """ms for the next wait: at most ``cap`` s, never past the deadline."""
        rest = deadline - time.monotonic()
        if rest <= 0:
            pytest.fail(f"the browser test ran past its {BUDGET_S} s budget")
        return 1000 * min(cap, rest)

    try:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        sync_playwright = None
    _require(
        sync_playwright is not None, "Playwright's Python package is not installed (pip install -r requirements.txt)"
    )
    _require(
        Path(CHROMIUM).exists(),
        f"chromium is not installed at {CHROMIUM} (Debian: apt-get install -y chromium; .ci/run does this)",
    )
    from poolrep.data import available

    missing = [n for n in NEEDS if not available(n)]
    _require(
        not missing,
        f"no real data for {', '.join(missing)}: set POOLREP_DATA_MIRROR "
        "(e.g. ../shared/datasets) or run `poolrep fetch`",
    )

    source = paths.NOTEBOOKS / NOTEBOOK
    nb = nbformat.read(source, as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    n_figures = _figure_calls(nb)
    assert n_code > 0 and n_figures > 0, (n_code, n_figures)
    (paths.SCRATCH / "browser-test").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lab-", dir=paths.SCRATCH / "browser-test"))
    (work / "tmp").mkdir()
    out = work / "out"
    _copy_notebook(source, work / "root" / "notebooks" / NOTEBOOK, out)
    monkeypatch.setenv("TMPDIR", str(work / "tmp"))  # Playwright's driver and Chromium write their temporary files here

    proc, base, token = _start_lab(work / "root", work, deadline)
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(work / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
                timeout=left(60),
            )
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            try:
                page.set_default_timeout(30_000)
                page.goto(f"{base}/lab?token={token}", timeout=left(60))
                # the file browser, as a person: into notebooks/, open the notebook
                page.locator(".jp-DirListing-itemText", has_text=re.compile(r"^notebooks$")).dblclick(timeout=left(60))
                page.locator(".jp-DirListing-itemText", has_text=re.compile(rf"^{re.escape(NOTEBOOK)}$")).dblclick(
                    timeout=left(30)
                )
                panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
                expect(panel.locator(".jp-KernelName")).to_have_text("Python (poolrep)", timeout=left(60))
                expect(panel.locator(".jp-Notebook-ExecutionIndicator")).to_have_attribute(
                    "data-status", "idle", timeout=left(60)
                )
                # JupyterLab attaches a notebook's cells in batches after it opens, and the kernel can be idle
                # before the last batch: a single look can count too few (CI saw 12 of 15). Wait for them all.
                try:
                    page.wait_for_function(  # the prompts _STATE_JS counts, so the wait and the check agree
                        f"(n) => {{ const s = ({_STATE_JS})(); return s !== null && s.prompts.length >= n; }}",
                        arg=n_code,
                        timeout=left(30),
                    )
                except PlaywrightTimeout:
                    pass  # the assertion below says how many it shows
                state = page.evaluate(_STATE_JS)
                assert len(state["prompts"]) == n_code, (
                    f"the notebook shows {len(state['prompts'])} code cells, its file has {n_code}"
                )

                # Run > Run All Cells
                page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(timeout=left(30))
                page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click(timeout=left(30))
                page.wait_for_function(  # started: a cell queued or run
                    "() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell "
                    ".jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))",
                    timeout=left(30),
                )
                # finished: the kernel idle and no cell queued or running, twice in a row a second apart (a failing
                # cell stops the run: the cells after it are left unnumbered, which the count check below reports)
                calm = lost = 0
                while calm < 2:
                    left(0)  # fails once the budget is spent
                    state = page.evaluate(_STATE_JS)
                    # a dialog blocks a person too (JupyterLab's "Kernel Restarting" when the kernel dies)
                    assert not state["dialog"], (
                        f"a dialog opened during the run: {state['dialog']!r}; prompts {state['prompts']}"
                    )
                    lost = lost + 1 if state["status"] in ("dead", "restarting", "autorestarting", "unknown") else 0
                    assert lost < 3, f"the kernel is {state['status']} during the run; prompts {state['prompts']}"
                    done = state["status"] == "idle" and not any("*" in p for p in state["prompts"])
                    calm = calm + 1 if done else 0
                    time.sleep(1)
                run_s = time.monotonic() - start

                # every figure scrolled into view, as a person reading down the notebook, and decoded by the browser
                imgs = panel.locator(".jp-OutputArea-output img")
                for i in range(imgs.count()):
                    imgs.nth(i).scroll_into_view_if_needed(timeout=left(10))
                try:
                    page.wait_for_function(
                        "() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) "
                        ".jp-OutputArea-output img')].every(i => i.complete && i.naturalWidth > 0)",
                        timeout=left(30),
                    )
                except PlaywrightTimeout:
                    pass  # the count of decoded figures below says which failed
                seen = page.evaluate(_OUTPUTS_JS, STDERR)

                assert not seen["errors"], "error output in the notebook:\n" + "\n---\n".join(seen["errors"])
                unrun = [i for i, p in enumerate(state["prompts"]) if not re.fullmatch(r"\[\d+\]:", p)]
                assert len(state["prompts"]) == n_code and not unrun, (
                    f"code cells without an execution count (index among code cells): {unrun}; prompts "
                    f"{state['prompts']}"
                )
                saved = sorted(p.name for p in (out / "figures").glob("*.png")) if (out / "figures").is_dir() else []
                assert len(saved) == n_figures, (
                    f"{NOTEBOOK} has {n_figures} save_figure calls but saved {len(saved)} figures: {saved}"
                )
                assert seen["images"] == n_figures and seen["loaded"] == n_figures, (
                    f"JupyterLab shows {seen['images']} figures ({seen['loaded']} decoded); the notebook made "
                    f"{n_figures}: {saved}"
                )
                print(
                    f"\n{NOTEBOOK} in JupyterLab: {n_code} cells run, {n_figures} figures, no error; "
                    f"{run_s:.0f} s to the end of the run"
                )
            except BaseException:
                try:
                    page.screenshot(path=str(work / "failure.png"), full_page=True, timeout=10_000)
                except Exception:  # noqa: BLE001 - the original failure matters, not the screenshot's
                    pass
                print(
                    f"\nbrowser test failed: screenshot and logs kept in {work}\nlab.log tail:\n{_tail(work / 'lab.log')}"
                )
                raise
            finally:
                ctx.close()
    finally:
        _stop_lab(proc, work)
    shutil.rmtree(work, ignore_errors=True)  # passed: nothing to keep
