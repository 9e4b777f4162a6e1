"""Run a paper's notebook with papermill, as ``dvc repro`` does: ``poolrep run <stage>``.

Parameters come from params.yaml (``config.resolve``) and must all be names in the notebook's ``parameters`` cell
(an unknown key is an error before anything runs). The notebook writes into a staging folder; only when it has
run to the end does the staging folder replace ``results/<stage>/``, so a failed run leaves the previous
results untouched. The failed notebook is kept as ``results/.failed/<stage>.ipynb`` for inspection.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from . import config, paths

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
    old = results / ".staging" / f"{stage}.old"
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    print(f"[run] {stage} finished in {time.perf_counter() - t0:.1f} s")
    return final
