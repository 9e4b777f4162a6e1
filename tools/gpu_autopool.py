"""The ``autopool`` stage at the authors' scale on one GPU, in one command, where there is no dvc or papermill.

    python3 tools/gpu_autopool.py --mirror DATA --out DIR [--profile paper] [--skip-tests]

1. the CUDA checks (``tests/test_cuda.py``: the gradient, a training run, the conv features and the linear SVM on
   the GPU against the CPU) and the stage's own tests (``tests/test_autopool.py``, ``tests/test_linear_svm.py``);
2. ``notebooks/autopool.ipynb``'s code cells, executed in order with the profile's parameters from params.yaml
   put where papermill would put them (its ``parameters`` cell), writing the stage's tables, figures and
   metrics.json into ``DIR/autopool``; the notebook's display calls print to the terminal.

What it needs beside the repository: PyTorch with CUDA, numpy, scipy, scikit-learn, pandas, matplotlib, seaborn,
tabulate, tqdm, pyyaml, opencv-python-headless and pytest (an image like the device machine's has them all), and
the data in a folder laid out as the mirror (``cifar10-jpeg.tar.gz`` and ``videos/``: 35 MB), passed as
``--mirror``. The ``paper`` profile is the authors' scale: K up to 2,500, 100,000 training pairs, 5,000 / 1,000
training images per class and all 10,000 test images (see params.yaml's ``autopool.paper``). The whole check is
sized for about 8 minutes on one H100; the same code runs (slowly) on a CPU, e.g. with ``--profile smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Markdown(str):
    """IPython.display.Markdown's stand-in: the text itself."""


def display(*objs) -> None:
    """IPython.display.display's stand-in: tables as Markdown, everything else as text, on the terminal."""
    for o in objs:
        print(o.to_markdown(index=False) if hasattr(o, "to_markdown") else o, flush=True)


IPYTHON_IMPORT = "from IPython.display import Markdown, display"


def run_notebook(nb_path: Path, stage: str, profile: str, out_dir: Path) -> dict:
    """Execute ``nb_path``'s code cells in one namespace, the ``parameters`` cell replaced by ``profile``'s values
    (as ``poolrep run`` passes them through papermill). Returns the namespace."""
    from poolrep import config

    params = config.resolve(stage, profile=profile)
    nb = json.loads(nb_path.read_text())
    ns: dict = {"__name__": "__main__", "display": display, "Markdown": Markdown}
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "\n".join(f"{k} = {v!r}" for k, v in params.items()) + f"\nout_dir = {str(out_dir)!r}"
        # no magics; the notebook's display names are the terminal stand-ins above (IPython may be missing, and
        # outside a kernel its display prints only a repr)
        src = "\n".join(
            x for x in src.splitlines() if not x.lstrip().startswith(("%", "!")) and x.strip() != IPYTHON_IMPORT
        )
        t0 = time.perf_counter()
        exec(compile(src, f"{nb_path.name} cell {i}", "exec"), ns)
        print(f"[cell {i}] {time.perf_counter() - t0:.1f} s", flush=True)
    return ns


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirror", required=True, help="folder laid out as the data mirror")
    ap.add_argument("--out", required=True, help="results go to OUT/autopool")
    ap.add_argument("--profile", default="paper", choices=("smoke", "cpu", "paper"))
    ap.add_argument("--skip-tests", action="store_true")
    a = ap.parse_args(argv)
    out = Path(a.out).resolve()
    os.environ["POOLREP_DATA_MIRROR"] = str(Path(a.mirror).resolve())
    os.environ.setdefault("POOLREP_DATA_DIR", str(out / "data"))  # copies from the mirror land beside the results
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(ROOT / "src"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    if not a.skip_tests:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-x",
                "tests/test_cuda.py",
                "tests/test_autopool.py",
                "tests/test_linear_svm.py",
            ],
            cwd=ROOT,
            env=env,
        )
        print(f"[tests] exit {r.returncode} in {time.perf_counter() - t0:.0f} s", flush=True)
        if r.returncode != 0:
            return r.returncode
    import torch

    print(
        f"[device] {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only'}; "
        f"torch {torch.__version__}",
        flush=True,
    )
    t1 = time.perf_counter()
    run_notebook(ROOT / "notebooks" / "autopool.ipynb", "autopool", a.profile, out / "autopool")
    print(f"[autopool {a.profile}] {time.perf_counter() - t1:.0f} s; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
