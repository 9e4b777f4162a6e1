"""params.yaml: one section per stage, and one switch, ``profile``, that selects ``smoke``, ``cpu`` or ``paper``.

A stage's section holds its ``cpu`` values (the default profile) plus two sub-sections, ``smoke`` and ``paper``,
that list only what those profiles change. So ``dvc exp run -S autopool.lam=0.5`` changes one parameter of the
default profile, ``dvc exp run -S autopool.smoke.n_pairs=100`` one of the smoke profile, and
``dvc exp run -S profile=paper`` switches every stage to the papers' sizes. Each stage's whole configuration is
one contiguous block, and dvc.yaml makes each stage depend on its block and on ``profile`` only.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from . import paths

PROFILES = ("smoke", "cpu", "paper")


class ParamsError(ValueError):
    """A params.yaml problem: unknown stage, unknown profile, unknown key."""


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
    ``section[profile]``. Every key an overlay sets must exist in the section (a typo is an error)."""
    doc = load() if doc is None else doc
    profile = profile or doc.get("profile", "cpu")
    if profile not in PROFILES:
        raise ParamsError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
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
