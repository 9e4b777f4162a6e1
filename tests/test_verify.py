"""``poolrep verify`` (issue 48, item 2): the comparison and drift table on hand-made metrics, results/hosts.md, the
scratch copy (the work tree's results untouched), and one real rerun of the pyramid stage on the smoke profile."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from poolrep import cli, paths, verify
from poolrep.data import available

HOST_A = {
    "cpu_model": "AMD EPYC 7B13",
    "cores": 2,
    "vector_extensions": ["avx2", "fma"],
    "torch_cpu_capability": "AVX2",
}
HOST_B = {
    "cpu_model": "Intel Xeon Platinum",
    "cores": 2,
    "vector_extensions": ["avx2", "fma", "avx512f"],
    "torch_cpu_capability": "AVX512",
}
METRICS = {"map": {"pairs": {"l5": 0.75, "pyramid1": 0.8}, "cifar10": [0.5, 0.25]}, "layer": "features.18", "n": 9}
CLAIMS = [{"id": "a", "status": "reproduced"}, {"id": "b", "status": "inconclusive"}]


def _moved(**changes) -> dict:
    m = copy.deepcopy(METRICS)
    for path, v in changes.items():
        node = m
        *head, last = path.split("__")
        for k in head:
            node = node[int(k)] if isinstance(node, list) else node[k]
        if isinstance(node, list):
            node[int(last)] = v
        else:
            node[last] = v
    return m


def _drift(rerun_metrics, rerun_claims=CLAIMS, rtol=1e-6, host_committed=HOST_A):
    return verify.Drift(
        "pyramid",
        "cpu",
        rtol,
        host_committed,
        HOST_B,
        verify.compare_metrics(METRICS, rerun_metrics, rtol),
        verify.compare_claims(CLAIMS, rerun_claims),
        commit="0123456789abcdef",
    )


def test_flatten_names_every_leaf():
    assert verify.flatten(METRICS) == {
        "map.pairs.l5": 0.75,
        "map.pairs.pyramid1": 0.8,
        "map.cifar10[0]": 0.5,
        "map.cifar10[1]": 0.25,
        "layer": "features.18",
        "n": 9,
    }


def test_identical():
    d = _drift(copy.deepcopy(METRICS))
    assert d.count(verify.IDENTICAL) == 6 and d.ok and not d.status_changes
    table = verify.drift_table(d)
    assert "6 identical, 0 within tolerance, 0 beyond tolerance" in table and table.endswith("verdict: same numbers")
    assert "| `" not in table  # no value rows


def test_within_tolerance_passes_and_is_listed():
    d = _drift(_moved(map__pairs__l5=0.75 * (1 + 4e-7)))
    assert d.count(verify.WITHIN) == 1 and d.count(verify.BEYOND) == 0 and d.ok
    table = verify.drift_table(d)
    assert "| `map.pairs.l5` | 0.75 | 0.7500003 | 4.00e-07 | within tolerance |" in table
    assert table.endswith("verdict: same numbers")


def test_beyond_tolerance_fails():
    d = _drift(_moved(map__cifar10__1=0.26, map__pairs__l5=0.75 * (1 + 4e-7)))
    assert d.count(verify.BEYOND) == 1 and not d.ok
    table = verify.drift_table(d)
    # beyond first, then within
    assert table.index("`map.cifar10[1]`") < table.index("`map.pairs.l5`")
    assert "| `map.cifar10[1]` | 0.25 | 0.26 | 3.85e-02 | beyond tolerance |" in table
    assert "verdict: DRIFT: 1 value(s) moved beyond verify_rtol 1e-06" in table
    # a looser tolerance lets it through
    assert _drift(_moved(map__cifar10__1=0.26), rtol=0.05).ok


def test_a_string_or_a_missing_key_is_beyond():
    d = _drift({**_moved(layer="features.17"), "extra": 1})
    del_rows = {r.key: r.verdict for r in d.values}
    assert del_rows["layer"] == verify.BEYOND and del_rows["extra"] == verify.BEYOND and not d.ok
    assert verify.classify(1, 1.0, 0) == verify.IDENTICAL
    assert verify.classify(float("nan"), float("nan"), 0) == verify.IDENTICAL
    assert verify.classify(True, 1, 1) == verify.BEYOND  # a bool is not a number
    assert verify.classify(0.0, 1e-12, 1e-6) == verify.BEYOND  # relative to the larger magnitude


def test_a_status_flip_fails_even_with_identical_values():
    flipped = [{"id": "a", "status": "not reproduced"}, {"id": "b", "status": "inconclusive"}]
    d = _drift(copy.deepcopy(METRICS), flipped)
    assert d.count(verify.BEYOND) == 0 and not d.ok
    table = verify.drift_table(d)
    assert "| `a` | reproduced | not reproduced |" in table
    assert "verdict: DRIFT: 1 claim status(es) changed" in table
    gone = _drift(copy.deepcopy(METRICS), CLAIMS[:1])  # a claim missing from the rerun is a change too
    assert [r.id for r in gone.status_changes] == ["b"]


def test_the_table_names_both_hosts_and_an_unknown_one():
    table = verify.drift_table(_drift(copy.deepcopy(METRICS)))
    assert "| committed results | AMD EPYC 7B13 (2 cores; avx2, fma) | AVX2 |" in table
    assert "| rerun | Intel Xeon Platinum (2 cores; avx2, fma, avx512f) | AVX512 |" in table
    old = verify.drift_table(_drift(copy.deepcopy(METRICS), host_committed=None))
    assert "| committed results | unknown (run.json predates host records) | unknown |" in old


def test_hosts_md_one_row_per_host_stage_and_profile(tmp_path):
    hosts = tmp_path / "results" / "hosts.md"
    verify.record(_drift(copy.deepcopy(METRICS)), hosts)
    rows = verify.read_hosts(hosts)
    assert len(rows) == 1 and rows[0]["host"].startswith("Intel Xeon Platinum") and rows[0]["stage"] == "pyramid"
    assert rows[0]["values identical"] == "yes" and rows[0]["statuses identical"] == "yes"
    assert rows[0]["compared with"] == "committed, AMD EPYC 7B13 (2 cores; avx2, fma)"
    # the same host again: its row is replaced, not repeated
    verify.record(_drift(_moved(map__cifar10__1=0.26)), hosts)
    rows = verify.read_hosts(hosts)
    assert len(rows) == 1 and rows[0]["values identical"] == "no" and rows[0]["beyond"] == "1"
    # a new host adds its row; another profile too
    other = _drift(copy.deepcopy(METRICS))
    other.host_rerun = HOST_A
    verify.record(other, hosts)
    smoke = _drift(copy.deepcopy(METRICS))
    smoke.profile = "smoke"
    verify.record(smoke, hosts)
    rows = verify.read_hosts(hosts)
    assert len(rows) == 3
    assert {(r["host"].split(" (")[0], r["profile"]) for r in rows} == {
        ("Intel Xeon Platinum", "cpu"),
        ("AMD EPYC 7B13", "cpu"),
        ("Intel Xeon Platinum", "smoke"),
    }
    assert not list(hosts.parent.glob(".hosts.md.*"))  # written atomically: no partial file left


def test_host_flips_json_keeps_each_status_flip_with_both_hosts(tmp_path):
    """Issue 48: a status that differs on another host is recorded (both hosts, statuses, values, commits); a new
    verification on that host replaces its entries; a profile run twice on one host is never recorded."""
    flips = tmp_path / "results" / "host_flips.json"
    committed = [{"id": "a", "status": "reproduced", "value": 1.5}, {"id": "b", "status": "inconclusive"}]
    rerun = [{"id": "a", "status": "inconclusive", "value": 0.25}, {"id": "b", "status": "inconclusive"}]
    d = _drift(copy.deepcopy(METRICS))
    d.statuses = verify.compare_claims(committed, rerun)
    d.commit_committed = "feedbeef00"
    entries = verify.record_flips(d, flips)
    assert entries == verify.read_flips(flips) and len(entries) == 1
    (f,) = entries
    assert (f["stage"], f["profile"], f["claim"]) == ("pyramid", "cpu", "a")
    assert f["committed"] == {
        "host": "AMD EPYC 7B13 (2 cores; avx2, fma)",
        "status": "reproduced",
        "value": 1.5,
        "commit": "feedbeef00",
    }
    assert f["rerun"]["status"] == "inconclusive" and f["rerun"]["value"] == 0.25
    assert f["rerun"]["host"].startswith("Intel Xeon Platinum") and f["rerun"]["commit"] == "0123456789abcdef"
    # another host's flip is added beside it
    other = _drift(copy.deepcopy(METRICS))
    other.statuses = verify.compare_claims(committed, rerun)
    other.host_rerun = {**HOST_B, "cpu_model": "Intel Xeon Gold"}
    assert len(verify.record_flips(other, flips)) == 2
    # the first host verified again with the same statuses: its entry goes, the other host's stays
    same = _drift(copy.deepcopy(METRICS))
    left = verify.record_flips(same, flips)
    assert [x["rerun"]["host"].split(" (")[0] for x in left] == ["Intel Xeon Gold"]
    # smoke, run twice on this host: not the ledger's, nothing recorded
    twice = _drift(copy.deepcopy(METRICS))
    twice.statuses, twice.baseline = verify.compare_claims(committed, rerun), "first rerun on this host (smoke)"
    assert verify.record_flips(twice, flips) == left
    assert not list(flips.parent.glob(".host_flips.json.*"))


def test_a_malformed_flips_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "host_flips.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="host_flips.json.*delete the file and rerun `poolrep verify`"):
        verify.read_flips(bad)


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("drift", [False, True])
def test_verify_reruns_in_a_scratch_copy_and_leaves_the_work_tree_alone(monkeypatch, tmp_path, capsys, drift):
    """The committed profile: one rerun in the copy, compared with the committed results (read only). The rerun is
    faked (the committed outputs copied, one value moved when ``drift``), the scratch mechanics are real."""
    stage = "pyramid"
    committed = paths.RESULTS / stage
    before = _tree_digest(committed)
    seen = []

    def fake(scratch, *args, log=print):
        seen.append((scratch, args))
        assert scratch != paths.ROOT and (scratch / "params.yaml").exists() and (scratch / "dvc.yaml").exists()
        if args[0] == "run":
            out = scratch / "results" / args[1]
            out.mkdir(parents=True)
            m = json.loads((committed / "metrics.json").read_text())
            if drift:
                m["map"]["video"]["l5"] += 0.01
            (out / "metrics.json").write_text(json.dumps(m))
            (out / "claims.json").write_text((committed / "claims.json").read_text())
            (out / "run.json").write_text(json.dumps({"host": HOST_B}))

    monkeypatch.setattr(verify, "poolrep", fake)
    hosts = tmp_path / "hosts.md"
    rc = cli.main(["verify", stage, "--hosts", str(hosts)])
    out = capsys.readouterr().out
    assert rc == (1 if drift else 0), out
    runs = [a for _, a in seen if a[0] == "run"]
    assert runs == [("run", stage, "--profile", verify.committed_profile(stage))]  # once: the committed profile
    scratch = seen[-1][0]
    assert not scratch.exists()  # removed afterwards
    assert _tree_digest(committed) == before  # the work tree's results only read
    assert "| rerun | Intel Xeon Platinum (2 cores; avx2, fma, avx512f) | AVX512 |" in out
    assert ("DRIFT: 1 value(s) moved" in out) == drift
    committed_host = json.loads((committed / "run.json").read_text()).get("host")
    if committed_host is None:
        assert f"| committed results | {verify.UNKNOWN_HOST} |" in out
    assert verify.read_hosts(hosts)[0]["beyond"] == ("1" if drift else "0")


def test_another_profile_runs_twice_against_its_own_baseline(monkeypatch, tmp_path, capsys):
    calls = []

    def fake(scratch, *args, log=print):
        calls.append(args)
        if args[0] == "run":
            out = scratch / "results" / args[1]
            if out.exists():  # the runner swaps the folder in
                import shutil

                shutil.rmtree(out)
            out.mkdir(parents=True)
            (out / "metrics.json").write_text(json.dumps({"x": 1.0, "run": {"profile": args[3]}}))
            (out / "claims.json").write_text(json.dumps(CLAIMS))
            (out / "run.json").write_text(json.dumps({"host": HOST_B}))
        else:
            (scratch / "cache").mkdir(exist_ok=True)

    monkeypatch.setattr(verify, "poolrep", fake)
    d = verify.verify("pyramid", profile="smoke")
    assert [c for c in calls if c[0] == "run"] == [("run", "pyramid", "--profile", "smoke")] * 2
    assert ("backbone", "--profile", "smoke") in calls  # the profile's own backbone cache, built in the copy
    assert d.ok and d.baseline == "first rerun on this host (smoke)" and d.host_committed == HOST_B


def test_verify_needs_a_stage():
    assert cli.main(["verify"]) == 2
    assert cli.main(["verify", "prepare"]) == 2  # not a `poolrep run` stage


@pytest.mark.slow
def test_poolrep_verify_pyramid_on_the_smoke_profile(tmp_path, capsys):
    """The real thing, as CI runs it: prepare, backbone and pyramid twice in a scratch copy (about 2.5 min here)."""
    if not all(available(n) for n in ("cifar10-jpeg", "videos", "pairs", "mobilenet_v2")):
        pytest.skip("no real data: set POOLREP_DATA_MIRROR (e.g. ../shared/datasets)")
    before = _tree_digest(paths.RESULTS / "pyramid")
    hosts = tmp_path / "hosts.md"
    rc = cli.main(["verify", "pyramid", "--profile", "smoke", "--hosts", str(hosts)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "beyond tolerance. claims.json:" in out and "0 status change(s)" in out
    row = verify.read_hosts(hosts)[0]
    assert (row["stage"], row["profile"], row["statuses identical"]) == ("pyramid", "smoke", "yes")
    assert _tree_digest(paths.RESULTS / "pyramid") == before
