"""Issue 48, item 4: every stage's parameters checked against its model (poolrep.schema) before any work, each bad
value refused with one line naming the stage, the key, the value and what is allowed."""

from __future__ import annotations

import copy
import re

import pytest

from poolrep import cli, config, schema


@pytest.fixture
def doc(monkeypatch):
    """A private copy of the committed params.yaml that ``config.load()`` returns."""
    d = copy.deepcopy(config.load())
    monkeypatch.setattr(config, "load", lambda path=None: d)
    return d


def test_committed_params_pass_for_every_stage_and_profile():
    d = config.load()
    assert {k for k, v in d.items() if isinstance(v, dict)} == set(schema.MODELS), "one model per params block"
    for profile in config.PROFILES:
        config.check_all(d, profile)  # the top-level keys and every stage
        for stage, model in schema.MODELS.items():
            params = config.resolve(stage, d, profile)
            assert set(params) == set(model.model_fields), (stage, profile)


def test_backbone_model_has_exactly_the_keys_the_stage_reads():
    from poolrep import stages

    assert set(schema.Backbone.model_fields) == set(stages.BACKBONE_KEYS) | {"profile"}


def test_every_field_states_what_is_allowed():
    for model in (*schema.MODELS.values(), schema.TopLevel):
        for key in model.model_fields:
            text = schema.allowed(model, key)
            assert text and "typing" not in text and "<class" not in text, (model.__name__, key, text)


# (stage, key, bad value, the message after `<stage>.<key> = <value> (profile cpu)`): one row per kind of mistake,
# spread over the stages.
CASES = [
    # wrong type
    ("backbone", "input_px", "192", ": Input should be a valid integer; allowed: an int > 0"),
    ("autopool", "n_pairs", 1.5, ": Input should be a valid integer; allowed: an int > 0"),
    ("slowfeat", "steps1", True, ": Input should be a valid integer; allowed: an int > 0"),
    ("pyramid", "oxford_crop_query", "yes", ": Input should be a valid boolean; allowed: true or false"),
    ("crosslayer", "svm_Cs", 1.0, ": Input should be a valid list; allowed: a non-empty list, each item a number > 0"),
    ("entropy", "lr", "0.1", ": Input should be a valid number; allowed: a number > 0"),
    ("zoo", "windows", "window1", ": Input should be a valid list; allowed: a non-empty list, each item a non-empty string"),
    ("backbone", "extract_procs", "many", ": Input should be a valid integer; allowed: an int > 0 or 'auto'"),
    ("autopool", "optimizer", "lbfgs", ": Input should be 'adam', 'momentum' or 'sgd'; allowed: one of 'adam', 'momentum', 'sgd'"),
    # zero or negative counts
    ("backbone", "batch_size", 0, ": Input should be greater than 0; allowed: an int > 0"),
    ("autopool", "sae_iters", -5, ": Input should be greater than 0; allowed: an int > 0"),
    ("slowfeat", "fc_steps", 0, ": Input should be greater than 0; allowed: an int > 0"),
    ("pyramid", "cifar_test_per_class", -1, ": Input should be greater than 0; allowed: an int > 0"),
    ("crosslayer", "train_per_class", 0, ": Input should be greater than 0; allowed: an int > 0 or null"),
    ("entropy", "epochs", 0, ": Input should be greater than 0; allowed: an int > 0"),
    ("zoo", "autopool_pairs", -40, ": Input should be greater than 0; allowed: an int > 0"),
    ("entropy", "seed", -1, ": Input should be greater than or equal to 0; allowed: an int >= 0"),
    # seeds lists non-empty, their items >= 0; counts inside lists > 0
    ("slowfeat", "seeds", [], ": List should have at least 1 item after validation, not 0; allowed: a non-empty list, each item an int >= 0"),
    ("entropy", "seeds", [0, -2], " (item [1] = -2): Input should be greater than or equal to 0; allowed: a non-empty list, each item an int >= 0"),
    ("autopool", "ks", [400, 0], " (item [1] = 0): Input should be greater than 0; allowed: a non-empty list, each item an int > 0"),
    # fractions in [0, 1]
    ("autopool", "stop_rise_frac", 1.5, ": Input should be less than or equal to 1; allowed: a number in [0, 1]"),
    ("entropy", "label_smoothing", -0.1, ": Input should be greater than or equal to 0; allowed: a number in [0, 1]"),
    ("slowfeat", "plateau_window", 2, ": Input should be less than or equal to 1; allowed: a number in [0, 1]"),
    # not a number at all
    ("zoo", "gem_p", float("nan"), ": Input should be a finite number; allowed: a number > 0"),
]  # fmt: skip


@pytest.mark.parametrize("stage, key, value, expected", CASES, ids=lambda x: str(x)[:20])
def test_a_bad_value_is_one_line_naming_stage_key_value_and_what_is_allowed(doc, stage, key, value, expected):
    doc[stage][key] = value
    with pytest.raises(config.ParamsError) as e:
        config.resolve(stage, doc)
    assert str(e.value) == f"{stage}.{key} = {value!r} (profile cpu){expected}"
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("stage", sorted(schema.MODELS))
def test_an_unknown_key_is_refused_with_the_keys_the_stage_accepts(doc, stage):
    doc[stage]["lamda"] = 0.5
    accepted = ", ".join(sorted(k for k in schema.MODELS[stage].model_fields if k != "profile"))
    with pytest.raises(config.ParamsError) as e:
        config.resolve(stage, doc)
    assert str(e.value) == f"{stage}.lamda = 0.5 (profile cpu): unknown key; {stage!r} accepts: {accepted}"


