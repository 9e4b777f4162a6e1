"""The environment files agree with each other and with what the README tells a user to run."""

from __future__ import annotations

import re

import pytest
import yaml

from poolrep import paths


def _reqs() -> dict[str, str]:
    out = {}
    for line in (paths.ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, ver = line.split("==")
            out[name.lower()] = ver
    return out


def test_requirements_are_pinned_with_the_working_torch_pair():
    reqs = _reqs()
    assert reqs["torch"] == "2.14.1" and reqs["torchvision"] == "0.29.1"
    for name in ("dvc", "papermill", "nbval", "jupyterlab", "ipykernel", "pytest", "scikit-learn", "pandas"):
        assert name in reqs, name


def test_environment_yml_wraps_requirements():
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-r requirements.txt" in pip and "-e ." in pip
    # nothing pinned twice: conda adds no package of its own beyond python and pip
    assert [d for d in deps if isinstance(d, str)] == ["python=3.11", "pip"]


def test_readme_commands_exist_in_makefile_and_ci():
    readme = (paths.ROOT / "README.md").read_text()
    make = (paths.ROOT / "Makefile").read_text()
    ci = (paths.ROOT / ".ci" / "run").read_text()
    for target in ("repro", "test"):
        assert re.search(rf"^{target}:", make, re.M), target
        assert f"make {target}" in readme
    assert "make test" in ci
    assert "POOLREP_DATA_MIRROR" in readme and "DVC_NO_ANALYTICS" in make


def test_freed_feature_batches_go_back_to_the_os():
    """device.return_freed_memory: allocating and freeing 30-MB blocks (a batch of conv maps) many times leaves
    the resident memory where it was (glibc's dynamic threshold let it grow by ~15 MB per batch)."""
    import sys

    import torch

    from poolrep.device import return_freed_memory

    if not sys.platform.startswith("linux") or not return_freed_memory():
        pytest.skip("glibc's mallopt is not available here")

    def rss() -> int:
        return int(open("/proc/self/statm").read().split()[1]) * 4096

    x = torch.rand(100, 72900)
    before = rss()
    for _ in range(40):
        m = torch.empty(100, 100, 27, 27).uniform_()  # 29 MB, freed at the next assignment
        y = (m.flatten(1) + x).sum(1)
    del m, y
    assert rss() - before < 100 * 2**20
