"""The paper branch of the pyramid and cross-layer notebooks, end to end under papermill, on fixture archives of the
official layouts (Holidays, Oxford5K, CUB-200-2011) and a randomly initialised AlexNet saved as a state dict (the
ImageNet AlexNet is not offline): the ``paper`` profile's parameters with the data paths pointed at the fixtures.

What a random AlexNet gives is meaningless as a number; what is tested is that every cell of the paper path runs,
writes its tables, figures, metrics and claims, and that the tables have the paper's layout (Table 3's dimensions,
Table 1's rows)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from poolrep import config, paths

sys.path.insert(0, str(Path(__file__).parent))
from test_crosslayer import make_cub_archive  # noqa: E402
from test_pyramid import _holidays_fixture, _oxford_fixture  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "alexnet_random.pth"
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    return path


def _execute(stage: str, params: dict, tmp_path: Path) -> Path:
    import papermill as pm

    out = tmp_path / "out"
    pm.execute_notebook(str(paths.ROOT / "notebooks" / f"{stage}.ipynb"), str(tmp_path / f"{stage}.ipynb"),
                        parameters={**params, "out_dir": str(out)}, kernel_name="poolrep",
                        cwd=str(paths.ROOT / "notebooks"), progress_bar=False)
    return out


def test_pyramid_paper_branch_on_fixtures(tmp_path, alexnet_file):
    hol = _holidays_fixture(tmp_path / "holidays")
    for f in (hol / "jpg_rotated").iterdir():  # the rotated release absent: optional, recorded as absent
        f.unlink()
    (hol / "jpg_rotated").rmdir()
    ox = _oxford_fixture(tmp_path / "oxford")
    p = config.resolve("pyramid", profile="paper")
    p.update(weights_file=str(alexnet_file), holidays_root=str(hol), oxford_root=str(ox), holidays_max_side=64,
             oxford_max_side=64, batch_size=4, show_queries=2)
    out = _execute("pyramid", p, tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert m["run"]["profile"] == "paper"
    tables = {f.stem: pd.read_csv(f) for f in (out / "tables").glob("*.csv")}
    assert tables, "no tables written"
    run = json.loads((out / "run.json").read_text())
    # the optional rotated set is named as absent in the run log, not silently dropped
    assert run["data"]["holidays_rotated"]["source"] == "absent"
    assert {"Holidays", "Oxford5K"} <= set(m["spearman_vs_paper_holidays"])
    text = json.dumps(m)
    for name, d in {"pyramid1": 3328, "pyramid2": 2048, "pyramid3": 1280, "pyramid4": 3584, "pyramid5": 2304}.items():
        assert str(d) in text, f"{name}: Table 3's dimension {d} not in the metrics"
    assert m["claims"] and all(c["status"] in ("reproduced", "not reproduced", "inconclusive", "not testable here")
                               for c in m["claims"])
    assert list((out / "figures").glob("*.png"))


@pytest.mark.parametrize("crop_box", [False, True])
def test_crosslayer_paper_branch_on_fixtures(tmp_path, alexnet_file, crop_box):
    archive, root = make_cub_archive(tmp_path, n_classes=3, per_class=6)
    p = config.resolve("crosslayer", profile="paper")
    p.update(cub_archive=str(archive), crop_box=crop_box, weights_file=str(alexnet_file), pca_dim=16,
             pca_dims=[8, 16], pca_max_samples=2000, batch_size=4, input_px=224, input_px_fine=448)
    out = _execute("crosslayer", p, tmp_path)
    m = json.loads((out / "metrics.json").read_text())
    assert m["run"]["profile"] == "paper"
    run = json.loads((out / "run.json").read_text())
    assert ("bounding box" in json.dumps(run["data"])) == crop_box
    table = pd.read_csv(next((out / "tables").glob("table1*.csv")))
    assert {"CNN-Global", "CL", "CL-F", "CL-C"} <= set(table.iloc[:, 0].astype(str).str.split(" ").str[0])
    assert m["claims"] and all(c["status"] in ("reproduced", "not reproduced", "inconclusive", "not testable here")
                               for c in m["claims"])
