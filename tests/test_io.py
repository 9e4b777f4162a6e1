"""Atomic writes and the table/figure/metrics helpers."""

from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from poolrep import io


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_files_get_normal_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        p = io.write_text(tmp_path / "b.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_table_csv_and_markdown(tmp_path):
    df = io.paper_vs_ours(
        [{"method": "AP K=400", "paper": 64.6, "ours": 60.1}, {"method": "SP 2x2", "paper": None, "ours": 55.0}]
    )
    assert list(df.columns) == ["method", "paper", "ours", "diff"]
    assert df["diff"].iloc[0] == pytest.approx(-4.5)
    assert math.isnan(df["diff"].iloc[1])
    io.save_table(df, tmp_path, "t1", title="Table 1", note="substitute: CIFAR-10 JPEG")
    back = pd.read_csv(tmp_path / "tables" / "t1.csv")
    assert back["ours"].tolist() == [60.1, 55.0]
    md = (tmp_path / "tables" / "t1.md").read_text()
    assert md.startswith("### Table 1") and "| AP K=400 |" in md and "substitute: CIFAR-10 JPEG" in md
    with pytest.raises(ValueError, match="every row needs 'paper'"):
        io.paper_vs_ours([{"method": "x", "ours": 1}])


def test_metrics_json_is_strict_and_stamps_go_to_run_json(tmp_path):
    run = {
        "stage": "x",
        "profile": "cpu",
        "seed": 0,
        "started": "2026-12-01T10:00:00",
        "wall_time_s": 3.5,
        "timings_s": {"a": 1.25},
    }
    io.save_metrics(
        tmp_path, {"acc": np.float32(0.5), "n": np.int64(3), "bad": float("nan"), "arr": np.arange(2)}, run=run
    )
    doc = json.loads((tmp_path / "metrics.json").read_text())
    # the numbers and the run's identity only: a rerun computing the same numbers writes the same bytes
    assert doc == {"acc": 0.5, "n": 3, "bad": None, "arr": [0, 1], "run": {"stage": "x", "profile": "cpu", "seed": 0}}
    assert json.loads((tmp_path / "run.json").read_text()) == run


def test_metrics_keys_become_slugs_intervals_numbers_claims_their_own_file(tmp_path):
    io.save_metrics(
        tmp_path,
        {
            "SP 1x1+2x2 full": 61.5,
            "lambda=0.3": {"cost": 2},
            "GeM p=3": {"cifar10_probe_acc": 74.1, "cifar10_probe_acc 95% CI": "[71.4, 76.9]", "ci": [0.25, 0.5]},
            "curve": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}],
            "claims": [{"id": "a", "status": "reproduced"}],
        },
    )
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc == {
        "sp_1x1_plus_2x2_full": 61.5,
        "lambda_0_3": {"cost": 2},
        "gem_p_3": {
            "cifar10_probe_acc": 74.1,
            "cifar10_probe_acc_ci": {"lo": 71.4, "hi": 76.9},
            "ci": {"lo": 0.25, "hi": 0.5},
        },
        "curve": {"0": {"step": 1, "loss": 2.0}, "1": {"step": 2, "loss": 1.5}},
    }
    assert json.loads((tmp_path / "claims.json").read_text()) == [{"id": "a", "status": "reproduced"}]
    # two display names with one slug: an error naming both, nothing written
    with pytest.raises(ValueError, match="'AP - SP' and 'AP SP'.*'ap_sp'"):
        io.save_metrics(tmp_path / "x", {"AP - SP": 1, "AP SP": 2})
    assert not (tmp_path / "x" / "metrics.json").exists()
    assert io.slug("entropy (log C - H, normalised)") == "entropy_log_c_h_normalised"
    with pytest.raises(ValueError, match="no letters or digits"):
        io.slug(" - ")


def test_markdown_tables_leave_missing_numbers_empty(tmp_path):
    io.save_table(io.paper_vs_ours([{"method": "a", "paper": None, "ours": 1.5}]), tmp_path, "t")
    md = (tmp_path / "tables" / "t.md").read_text()
    assert "nan" not in md.lower() and "| a        |         |    1.5 |        |" in md


def test_figure_png(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    p = io.save_figure(fig, tmp_path, "f")
    plt.close(fig)
    assert Image.open(p).format == "PNG"


def test_save_npz_is_byte_repeatable_and_loads(tmp_path):
    """Two writes of equal arrays give equal bytes (DVC hashes bytes: np.savez's time stamps made every rebuilt
    cache look new), and np.load reads them back exactly; a different array gives different bytes."""
    import hashlib
    import time

    from poolrep.io import save_npz

    a = {"x": np.arange(12, dtype=np.float16).reshape(3, 4), "name": np.array("features.18"), "y": np.array([1, 2])}
    f1 = save_npz(tmp_path / "a.npz", **a)
    time.sleep(2.1)  # the zip stamp has 2-second resolution: a stamp from the clock would differ now
    f2 = save_npz(tmp_path / "b.npz", **a)
    h = [hashlib.md5(f.read_bytes()).hexdigest() for f in (f1, f2)]
    assert h[0] == h[1]
    z = np.load(f1, allow_pickle=False)
    assert list(z.files) == ["x", "name", "y"]
    np.testing.assert_array_equal(z["x"], a["x"])
    assert z["x"].dtype == np.float16 and str(z["name"]) == "features.18"
    f3 = save_npz(tmp_path / "c.npz", **dict(a, y=np.array([1, 3])))
    assert hashlib.md5(f3.read_bytes()).hexdigest() != h[0]
    assert not list(tmp_path.glob("*.partial*"))  # written atomically: no temporary left behind
