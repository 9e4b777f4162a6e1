"""Time of a no-op ``dvc repro`` (everything up to date), plus ``dvc status`` for context.

Target (issue 8): a no-op ``dvc repro`` under 5 seconds on the 2-core machine.

Safety: this must never start real work. It first runs ``dvc status``; if anything is changed (or dvc.lock is
absent, i.e. the pipeline never ran) it prints why and exits without running ``dvc repro``. Then it times
``dvc repro`` ``--repeats`` times and checks each run printed no "Running stage" line. Run it after a full
``dvc repro``, when no one else is using the repository (dvc takes a repo lock).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

TARGET_S = 5.0


def dvc_exe() -> str:
    here = Path(sys.executable).parent / "dvc"
    return str(here) if here.exists() else (shutil.which("dvc") or "dvc")


def run(cmd: list[str], root: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    return time.perf_counter() - t0, r


def main(argv=None) -> int:
    from poolrep import paths

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(paths.ROOT))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    root = Path(a.root)
    if not (root / "dvc.lock").exists():
        print(
            f"no-op dvc repro: not measured: {root / 'dvc.lock'} is absent (the pipeline has not been run by "
            "DVC yet). Run `dvc repro` once, then this script."
        )
        return 1
    dvc = dvc_exe()
    t_status, r = run([dvc, "status", "--json"], root)
    if r.returncode != 0:
        print(f"no-op dvc repro: not measured: `dvc status` failed ({r.returncode}):\n{r.stderr[-2000:]}")
        return 1
    try:
        changed = json.loads(r.stdout or "{}")
    except ValueError:
        changed = {"unparsable `dvc status --json` output": r.stdout[-2000:]}
    if changed:  # `dvc status --json` prints {} when every stage is up to date
        print(
            "no-op dvc repro: not measured: the pipeline is not up to date, so `dvc repro` would run stages. "
            f"`dvc status` says:\n{json.dumps(changed, indent=1)[-3000:]}\nRun `dvc repro` first."
        )
        return 1
    times = []
    for _ in range(a.repeats):
        t, r = run([dvc, "repro"], root)
        if r.returncode != 0 or "Running stage" in r.stdout:
            print(
                f"no-op dvc repro: `dvc repro` did work or failed (rc {r.returncode}); stopped:\n"
                f"{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
            )
            return 1
        times.append(t)
    best, med = min(times), sorted(times)[len(times) // 2]
    rows = [
        ["dvc status --json", f"{t_status:.2f}", "", "", "for context"],
        [
            f"dvc repro (no-op, {a.repeats} runs)",
            f"{best:.2f}",
            f"{med:.2f}",
            f"{TARGET_S:.0f}",
            ("MET" if med < TARGET_S else f"MISSED by {med - TARGET_S:.2f} s"),
        ],
    ]
    print(
        table(
            rows,
            ["command", "seconds (best)", "seconds (median)", "target s", "verdict (median)"],
            title="No-op dvc repro",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
