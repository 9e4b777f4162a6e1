"""Run a paper's notebook with papermill, as ``dvc repro`` does: ``poolrep run <stage>``.

Parameters come from params.yaml (``config.resolve``) and must all be names in the notebook's ``parameters`` cell
(an unknown key is an error before anything runs). The notebook writes into a staging folder; only when it has
run to the end does the staging folder replace ``results/<stage>/``, so a failed run leaves the previous
results untouched. The failed notebook is kept as ``results/.failed/<stage>.ipynb`` for inspection. Dot-files of
the previous folder that the run did not write (a git-tracked ``.gitignore``) are carried over into the new one.

One run of a stage at a time: a run holds ``results/.staging/<stage>.lock`` (a second one fails at once). A run
dies with its parent (``dvc``): on Linux it asks for SIGTERM when the parent dies, SIGTERM stops it through the same
clean-up as a failure, and it swaps nothing in once its parent is gone, so results never change behind the back of
a ``dvc.lock`` that does not know them.

The executed notebook is committed to git (a clone shows it), so before the swap it is cleaned of what changes
from one identical rerun to the next (:func:`clean`): papermill's and nbclient's timestamps and durations, absolute
paths, papermill's random cell id, progress bars, memory addresses in warnings, the ``[time]`` lines of the
run log and how the kernel split a stream into messages. The run's effective parameters and git commit are
added to its ``run.json`` (the one file per stage that holds stamps and timings).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import config, device, io, paths

KERNEL = "poolrep"


def notebook_for(stage: str) -> Path:
    nb = paths.NOTEBOOKS / f"{stage}.ipynb"
    if not nb.exists():
        raise FileNotFoundError(f"no notebook {nb} for stage {stage!r}")
    return nb


def check_kernel() -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise RuntimeError(
            f"Jupyter kernel {KERNEL!r} is not registered. Run `make setup` (or "
            f"`python -m ipykernel install --sys-prefix --name {KERNEL} --display-name 'Python (poolrep)'`)."
        ) from None


class Terminated(BaseException):
    """SIGTERM arrived (or the parent died): a BaseException, so no ``except Exception`` on the way swallows it
    and the run's clean-up (staging removed, failed notebook kept) runs as for a failure."""


def failed_notebook(stage: str, results: Path | None = None) -> Path:
    """Where a failed run keeps its executed notebook."""
    return (results or paths.RESULTS) / ".failed" / f"{stage}.ipynb"


def run(stage: str, profile: str | None = None, results: Path | None = None) -> Path:
    import papermill as pm

    params = config.resolve(stage, profile=profile)
    nb = notebook_for(stage)
    declared = pm.inspect_notebook(str(nb))
    config.check_keys(params, set(declared) - {"out_dir"}, f"notebook {nb.name}")
    check_kernel()
    results = results or paths.RESULTS
    final = results / stage
    staging = results / ".staging" / stage
    with _exclusive(results / ".staging" / f"{stage}.lock", stage), _dies_with_parent() as parent:
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        out_nb = staging / "notebook.ipynb"
        print(f"[run] {stage}: profile={params['profile']} -> {final}")
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(
                str(nb),
                str(out_nb),
                parameters={**params, "out_dir": str(staging)},
                kernel_name=KERNEL,
                cwd=str(paths.NOTEBOOKS),
                progress_bar=True,
                log_output=False,
            )
        except BaseException:
            failed = failed_notebook(stage, results)
            failed.parent.mkdir(parents=True, exist_ok=True)
            if out_nb.exists():
                shutil.move(str(out_nb), failed)
                print(f"[run] {stage} failed; the executed notebook is at {failed}")
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            clean(out_nb, {str(staging): f"results/{stage}"})
            _add_provenance(staging / "run.json", params, notebook_s=round(time.perf_counter() - t0, 2))
            with _no_sigterm():  # a SIGTERM now waits until the swap is whole
                if os.getppid() != parent:
                    raise RuntimeError(
                        f"{stage}: the parent process {parent} (dvc, or what started this run) is "
                        f"gone: not swapping the new results in; {final} is left as it was"
                    )
                _swap(staging, final, results / ".staging" / f"{stage}.old")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    print(f"[run] {stage} finished in {time.perf_counter() - t0:.1f} s")
    return final


def _swap(staging: Path, final: Path, old: Path) -> None:
    """Put ``staging`` in the place of ``final``, carrying over the dot-files of ``final`` it does not have."""
    if final.exists():
        for p in final.iterdir():
            if p.name.startswith(".") and not os.path.lexists(staging / p.name):
                if p.is_dir() and not p.is_symlink():
                    shutil.copytree(p, staging / p.name, symlinks=True)
                else:
                    shutil.copy2(p, staging / p.name, follow_symlinks=False)
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _exclusive(lock: Path, stage: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock`` for the duration; a RuntimeError at once if another run holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another run of the stage {stage!r} is in progress (it holds the lock {lock}); "
                f"wait for it to finish, or stop it"
            ) from None
        yield


_PR_SET_PDEATHSIG, _PR_GET_PDEATHSIG = 1, 2


