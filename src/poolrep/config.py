"""params.yaml: one section per stage, and one switch, ``profile``, that selects ``smoke``, ``cpu`` or ``paper``.

A stage's section holds its ``cpu`` values (the default profile) plus two sub-sections, ``smoke`` and ``paper``,
that list only what those profiles change. So ``dvc exp run -S autopool.lam=0.5`` changes one parameter of the
default profile, ``dvc exp run -S autopool.smoke.n_pairs=100`` one of the smoke profile, and
``dvc exp run -S profile=paper`` switches every stage to the papers' sizes. Each stage's whole configuration is
one contiguous block, and dvc.yaml makes each stage depend on its block and on ``profile`` only.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from . import paths, schema

PROFILES = ("smoke", "cpu", "paper")


class ParamsError(ValueError):
    """A params.yaml problem: unknown stage, unknown profile, unknown key, wrong type or range."""


# Stages that are not notebooks (a notebook's parameters cell says which keys it accepts): where their accepted
# keys are declared.
CODE_STAGES = {"backbone": ("poolrep.stages", "BACKBONE_KEYS")}

# A number under a key whose last word (``_``-separated, trailing digits dropped) is one of these counts or sizes
# something, so it must be > 0; every other number must be >= 0 (seeds, weights, thresholds may be 0).
POSITIVE_WORDS = ("px", "epochs", "steps", "batch", "size", "class", "iters", "procs", "pairs", "patches", "frames")


def load(path: str | Path | None = None) -> dict:
    path = Path(path) if path else paths.ROOT / "params.yaml"
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the poolrep repository or set POOLREP_ROOT")
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    if not isinstance(doc, dict):
        raise ParamsError(f"{path}: top level must be a mapping")
    return doc


def resolve(stage: str, doc: dict | None = None, profile: str | None = None) -> dict[str, Any]:
    """Effective parameters of ``stage``: its section without the profile sub-sections, overlaid by
    ``section[profile]``. Every key an overlay sets must exist in the section (a typo is an error), and the
    result passes :func:`validate`, so a bad value fails here, before any work starts."""
    doc = load() if doc is None else doc
    profile = profile or doc.get("profile", "cpu")
    out = _overlay(stage, doc, profile)
    if stage in schema.MODELS:  # its model (poolrep.schema): types, ranges and keys, stated per key
        schema.check(stage, out)
    else:
        validate(stage, out, _overlay(stage, doc, "smoke"))
    return out


def check_all(doc: dict | None = None, profile: str | None = None) -> None:
    """Every stage's effective parameters and the top-level keys, checked before any work (``poolrep data``,
    the pipeline's first stage, and ``poolrep verify``): one ParamsError line for the first problem."""
    doc = load() if doc is None else doc
    schema.check_top(doc)
    for stage in schema.MODELS:
        resolve(stage, doc, profile)


def _overlay(stage: str, doc: dict, profile: str) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ParamsError(f"{stage}: unknown profile {profile!r}; allowed: one of {', '.join(PROFILES)}")
    if stage not in doc or not isinstance(doc[stage], dict):
        known = sorted(k for k, v in doc.items() if isinstance(v, dict))
        raise ParamsError(f"no section {stage!r} in params.yaml; known stages: {', '.join(known)}")
    section = doc[stage]
    out = {k: copy.deepcopy(v) for k, v in section.items() if k not in PROFILES}
    overlay = section.get(profile) or {}
    if not isinstance(overlay, dict):
        raise ParamsError(f"{stage}.{profile} must be a mapping of overrides, not {overlay!r}")
    unknown = sorted(set(overlay) - set(out))
    if unknown:
        raise ParamsError(
            f"{stage}.{profile} sets {', '.join(unknown)}, which {stage!r} does not define; "
            f"known keys: {', '.join(sorted(out))}"
        )
    out.update(copy.deepcopy(overlay))
    out["profile"] = profile
    return out


def _last_word(key: str) -> str:
    return key.rsplit("_", 1)[-1].rstrip("0123456789")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(value: Any) -> Iterator[int | float]:
    if _is_number(value):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)


def _type_name(v: Any) -> str:
    return {
        bool: "a bool",
        int: "an int",
        float: "a float",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }.get(type(v), type(v).__name__)


def validate(stage: str, params: dict[str, Any], smoke: dict[str, Any]) -> None:
    """Raise ParamsError for a value of the wrong type or range (``smoke``: the stage's smoke resolution).

    - keys: a stage that is not a notebook (``CODE_STAGES``) accepts exactly the keys its code declares;
    - types: each value has the type of the key's smoke value (the notebooks' defaults equal it): a bool is not
      an int, a float key accepts an int, ``null`` is allowed anywhere ("no cut", "all"), as is any value where
      the smoke value is ``null``, and a number and ``"auto"`` (decided at run time) stand for each other;
    - ranges: every number, also inside lists and mappings, is >= 0, and > 0 under a key whose last word is in
      ``POSITIVE_WORDS`` (``input_px``, ``epochs``, ``steps1``, ``batch_size``, ``train_per_class``, ...).
    """
    if stage in CODE_STAGES:
        import importlib

        module, name = CODE_STAGES[stage]
        accepted = set(getattr(importlib.import_module(module), name)) | {"profile"}
        unknown, missing = sorted(set(params) - accepted), sorted(accepted - set(params))
        if unknown:
            raise ParamsError(
                f"{stage}: unknown parameter(s) {', '.join(unknown)}; "
                f"it accepts: {', '.join(sorted(accepted - {'profile'}))}"
            )
        if missing:
            raise ParamsError(f"{stage}: parameter(s) {', '.join(missing)} missing from params.yaml")
    for key, value in params.items():
        if key == "profile" or value is None:
            continue
        ref = smoke.get(key)
        if ref is not None and not (
            type(value) is type(ref)
            or (type(ref) is float and type(value) is int)
            or (value == "auto" and _is_number(ref))
            or (ref == "auto" and _is_number(value))
        ):
            raise ParamsError(
                f"{stage}.{key} = {value!r} is {_type_name(value)}; expected {_type_name(ref)} "
                f"(like its smoke value {ref!r})"
            )
        positive = _last_word(key) in POSITIVE_WORDS
        for n in _numbers(value):
            if not (n > 0 if positive else n >= 0):
                raise ParamsError(
                    f"{stage}.{key} = {value!r}: {n!r} is out of range; it must be {'> 0' if positive else '>= 0'}"
                )


def check_keys(params: dict, allowed: set[str] | list[str], where: str) -> None:
    """Raise on keys the receiver (a notebook's parameters cell, a function) does not know."""
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ParamsError(
            f"unknown parameter(s) {', '.join(unknown)} for {where}; it accepts: {', '.join(sorted(allowed))}"
        )


def collect(stage: str, namespace: dict) -> dict[str, Any]:
    """A notebook's parameters as one dict (what it passes to its paper module): every key ``stage`` declares in
    params.yaml, plus ``profile``, read from the notebook's namespace (its ``parameters`` cell, as papermill
    injected or as the defaults). A declared key the notebook does not define is an error."""
    keys = list(resolve(stage, profile="smoke"))
    missing = [k for k in keys if k not in namespace]
    if missing:
        raise ParamsError(f"notebook for {stage!r} does not define {', '.join(missing)} (declared in params.yaml)")
    return {k: namespace[k] for k in keys}