def test_an_unknown_key_in_a_profile_block_is_refused(doc):
    doc["entropy"]["smoke"]["epoch"] = 2
    with pytest.raises(config.ParamsError, match=r"entropy.smoke sets epoch, which 'entropy' does not define"):
        config.resolve("entropy", doc, profile="smoke")


def test_a_bad_value_in_a_profile_block_names_the_profile(doc):
    doc["slowfeat"]["paper"]["steps2"] = 0
    config.resolve("slowfeat", doc, profile="cpu")  # cpu does not use it
    with pytest.raises(config.ParamsError) as e:
        config.resolve("slowfeat", doc, profile="paper")
    assert str(e.value) == ("slowfeat.steps2 = 0 (profile paper): Input should be greater than 0; allowed: an int > 0")


def test_null_only_where_a_profile_uses_it(doc):
    doc["autopool"]["max_frames"] = None  # cpu uses null ("every frame")
    config.resolve("autopool", doc)
    doc["autopool"]["n_pairs"] = None
    with pytest.raises(config.ParamsError, match=r"^autopool.n_pairs = None \(profile cpu\): .*allowed: an int > 0$"):
        config.resolve("autopool", doc)


def test_checks_across_keys(doc):
    doc["slowfeat"]["keep_every"] = 700
    with pytest.raises(config.ParamsError) as e:
        config.resolve("slowfeat", doc)
    assert str(e.value) == (
        "slowfeat (profile cpu): keep_every = 700 does not divide steps1 = 1200 (allowed: a divisor of steps1 and steps2)"
    )
    doc["slowfeat"]["keep_every"] = 100
    doc["entropy"]["control_seeds"] = [0, 7]
    with pytest.raises(config.ParamsError, match=r"control_seeds = \[0, 7\] has \[7\], not in seeds"):
        config.resolve("entropy", doc)


@pytest.mark.parametrize("stage", sorted(schema.MODELS))
def test_an_unknown_profile_is_refused(doc, stage):
    with pytest.raises(config.ParamsError) as e:
        config.resolve(stage, doc, profile="gpu")
    assert str(e.value) == f"{stage}: unknown profile 'gpu'; allowed: one of smoke, cpu, paper"
    doc["profile"] = "gpu"  # the switch itself
    with pytest.raises(config.ParamsError, match=f"^{stage}: unknown profile 'gpu'"):
        config.resolve(stage, doc)
    with pytest.raises(config.ParamsError) as e:
        config.check_all(doc)
    assert str(e.value) == (
        "params.yaml: profile = 'gpu': Input should be 'smoke', 'cpu' or 'paper'; allowed: one of 'smoke', 'cpu', 'paper'"
    )


def test_top_level_keys(doc):
    doc["verify_rtol"] = -1e-6
    with pytest.raises(config.ParamsError, match=r"verify_rtol = -1e-06: .*; allowed: a number in \[0, 1\)"):
        config.check_all(doc)
    doc["verify_rtol"] = 1e-6
    doc["verfy_rtol"] = 1e-6
    with pytest.raises(config.ParamsError, match="unknown top-level key verfy_rtol"):
        config.check_all(doc)


# ---------- before any work: poolrep run, poolrep data, poolrep params ----------


def test_poolrep_run_refuses_before_the_notebook_or_any_data(doc, monkeypatch, capsys):
    from poolrep import runner

    touched = []
    monkeypatch.setattr(runner, "notebook_for", lambda *a: touched.append(a))
    monkeypatch.setattr(runner, "check_kernel", lambda: touched.append("kernel"))
    doc["pyramid"]["top_k"] = 0
    assert cli.main(["run", "pyramid"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "poolrep run: error: pyramid.top_k = 0 (profile cpu): Input should be greater than 0; allowed: an int > 0"
    )
    assert touched == []


def test_poolrep_data_checks_every_stage_before_reading_data(doc, monkeypatch, capsys):
    from poolrep.data import manifest

    read = []
    monkeypatch.setattr(manifest, "manifest", lambda *a, **k: read.append(a))
    doc["crosslayer"]["smoke"]["pca_dim"] = -16  # not the active profile's stage block: the active profile is cpu
    doc["entropy"]["seeds"] = []
    assert cli.main(["data"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"poolrep data: error: entropy\.seeds = \[\] \(profile cpu\): .*", err), err
    assert read == []


def test_poolrep_params_refuses_a_bad_value(doc, capsys):
    doc["zoo"]["entropy_t"] = 0
    assert cli.main(["params", "zoo", "--profile", "smoke"]) == 2
    assert "zoo.entropy_t = 0 (profile smoke): Input should be greater than 0" in capsys.readouterr().err