def _pdeathsig(sig: int | None = None) -> int | None:
    """Linux only: set the signal this process gets when its parent dies (``sig``), returning the previous one;
    None where that is not possible (not Linux, no libc)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prev = ctypes.c_int(0)
        if libc.prctl(_PR_GET_PDEATHSIG, ctypes.byref(prev), 0, 0, 0) != 0:
            return None
        if sig is not None and libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            return None
        return prev.value
    except (OSError, AttributeError):
        return None


@contextmanager
def _dies_with_parent() -> Iterator[int]:
    """For the duration: SIGTERM on the parent's death (Linux), and SIGTERM raises :class:`Terminated`. Yields the
    parent's pid, for the check before the swap."""
    parent = os.getppid()
    main = threading.current_thread() is threading.main_thread()  # signal handlers: main thread only
    prev_handler = None
    if main:

        def on_term(signum, frame):
            raise Terminated(f"terminated by signal {signum} (SIGTERM: stopped, or the parent died)")

        prev_handler = signal.signal(signal.SIGTERM, on_term)
    prev_sig = _pdeathsig(signal.SIGTERM)
    try:
        if os.getppid() != parent:  # the parent died before the death signal was asked for
            raise Terminated(f"the parent process {parent} died before the run started")
        yield parent
    finally:
        if prev_sig is not None:
            _pdeathsig(prev_sig)
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if prev_handler is None else prev_handler)


@contextmanager
def _no_sigterm() -> Iterator[None]:
    """SIGTERM blocked for the duration (delivered after it), so it cannot interrupt a swap halfway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    prev = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, prev)


# A progress bar's line: a carriage return, tqdm's "40%|####| 2/5" bar, or tqdm's "[00:01<00:02, 3.1it/s" timer (which
# also matches bars of unknown length, "12it [00:00, 113.88it/s]"); and the run log's "[time]" lines.
_PROGRESS = re.compile(r"\r|\d+%\|.*\|\s*\d+/\d+|\[\d+:\d\d(?::\d\d)?(?:<[\d:?]+)?, |^" + re.escape(device.TIME_PREFIX))
# Memory addresses in library warnings ("[h264 @ 0x5597a0f34f80] ..."): they differ in every process.
_ADDRESS = re.compile(r"\b0x[0-9a-f]{6,}\b")
_VOLATILE_NB_META = ("start_time", "end_time", "duration", "input_path", "output_path", "environment_variables")
INJECTED_ID = "injected-parameters"  # papermill gives its injected cell a random id; a fixed one is stable


def _text(o: dict) -> str:
    t = o.get("text", "")
    return "".join(t) if isinstance(t, list) else t


def _clean_outputs(outputs: list) -> list:
    """A cell's outputs without progress-bar and ``[time]`` lines in stderr and with memory addresses masked, and
    consecutive stream outputs of one name joined into one: how the kernel happened to split a stream between
    messages is timing, not content."""
    outs = []
    for o in outputs:
        if o.get("output_type") == "stream":
            text = _text(o)
            if o.get("name") == "stderr":
                text = _ADDRESS.sub(
                    "0x...", "".join(line for line in text.splitlines(keepends=True) if not _PROGRESS.search(line))
                )
            if not text:
                continue
            if outs and outs[-1].get("output_type") == "stream" and outs[-1].get("name") == o.get("name"):
                text = _text(outs[-1]) + text
                outs.pop()
            o = {**o, "text": text.splitlines(keepends=True)}
        outs.append(o)
    return outs


def clean(nb_path: Path, replace: dict[str, str] | None = None) -> None:
    """Remove from an executed notebook what differs between two runs that compute the same numbers: cell and
    notebook timing metadata (papermill, nbclient), absolute input/output paths, papermill's random id of the
    injected-parameters cell, the stderr lines of progress bars and of the run log's ``[time]`` durations, memory
    addresses in warnings, and how a stream was split into outputs (other stderr text, such as warnings, stays).
    ``replace``: text replaced everywhere (the staging folder's absolute path by ``results/<stage>``)."""
    text = nb_path.read_text()
    for old, new in (replace or {}).items():
        text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    nb = json.loads(text)
    meta = nb.get("metadata", {}).get("papermill")
    if isinstance(meta, dict):
        for k in _VOLATILE_NB_META:
            meta.pop(k, None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if INJECTED_ID in cell.get("metadata", {}).get("tags", []) and "id" in cell:
            cell["id"] = INJECTED_ID
        if "outputs" in cell:
            cell["outputs"] = _clean_outputs(cell["outputs"])
    io.write_text(nb_path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _add_provenance(run_json: Path, params: dict, notebook_s: float) -> None:
    """Add the effective parameters, the git state and the notebook's duration to the run.json it wrote."""
    if not run_json.exists():
        raise RuntimeError(
            f"{run_json} missing: the notebook must end with io.save_metrics(out, metrics, run.finish())"
        )
    doc = json.loads(run_json.read_text())
    doc["params"] = params
    doc["git"] = device.git_state()
    doc["notebook_s"] = notebook_s
    io.save_json(run_json, doc)
