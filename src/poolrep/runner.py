"""Run a paper's notebook with papermill, as ``dvc repro`` does: ``poolrep run <stage>``.

Parameters come from params.yaml (``config.resolve``) and must all be names in the notebook's ``parameters`` cell
(an unknown key is an error before anything runs). The notebook writes into a staging folder; only when it has
run to the end does the staging folder replace ``results/<stage>/``, so a failed run leaves the previous
results untouched. The failed notebook is kept as ``results/.failed/<stage>.ipynb`` for inspection.

The executed notebook is committed to git (a clone shows it), so before the swap it is cleaned of what changes
from one identical rerun to the next (:func:`clean`): papermill's and nbclient's timestamps and durations, absolute
paths, progress bars and the ``[time]`` lines of the run log. The run's effective parameters and git commit are
added to its ``run.json`` (the one file per stage that holds stamps and timings).
"""

from __future__ import annotations

import json
import re
import shutil
import time
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
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    out_nb = staging / "notebook.ipynb"
    print(f"[run] {stage}: profile={params['profile']} -> {final}")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(
            str(nb), str(out_nb), parameters={**params, "out_dir": str(staging)}, kernel_name=KERNEL,
            cwd=str(paths.NOTEBOOKS), progress_bar=True, log_output=False,
        )
    except BaseException:
        failed = results / ".failed" / f"{stage}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        if out_nb.exists():
            shutil.move(str(out_nb), failed)
            print(f"[run] {stage} failed; the executed notebook is at {failed}")
        shutil.rmtree(staging, ignore_errors=True)
        raise
    clean(out_nb, {str(staging): f"results/{stage}"})
    _add_provenance(staging / "run.json", params, notebook_s=round(time.perf_counter() - t0, 2))
    old = results / ".staging" / f"{stage}.old"
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    print(f"[run] {stage} finished in {time.perf_counter() - t0:.1f} s")
    return final


_PROGRESS = re.compile(r"\r|\d+%\|.*\|\s*\d+/\d+|^" + re.escape(device.TIME_PREFIX))
_VOLATILE_NB_META = ("start_time", "end_time", "duration", "input_path", "output_path", "environment_variables")


def clean(nb_path: Path, replace: dict[str, str] | None = None) -> None:
    """Remove from an executed notebook what differs between two runs that compute the same numbers: cell and
    notebook timing metadata (papermill, nbclient), absolute input/output paths, and the stderr lines of progress
    bars and of the run log's ``[time]`` durations (other stderr text, such as warnings, stays). ``replace``: text
    replaced everywhere (the staging folder's absolute path by ``results/<stage>``)."""
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
        outs = []
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                text = "".join(o.get("text", ""))
                keep = [l for l in text.splitlines(keepends=True) if not _PROGRESS.search(l)]
                if not keep:
                    continue
                o["text"] = keep
            outs.append(o)
        if "outputs" in cell:
            cell["outputs"] = outs
    io.write_text(nb_path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _add_provenance(run_json: Path, params: dict, notebook_s: float) -> None:
    """Add the effective parameters, the git state and the notebook's duration to the run.json it wrote."""
    if not run_json.exists():
        raise RuntimeError(f"{run_json} missing: the notebook must end with io.save_metrics(out, metrics, run.finish())")
    doc = json.loads(run_json.read_text())
    doc["params"] = params
    doc["git"] = device.git_state()
    doc["notebook_s"] = notebook_s
    io.save_json(run_json, doc)
