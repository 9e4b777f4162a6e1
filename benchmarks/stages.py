"""Wall time of each pipeline stage, from what the stages recorded, and the total against the 90-minute target.

Target (issue 8): the whole ``cpu`` pipeline (shared stages + five papers + report) under 90 minutes on the
2-core machine.

Sources, per stage in dvc.yaml order, from ``results/<stage>/run.json`` (the one file per stage that holds
stamps and timings):
- ``wall_time_s``: the stage's own clock, from ``RunLog.start()`` to ``run.finish()`` (inside the notebook: no
  kernel start-up, no papermill overhead);
- ``notebook_s``: the whole notebook run as ``poolrep run`` timed it (kernel start-up included), when the stage
  is a notebook;
- ``dvc.lock`` holds no times (only hashes), so it is used only to say whether the stage has been run by DVC.
The total uses the notebook duration where there is one (closer to what ``dvc repro`` costs), else the stage's
own wall time. Stages whose runs used different profiles are flagged: a mixed total is not a cpu-profile total.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml  # noqa: E402
from _common import table  # noqa: E402

TARGET_S = 90 * 60


def stage_names(root: Path) -> list[tuple[str, bool]]:
    """``[(stage, records_time)]`` in dvc.yaml order; ``records_time``: the stage declares a metrics file (the
    report stage does not, so it has no recorded time; it takes seconds)."""
    dvc = root / "dvc.yaml"
    stages = (yaml.safe_load(dvc.read_text()) or {}).get("stages", {}) if dvc.exists() else {}
    names = [(n, bool((st or {}).get("metrics"))) for n, st in stages.items()]
    extra = (
        sorted(
            d.name
            for d in (root / "results").glob("*")
            if d.is_dir() and not d.name.startswith(".") and d.name not in stages and d.name != "report"
        )
        if (root / "results").is_dir()
        else []
    )
    return names + [(n, True) for n in extra]


def _fmt(s) -> str:
    return "\u2014" if s is None else (f"{s:.1f}" if s < 600 else f"{s:.0f} ({s / 60:.1f} min)")


def main(argv=None) -> int:
    from poolrep import paths

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(paths.ROOT), help="repository root (default: this checkout)")
    a = ap.parse_args(argv)
    root = Path(a.root)
    lock = {}
    if (root / "dvc.lock").exists():
        lock = (yaml.safe_load((root / "dvc.lock").read_text()) or {}).get("stages", {})
    rows, total, profiles, missing = [], 0.0, set(), []
    for name, records in stage_names(root):
        m, wall, dur, profile, started = root / "results" / name / "run.json", None, None, "\u2014", "\u2014"
        if m.exists():
            try:
                run = json.loads(m.read_text())
            except ValueError:
                run = {}
            wall, profile, started = run.get("wall_time_s"), run.get("profile", "\u2014"), run.get("started", "\u2014")
            dur = run.get("notebook_s")
            if run.get("profile"):
                profiles.add(run["profile"])
        used = dur if isinstance(dur, (int, float)) else wall if isinstance(wall, (int, float)) else None
        if used is None and records:
            missing.append(name)
        elif used is None:
            profile = "(records no time)"
        if used is not None:
            total += used
        rows.append([name, profile, started, _fmt(wall), _fmt(dur), _fmt(used), "yes" if name in lock else "no"])
    rows.append(["TOTAL", ", ".join(sorted(profiles)) or "\u2014", "", "", "", _fmt(total), ""])
    print(
        table(
            rows,
            ["stage", "profile", "started", "own wall s", "notebook s", "counted s", "in dvc.lock"],
            title="Stage wall times (last recorded run of each stage)",
        )
    )
    print()
    verdict = "MET" if total <= TARGET_S and not missing else ("MISSED" if total > TARGET_S else "INCOMPLETE")
    print(
        f"total {total / 60:.1f} min vs target {TARGET_S // 60} min: {verdict}"
        + (f" by {(total - TARGET_S) / 60:.1f} min" if total > TARGET_S else "")
        + (f"; no time recorded for {', '.join(missing)}" if missing else "")
    )
    if len(profiles) > 1 or (profiles and profiles != {"cpu"}):
        print(f"warning: the recorded runs used profile(s) {', '.join(sorted(profiles))}; the target is for cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
