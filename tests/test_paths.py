"""The repository root follows POOLREP_ROOT, then the working directory (DVC experiment copies), then the install."""

import os
import subprocess
import sys

from poolrep import paths


def _root_from(cwd, env=None):
    code = "from poolrep import paths; print(paths.ROOT)"
    env = {k: v for k, v in os.environ.items() if k != "POOLREP_ROOT"} | (env or {})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_root_is_the_copy_we_run_in(tmp_path):
    copy = tmp_path / "exp"
    (copy / "src" / "poolrep").mkdir(parents=True)
    (copy / "notebooks").mkdir()
    (copy / "dvc.yaml").write_text("stages: {}\n")
    assert _root_from(copy / "notebooks") == str(copy)
    assert _root_from(tmp_path) == str(paths.ROOT)  # no project above: the installed checkout
    assert _root_from(tmp_path, {"POOLREP_ROOT": str(copy)}) == str(copy)


def test_out_dir_creates_the_given_folder(tmp_path):
    assert paths.out_dir("x", tmp_path / "given") == tmp_path / "given"
    assert (tmp_path / "given").is_dir()
