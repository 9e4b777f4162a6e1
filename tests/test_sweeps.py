"""Reading a DVC sweep back: ``dvc exp show --json`` (DVC 3 layout) -> one row per experiment."""

from poolrep.sweeps import parse_exp_show, varying


def _entry(rev, name, lam, acc):
    return {
        "rev": rev,
        "name": name,
        "data": {
            "params": {
                "params.yaml": {"data": {"profile": "cpu", "autopool": {"lam": lam, "ks": [1, 2], "smoke": {"lam": 0}}}}
            },
            "metrics": {"results/autopool/metrics.json": {"data": {"acc": {"k400": acc}, "run": {"seed": 0}}}},
        },
    }


def test_parse_exp_show_flattens_params_and_metrics():
    doc = [
        {**_entry("workspace", None, 0.1, 0.5), "experiments": None},
        {
            **_entry("abc1234def", "main", 0.1, 0.5),
            "experiments": [
                {"name": "exp-1", "revs": [_entry("fff0001", "exp-1", 0.5, 0.6)]},
                {"name": "exp-2", "revs": [_entry("fff0002", "exp-2", 1.0, 0.62)]},
            ],
        },
    ]
    df = parse_exp_show(doc, "autopool")
    assert df["experiment"].tolist() == ["workspace", "main", "exp-1", "exp-2"]
    assert df["kind"].tolist() == ["workspace", "commit", "experiment", "experiment"]
    assert df["profile"].tolist() == ["cpu"] * 4
    assert df["param.lam"].tolist() == [0.1, 0.1, 0.5, 1.0]
    assert df["metric.acc.k400"].tolist() == [0.5, 0.5, 0.6, 0.62]
    assert "param.smoke.lam" not in df and "metric.run.seed" not in df and "param.ks" not in df


def test_profile_is_the_one_that_made_the_metrics():
    e = _entry("abc1234def", "main", 0.1, 0.5)
    e["data"]["metrics"]["results/autopool/metrics.json"]["data"]["run"]["profile"] = "smoke"
    assert parse_exp_show([e], "autopool")["profile"].tolist() == ["smoke"]  # params say cpu


def test_parse_exp_show_other_stage_is_empty():
    assert parse_exp_show([_entry("workspace", None, 0.1, 0.5)], "slowfeat").empty


def test_varying_names_the_swept_parameter_and_the_moved_metrics():
    doc = [
        {
            **_entry("abc1234def", "main", 0.1, 0.5),
            "experiments": [
                {"name": "exp-1", "revs": [_entry("fff0001", "exp-1", 0.5, 0.6)]},
                {"name": "exp-2", "revs": [_entry("fff0002", "exp-2", 1.0, 0.6)]},
            ],
        }
    ]
    df = parse_exp_show(doc, "autopool")
    assert varying(df, "param.") == ["param.lam"]
    assert varying(df, "metric.") == ["metric.acc.k400"]
    assert varying(df.iloc[1:], "metric.") == []  # 0.6 and 0.6: the sweep did not move it


def test_experiments_says_why_when_dvc_cannot_answer(monkeypatch, tmp_path):
    import subprocess

    from poolrep import sweeps

    monkeypatch.setattr(sweeps, "_dvc", lambda: None)
    df = sweeps.experiments("autopool")
    assert df.empty and "not installed" in df.attrs["why"]

    monkeypatch.setattr(sweeps, "_dvc", lambda: "dvc")
    monkeypatch.setattr(
        subprocess,
        "run",
        lambda *a, **k: subprocess.CompletedProcess(
            a, 255, "", "ERROR: Unable to acquire lock. Most likely another DVC process is running"
        ),
    )
    df = sweeps.experiments("autopool")
    assert df.empty and "exit 255" in df.attrs["why"] and "acquire lock" in df.attrs["why"]
