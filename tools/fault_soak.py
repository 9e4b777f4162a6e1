"""Randomized fault soak of ``dvc repro`` (issue 48): ``python tools/fault_soak.py [--kills N] [--seed S] [--out PATH]``.

In a scratch copy of this repository (built as ``tests/test_pipeline.py`` builds its copy: the working tree's files
without ``results/``, ``cache/``, ``data/``, no ``dvc.lock``, ``core.no_scm``; ``profile: smoke``) it

1. runs ``poolrep fetch --all-offline``, ``dvc commit -f data.dvc`` and ``dvc repro``: the baseline, a SHA-256 of
   every file of every output dvc.yaml lists (``--repo DIR`` takes an already-reproduced copy instead);
2. times one full ``dvc repro -f`` (``--duration S`` skips it), which must leave ``dvc status`` clean and give the
   baseline's ``metrics.json`` and ``claims.json`` byte for byte, or the soak cannot judge anything; the other
   files it changed (``run.json``: timings, commit; the notebooks' stderr; the report pages) are listed;
3. draws N instants uniformly in ``[0, duration]`` and for each a signal among SIGKILL, SIGTERM and SIGINT (one
   ``random.Random(seed)``); for each instant it starts ``dvc repro -f`` in a new process group, sends the signal
   to the whole group at that instant, waits for dvc to exit (SIGKILL after ``--grace`` s) and for every process
   that was below dvc (the Jupyter kernel runs in a session of its own) to go (SIGKILL, by pid, after 60 s: a
   *straggler*), then checks
   - *outputs*: every file of every output is byte-identical to the baseline (*kept*), or its stage is listed
     changed by ``dvc status`` (*flagged*), or, not a numbers file, its stage is not listed, so ``dvc.lock``
     records this very content of a rerun that finished (*recorded*: executed notebooks, ``run.json`` and the
     report differ between uninterrupted runs too); anything else is *lost*;
   - *half-written*: ``dvc.lock`` parses (else it is DVC's own in-place write, cut short: reported apart, and
     ``tools/lockguard.py`` restores it before the recovery, as ``make repro`` does); every ``results/<stage>/{metrics,claims,run}.json`` and
     ``manifests/*.json`` parses; no temporary file of ``io.atomic_path`` (``.<name>.<random>.partial<ext>``) is
     left in ``results/``, ``cache/`` or ``manifests/``, outside the runner's git-ignored ``results/.staging/``
     and ``results/.failed/`` (what is left there is reported; the stage's next run removes its staging folder);
   - *recovery*: ``tools/lockguard.py`` and a plain ``dvc repro`` (what ``make repro`` runs) then exit 0, ``dvc status`` lists no changed stage, nothing is
     half-written, and every ``metrics.json`` and ``claims.json`` equals the baseline's byte for byte.

Every ``dvc repro`` has a time limit (``--timeout``), after which its process group and every process below it
are killed; the tool kills them too when it is itself stopped. The table (instant, signal, the stage running at
the kill as dvc's log tells it, how dvc ended, the outputs, half-written files, the recovery) is printed and written
to ``--out`` (default ``benchmarks/fault_soak.md``); the exit status is 0 only if every kill recovered with no lost
or half-written output. The scratch copy is removed unless ``--keep``. ``tests/test_fault_soak.py`` runs three
kills (slow) and tests the helpers below.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT")
NUMBERS = ("metrics.json", "claims.json")  # what a recovery must reproduce byte for byte
RUN_JSONS = ("metrics.json", "claims.json", "run.json")  # every results/<stage>/ one that exists must parse
RUNNER_DIRS = (".staging", ".failed")  # runner.py's git-ignored folders under results/
PARTIAL = re.compile(r"^\..+\.partial(\.[^.]*)?$")  # io.atomic_path's temporary names
LITTER_DIRS = ("results", "cache", "manifests")
GRACE_STRAGGLERS = 60.0


# ---------------------------------------------------------------------------------------------------------------
# pure helpers (tests/test_fault_soak.py)


def draw_kills(n: int, duration: float, seed: int) -> list[tuple[float, str]]:
    """N (instant in seconds, signal name) pairs: instants uniform in [0, duration] rounded to 0.1 s, signals
    uniform among SIGKILL, SIGTERM, SIGINT; the same for the same seed."""
    rng = random.Random(seed)
    return [(round(rng.uniform(0.0, duration), 1), rng.choice(SIGNALS)) for _ in range(n)]


def stage_outputs(dvc_yaml: dict) -> dict[str, list[str]]:
    """Stage -> the paths of its outputs (``outs``, ``metrics``, ``plots``) as dvc.yaml lists them."""
    out = {}
    for name, st in (dvc_yaml.get("stages") or {}).items():
        paths = []
        for key in ("outs", "metrics", "plots"):
            for entry in st.get(key) or []:
                paths.append(entry if isinstance(entry, str) else next(iter(entry)))
        out[name] = paths
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(repo: Path, outputs: Iterable[str]) -> dict[str, str | None]:
    """Every file of every output (a folder: each file in it) -> its SHA-256; a missing output -> None."""
    snap: dict[str, str | None] = {}
    for rel in outputs:
        p = repo / rel
        if p.is_file():
            snap[rel] = sha256(p)
        elif p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            for f in files:
                snap[f.relative_to(repo).as_posix()] = sha256(f)
            if not files:
                snap[rel] = None
        else:
            snap[rel] = None
    return snap


def compare(before: dict[str, str | None], after: dict[str, str | None]) -> dict[str, str]:
    """The files that differ: path -> ``changed``, ``missing`` (gone, or an output gone) or ``new``."""
    diff = {}
    for rel in sorted(set(before) | set(after)):
        a, b = before.get(rel), after.get(rel)
        if a == b:
            continue
        diff[rel] = "missing" if b is None else "new" if a is None else "changed"
    return diff


def owner(rel: str, outputs: dict[str, list[str]]) -> str | None:
    """The stage whose output holds the file ``rel``."""
    for stage, outs in outputs.items():
        for o in outs:
            if rel == o or rel.startswith(o.rstrip("/") + "/"):
                return stage
    return None


def json_problems(repo: Path) -> list[str]:
    """What does not parse: ``dvc.lock`` (YAML), every ``results/<stage>/{metrics,claims,run}.json`` that exists
    and every ``manifests/*.json`` (a truncated file reads as one of these)."""
    bad = []
    lock = repo / "dvc.lock"
    if lock.exists():
        try:
            if not isinstance(yaml.safe_load(lock.read_text()), dict):
                bad.append("dvc.lock (not a mapping)")
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            bad.append(f"dvc.lock ({type(e).__name__})")
    files = [
        d / n
        for d in sorted((repo / "results").glob("*"))
        if d.is_dir() and not d.name.startswith(".")
        for n in RUN_JSONS
    ]
    files += sorted((repo / "manifests").glob("*.json"))
    for f in files:
        if f.is_file():
            try:
                json.loads(f.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                bad.append(f"{f.relative_to(repo).as_posix()} ({type(e).__name__})")
    return bad


def litter(repo: Path) -> list[str]:
    """Temporary files of ``io.atomic_path`` left in results/, cache/ or manifests/, outside the runner's
    git-ignored results/.staging/ and results/.failed/."""
    found = []
    for top in LITTER_DIRS:
        base = repo / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            if Path(dirpath) == repo / "results":
                dirnames[:] = [d for d in dirnames if d not in RUNNER_DIRS]
            found += [(Path(dirpath) / f).relative_to(repo).as_posix() for f in filenames if PARTIAL.match(f)]
    return sorted(found)


def runner_leftovers(repo: Path) -> list[str]:
    """What a run left in results/.staging/ (other than the empty ``<stage>.lock`` files) and results/.failed/."""
    left = []
    for d in RUNNER_DIRS:
        base = repo / "results" / d
        if base.is_dir():
            left += [f"{d}/{p.name}" for p in sorted(base.iterdir()) if not (d == ".staging" and p.suffix == ".lock")]
    return left


def stage_at(log: str) -> str:
    """The stage dvc was running according to its log: the last ``Running stage 'X'``; ``X (lock update)`` when
    dvc wrote dvc.lock after it; ``start-up`` before the first stage."""
    runs = list(re.finditer(r"Running stage '([^']+)'", log))
    if not runs:
        return "start-up"
    last = runs[-1]
    return last.group(1) + (" (lock update)" if "Updating lock file" in log[last.end() :] else "")


def stages_run(log: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", log)


def changed_stages(status: dict) -> list[str]:
    """The stages ``dvc status --json`` lists for anything but ``always changed``."""
    return sorted(k for k, v in status.items() if [x for x in (v or []) if x != "always changed"])


# ---------------------------------------------------------------------------------------------------------------
# processes


class Stopped(BaseException):
    """The soak itself got SIGTERM/SIGHUP."""


@dataclass
class Run:
    """One ``dvc ...`` in a new process group (pgid = its pid), logging to ``log``."""

    args: list[str]
    repo: Path
    env: dict
    log: Path
    proc: subprocess.Popen | None = None
    t0: float = 0.0
    tree: dict = field(default_factory=dict)  # pid -> psutil.Process seen below dvc

    def start(self) -> Run:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as fh:
            self.t0 = time.monotonic()
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.repo,
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # a background job inherits SIGINT ignored; dvc in a terminal has the default (Ctrl-C)
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )
        LIVE.append(self)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def watch(self) -> None:
        """Remember every process now below dvc (children of children too)."""
        import psutil

        roots = [self.proc.pid, *self.tree]
        for pid in roots:
            try:
                p = self.tree.get(pid) or psutil.Process(pid)
                for c in p.children(recursive=True):
                    self.tree.setdefault(c.pid, c)
            except psutil.Error:
                pass

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if still running after ``timeout`` s (processes below it are watched)."""
        end = time.monotonic() + timeout
        while True:
            self.watch()
            try:
                return self.proc.wait(timeout=max(0.0, min(1.0, end - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= end:
                    return None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def reap(self) -> tuple[int, float]:
        """SIGKILL to the group if dvc still runs; then wait up to 60 s for every process seen below dvc (they may be
        cleaning up after a SIGTERM or SIGINT) and kill the rest by pid. Returns (how many had to be killed that way,
        the stragglers; seconds until the last process was gone)."""
        import psutil

        if self.proc.poll() is None:
            self.signal_group(signal.SIGKILL)
            self.proc.wait()
        t0 = time.monotonic()
        end = t0 + GRACE_STRAGGLERS
        alive = []
        while True:
            for p in list(self.tree.values()):
                try:
                    for c in p.children(recursive=True):
                        self.tree.setdefault(c.pid, c)
                except psutil.Error:
                    pass
            for p in marked(str(self.repo)):  # orphans that left the tree unseen: this copy's POOLREP_ROOT
                self.tree.setdefault(p.pid, p)
            alive = [p for p in self.tree.values() if _running(p)]
            if not alive or time.monotonic() >= end:
                break
            time.sleep(0.5)
        for p in alive:
            try:
                p.kill()  # psutil checks the pid still names the same process
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=10)
        if self in LIVE:
            LIVE.remove(self)
        return len(alive), time.monotonic() - t0


def _running(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def marked(root: str) -> list:
    """The processes (of this user, not this one) whose environment has ``POOLREP_ROOT=root``: everything the soak
    started in its scratch copy, and nothing else."""
    import psutil

    found = []
    for p in psutil.process_iter():
        try:
            if p.pid != os.getpid() and p.uids().real == os.getuid() and p.environ().get("POOLREP_ROOT") == root:
                found.append(p)
        except psutil.Error:
            pass
    return found


LIVE: list[Run] = []


def _on_signal(signum, frame):
    raise Stopped(f"stopped by signal {signum}")


def run_to_end(args, repo, env, log, timeout) -> tuple[int | None, float, str]:
    """Run to the end within ``timeout`` s: (exit status or None on timeout, seconds, log text)."""
    r = Run(list(args), repo, env, log).start()
    rc = r.wait(timeout)
    secs = time.monotonic() - r.t0
    r.reap()  # on a timeout: SIGKILL to the group, then whatever is left below it
    return rc, secs, r.text()


# ---------------------------------------------------------------------------------------------------------------
# the scratch copy


def make_copy(dest: Path, source: Path = ROOT, head: bool = False) -> Path:
    """The working tree's files (tracked, and new ones git does not ignore; ``head``: the last commit's) without
    results/, cache/, data/ and scratch/, no dvc.lock, DVC without git, profile smoke."""
    dest.mkdir(parents=True)
    if head:
        tar = subprocess.run(["git", "archive", "HEAD"], cwd=source, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
        for top in ("results", "cache", "data", "scratch"):
            shutil.rmtree(dest / top, ignore_errors=True)
    else:
        from poolrep.verify import copy_tree

        copy_tree(source, dest, link_data=False)  # the soak fetches its own data/ (it commits data.dvc)
    (dest / ".dvc").mkdir(exist_ok=True)
    (dest / ".dvc" / "config.local").write_text("[core]\n    no_scm = true\n")
    (dest / "dvc.lock").unlink(missing_ok=True)
    params = dest / "params.yaml"
    text, n = re.subn(r"(?m)^profile:[^\n#]*", "profile: smoke ", params.read_text(), count=1)
    if n != 1:
        raise SystemExit(f"{params}: no top-level `profile:` line")
    params.write_text(text)
    return dest


def soak_env(repo: Path, mirror: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("POOLREP_DATA_DIR", "PYTHONPATH")}
    mirror = mirror or os.environ.get("POOLREP_DATA_MIRROR") or str(ROOT.parent / "shared" / "datasets")
    env.update(
        POOLREP_ROOT=str(repo),
        PYTHONPATH=str(repo / "src"),  # the copy's package, in dvc's stages and in the notebooks' kernel
        POOLREP_DATA_MIRROR=mirror,
        POOLREP_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return env


def dvc_status(repo: Path, env: dict) -> tuple[list[str] | None, str]:
    """(changed stages, or None if ``dvc status`` failed; its error text)."""
    r = subprocess.run(
        [str(BIN / "dvc"), "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    try:
        return changed_stages(json.loads(r.stdout or "{}")), ""
    except json.JSONDecodeError:
        lines = (r.stderr or r.stdout).strip().splitlines() or [f"rc {r.returncode}"]
        return None, lines[-1][:200]


# ---------------------------------------------------------------------------------------------------------------
# one kill


@dataclass
class Row:
    n: int
    instant: float
    sig: str
    stage: str = ""
    ended: str = ""
    outputs: str = ""
    half: str = ""
    recovery: str = ""
    ok: bool = False


def judge_outputs(repo, env, outputs, baseline) -> tuple[str, list[str]]:
    """The outputs column and the problems (lost files)."""
    changed, err = dvc_status(repo, env)
    snap = snapshot(repo, [o for outs in outputs.values() for o in outs])
    diff = compare(baseline, snap)
    kept = sum(1 for k in snap if k not in diff)
    flagged, recorded, lost = {}, [], []
    for rel, how in diff.items():
        st = owner(rel, outputs)
        if changed is not None and st in changed:
            flagged.setdefault(st, []).append(rel)
        elif changed is not None and how == "changed" and Path(rel).name not in NUMBERS:
            # its stage is not listed changed, so dvc.lock records this very content: a rerun that finished and was
            # recorded. Executed notebooks, run.json and the report pages differ between uninterrupted runs too
            # (timings, progress-bar padding in stderr); the numbers (metrics.json, claims.json) never may
            recorded.append(rel)
        else:
            lost.append(f"{rel} ({how})")
    parts = [f"kept {kept}"]
    if flagged:
        parts.append("flagged: " + ", ".join(f"{s} ({len(v)})" for s, v in sorted(flagged.items())))
    if recorded:
        parts.append(f"recorded reruns: {len(recorded)} (" + ", ".join(sorted({Path(r).name for r in recorded})) + ")")
    if changed is None:
        parts.append(f"`dvc status` failed: {err}")
        lost.insert(0, "dvc status failed")
    elif changed and not flagged:
        parts.append("status lists: " + ", ".join(changed))
    if lost:
        parts.append("**LOST**: " + ", ".join(lost[:5]) + (f" (+{len(lost) - 5})" if len(lost) > 5 else ""))
    return "; ".join(parts), lost


DVC_LOCK_NOTE = "dvc.lock half-written by DVC's own in-place write (tools/lockguard.py restores it)"


def half_written(repo) -> tuple[str, list[str]]:
    """What was left half-written: our outputs (results, manifests, caches: a failure) and, apart, ``dvc.lock``,
    which DVC rewrites in place after each stage, so a SIGKILL at that instant truncates it; the project cannot make
    DVC's write atomic, so ``tools/lockguard.py`` (run by ``make repro``, and by :func:`recover`) restores the last
    good copy. Returns the cell's text and our half-written files."""
    found = json_problems(repo)
    lock = [b for b in found if b.startswith("dvc.lock")]
    bad = [b for b in found if not b.startswith("dvc.lock")] + [f"{p} (partial)" for p in litter(repo)]
    left = runner_leftovers(repo)
    text = "**" + ", ".join(bad) + "**" if bad else "none of ours"
    if lock:
        text += f"; {DVC_LOCK_NOTE}: {lock[0]}"
    if left:
        text += "; runner left " + ", ".join(left) + " (git-ignored)"
    return text, bad


def one_kill(row: Row, repo, env, logs, outputs, baseline, timeout, grace) -> Row:
    """One kill, its checks and its recovery. ``baseline``: the soak's reference numbers; the outputs are judged
    against what they were just before this kill (what dvc.lock records then)."""
    before = snapshot(repo, [o for outs in outputs.values() for o in outs])
    r = Run([str(BIN / "dvc"), "repro", "-f"], repo, env, logs / f"kill{row.n:02d}.log").start()
    rc = r.wait(row.instant)
    if rc is not None:
        row.stage, row.ended = "(finished)", f"finished before the kill (rc {rc})"
        r.reap()
    else:
        row.stage = stage_at(r.text())
        t_sig = time.monotonic()
        r.watch()
        r.signal_group(getattr(signal, row.sig))
        rc = r.wait(grace)
        if rc is None:
            row.ended = f"still running after {grace:.0f} s: SIGKILL"
        else:
            row.ended = f"rc {rc} after {time.monotonic() - t_sig:.1f} s"
        stragglers, gone = r.reap()
        row.ended += (
            f"; {stragglers} straggler(s) killed after 60 s" if stragglers else f"; all below it gone in {gone:.1f} s"
        )
    row.outputs, lost = judge_outputs(repo, env, outputs, before)
    row.half, bad = half_written(repo)
    row.recovery, rec_ok = recover(repo, env, logs / f"recover{row.n:02d}.log", outputs, baseline, timeout)
    row.ok = rec_ok and not lost and not bad
    return row


def recover(repo, env, log, outputs, baseline, timeout) -> tuple[str, bool]:
    """What ``make repro`` does after a fault: ``tools/lockguard.py`` (a dvc.lock that DVC left half-written is
    replaced by the last good copy), then a plain ``dvc repro``; the numbers must equal the baseline's."""
    g = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lockguard.py"), "--root", str(repo)], capture_output=True, text=True
    )
    guard = g.stdout.strip()
    restored = "restored" in guard or "removed" in guard
    rc, secs, text = run_to_end([str(BIN / "dvc"), "repro"], repo, env, log, timeout)
    problems = [] if g.returncode == 0 else [f"lockguard failed: {g.stderr.strip()[:200]}"]
    if rc is None:
        problems.append(f"timed out after {timeout:.0f} s")
    elif rc != 0:
        tail = [x for x in text.strip().splitlines() if x.strip()][-1:] or [""]
        problems.append(f"rc {rc}: {tail[0][:200]}")
    changed, err = dvc_status(repo, env)
    if changed is None:
        problems.append(f"dvc status failed: {err}")
    elif changed:
        problems.append("still changed: " + ", ".join(changed))
    _, bad = half_written(repo)
    problems += bad
    nums = [o for outs in outputs.values() for o in outs if Path(o).name in NUMBERS]
    moved = compare({k: v for k, v in baseline.items() if k in nums}, snapshot(repo, nums))
    problems += [f"{k} {v}" for k, v in moved.items()]
    ran = ", ".join(s for s in stages_run(text)) or "nothing"
    lock = "; lockguard restored dvc.lock" if restored else ""
    if problems:
        return f"**FAIL**: {'; '.join(problems)} (reran {ran}; {secs:.0f} s{lock})", False
    return f"OK (reran {ran}; {secs:.0f} s{lock})", True


# ---------------------------------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    lines = [
        "| # | instant (s) | signal | stage at the kill | dvc | outputs after the kill | half-written | recovery |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [str(r.n), f"{r.instant:.1f}", r.sig, r.stage, r.ended, r.outputs, r.half, r.recovery]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def report(args, header: list[str], rows: list[Row], note: str = "") -> str:
    ok = sum(r.ok for r in rows)
    lines = [
        "# Randomized fault soak of `dvc repro` (smoke profile)",
        "",
        f"Written by `python tools/fault_soak.py {' '.join(sys.argv[1:])}`".rstrip() + ".",
        "",
        *[f"- {h}" for h in header],
        f"- **{ok} of {len(rows)} kills recovered with no lost or half-written output of ours**"
        + (f" ({note})" if note else ""),
        f"- dvc.lock half-written by DVC (killed during its in-place write) after {sum(DVC_LOCK_NOTE in r.half for r in rows)}"
        " kill(s); tools/lockguard.py restored it before the next `dvc repro`, as `make repro` does",
        "",
        table(rows),
        "",
        "Outputs, against what they were just before the kill: *kept* = files byte-identical; *flagged* = files of stages `dvc status` lists as "
        "changed (the next `dvc repro` reruns them); *recorded reruns* = files other than the numbers "
        "of stages that finished and that dvc recorded in dvc.lock (notebooks, run.json, report pages also differ between "
        "uninterrupted runs); **LOST** = anything else. dvc: "
        "its exit status after the signal (-N: killed by signal N) and how long the processes below it (the stage's "
        "command; the notebook's kernel, in a session of its own) took to go. Half-written: `dvc.lock`, "
        "`results/*/{metrics,claims,run}.json` and `manifests/*.json` that do not parse, and `io.atomic_path` "
        "temporary files left outside the runner's git-ignored `results/.staging/` and `results/.failed/`. Recovery: "
        "a plain `dvc repro` exits 0, `dvc status` is clean, and every `metrics.json` and `claims.json` equals the "
        "baseline's byte for byte.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="number of kills (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the instants and signals (default 0)")
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "fault_soak.md",
        help="the Markdown table (default benchmarks/fault_soak.md)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (copy and logs)")
    ap.add_argument("--repo", type=Path, help="an already-reproduced smoke copy to use (and keep) instead")
    ap.add_argument("--workdir", type=Path, help="where to make the scratch folder (default: the system temp)")
    ap.add_argument("--head", action="store_true", help="copy the last commit instead of the working tree")
    ap.add_argument("--mirror", help="data mirror (default $POOLREP_DATA_MIRROR or ../shared/datasets)")
    ap.add_argument(
        "--duration",
        type=float,
        help="seconds of one full `dvc repro -f` (skips timing it)",
    )
    ap.add_argument("--timeout", type=float, default=3600.0, help="limit of each dvc repro, s (default 3600)")
    ap.add_argument("--grace", type=float, default=300.0, help="wait for dvc after the signal, s (default 300)")
    args = ap.parse_args(argv)
    if args.kills < 1:
        ap.error("--kills must be at least 1")

    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    scratch = None
    if args.repo:
        repo = args.repo.resolve()
        logs = repo.parent / f"{repo.name}-soak-logs"
    else:
        scratch = Path(tempfile.mkdtemp(prefix="fault_soak-", dir=args.workdir))
        repo, logs = scratch / "repo", scratch / "logs"
    print(f"[soak] scratch copy {repo}; logs {logs}", flush=True)
    rows: list[Row] = []
    header: list[str] = []
    try:
        t_start = time.monotonic()
        env = soak_env(repo, args.mirror)
        dvc = str(BIN / "dvc")
        if scratch:
            make_copy(repo, head=args.head)
            for cmd in ([str(BIN / "poolrep"), "fetch", "--all-offline"], [dvc, "commit", "-q", "-f", "data.dvc"]):
                rc, _, text = run_to_end(cmd, repo, env, logs / f"setup-{cmd[1]}.log", args.timeout)
                if rc != 0:
                    raise SystemExit(f"[soak] {' '.join(cmd[1:])} failed (rc {rc}):\n{text[-3000:]}")
        outputs = stage_outputs(yaml.safe_load((repo / "dvc.yaml").read_text()))
        all_outs = [o for outs in outputs.values() for o in outs]
        changed, err = dvc_status(repo, env) if (repo / "dvc.lock").exists() else (["all"], "")
        if changed != []:
            print("[soak] baseline: dvc repro", flush=True)
            rc, secs, text = run_to_end([dvc, "repro"], repo, env, logs / "baseline.log", args.timeout)
            if rc != 0:
                raise SystemExit(f"[soak] the baseline dvc repro failed (rc {rc}):\n{text[-3000:]}")
            header.append(f"baseline: `dvc repro` in the scratch copy, {secs:.0f} s")
        baseline = snapshot(repo, all_outs)
        if bad := half_written(repo)[1] or [k for k, v in baseline.items() if v is None]:
            raise SystemExit(f"[soak] the baseline is incomplete: {bad}")
        for rel in baseline:  # kept beside the logs, to diff what a rerun changed
            (logs / "baseline" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, logs / "baseline" / rel)
        if args.duration:
            duration = args.duration
            header.append(f"duration of one full `dvc repro -f`: {duration:.0f} s (given)")
        else:
            print("[soak] timing one full dvc repro -f", flush=True)
            rc, duration, _ = run_to_end([dvc, "repro", "-f"], repo, env, logs / "forced.log", args.timeout)
            if rc != 0:
                raise SystemExit(f"[soak] the timed dvc repro -f failed (rc {rc})")
            changed, err = dvc_status(repo, env)
            diff = compare(baseline, snapshot(repo, all_outs))
            moved = [k for k in diff if Path(k).name in NUMBERS]
            if changed or moved:
                raise SystemExit(
                    f"[soak] a forced rerun does not reproduce the baseline (status: {changed or err}; "
                    f"numbers moved: {moved}): the soak cannot judge outputs"
                )
            header.append(
                f"duration of one full `dvc repro -f` (measured): {duration:.0f} s; it changed {len(diff)} "
                f"file(s) besides the numbers: {', '.join(sorted(diff)) or 'none'}"
            )
        kills = draw_kills(args.kills, duration, args.seed)
        header.append(f"seed {args.seed}: instants (s) and signals " + ", ".join(f"{t:.1f} {s}" for t, s in kills))
        header.append(
            f"host: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; "
            f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
        )
        print("[soak] " + header[-2], flush=True)
        for i, (instant, sig) in enumerate(kills, 1):
            row = one_kill(Row(i, instant, sig), repo, env, logs, outputs, baseline, args.timeout, args.grace)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            if row.recovery.startswith("**FAIL**"):
                header.append(f"stopped after kill {i}: its recovery failed, the next kills could not be judged")
                break
        header.append(f"soak wall time {time.monotonic() - t_start:.0f} s")
    except (Stopped, KeyboardInterrupt) as e:
        header.append(f"interrupted ({e or 'SIGINT'}) after {len(rows)} kill(s)")
    finally:
        for r in list(LIVE):
            r.reap()
        if scratch and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        elif scratch:
            print(f"[soak] kept {scratch}", flush=True)
    text = report(args, header, rows)
    print(text)
    if rows:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"[soak] wrote {args.out}")
    return 0 if rows and len(rows) == args.kills and all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
