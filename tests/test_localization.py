"""The cluttered-CIFAR construction (boxes where the objects are) and the localisation scores on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep.data.cluttered import cluttered
from poolrep.metrics.localization import box_fraction, box_share, pointing_hits


def test_cluttered_boxes_hold_exactly_the_pasted_objects():
    rng = np.random.default_rng(0)
    objects = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    c = cluttered(objects, np.arange(5), background, canvas=64, patch=16, seed=3)
    assert c.images.shape == (5, 64, 64, 3) and c.boxes.shape == (5, 4)
    for img, obj, (x0, y0, x1, y1) in zip(c.images, objects, c.boxes):
        assert (x1 - x0, y1 - y0) == (32, 32) and 0 <= x0 <= 32 and 0 <= y0 <= 32
        np.testing.assert_array_equal(img[y0:y1, x0:x1], obj)
    # the background is made of crops of the background images (a 16x16 tile away from the object)
    bg_tiles = {
        background[b, y : y + 16, x : x + 16].tobytes() for b in range(20) for y in range(17) for x in range(17)
    }
    img, (x0, y0, x1, y1) = c.images[0], c.boxes[0]
    free = [
        (r, q)
        for r in range(4)
        for q in range(4)
        if r * 16 >= y1 or (r + 1) * 16 <= y0 or q * 16 >= x1 or (q + 1) * 16 <= x0
    ]
    assert free and all(img[r * 16 : (r + 1) * 16, q * 16 : (q + 1) * 16].tobytes() in bg_tiles for r, q in free)
    # same seed, same set; another seed, other positions
    np.testing.assert_array_equal(cluttered(objects, np.arange(5), background, seed=3).boxes, c.boxes)
    assert not np.array_equal(cluttered(objects, np.arange(5), background, seed=4).boxes, c.boxes)
    with pytest.raises(ValueError, match="canvas"):
        cluttered(objects, np.arange(5), background, canvas=40, patch=16)  # not tiled by 16


def test_scores_on_hand_made_maps():
    size = 8
    boxes = np.array([[0, 0, 4, 4], [4, 4, 8, 8], [0, 0, 8, 8]])
    maps = torch.zeros(3, 8, 8)
    maps[0, :4, :4] = 1.0  # all mass in the box
    maps[1, :4, :4] = 1.0  # all mass outside it
    maps[2] = 1.0  # uniform, box = the whole image
    share = box_share(maps, boxes, size)
    np.testing.assert_allclose(share, [1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(pointing_hits(maps, boxes, size), [True, False, True])
    np.testing.assert_allclose(box_fraction(boxes, size), [0.25, 0.25, 1.0])
    # a uniform map scores the box fraction; a negative map (a CAM) counts as zero, so it points nowhere
    uni = box_share(torch.ones(2, 8, 8), boxes[:2], size)
    np.testing.assert_allclose(uni, [0.25, 0.25], atol=1e-6)
    np.testing.assert_allclose(box_share(-torch.ones(1, 8, 8), boxes[:1], size), [0.25])
    # a coarse 2x2 map is upsampled to the image before scoring
    coarse = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert box_share(coarse, boxes[:1], size)[0] > 0.75 and pointing_hits(coarse, boxes[:1], size)[0]
    with pytest.raises(ValueError, match="boxes"):
        box_share(maps, np.array([[0, 0, 9, 9]] * 3), size)


def test_localisation_table_pairs_each_map_with_cam():
    """Hand-made scores: the entropy map has 20 points more share than CAM on every canvas and hits where CAM misses
    on half of them; the paired differences say exactly that, the CAM row has none, uniform is paired too."""
    from poolrep.papers.entropy import CAM, MAP_TITLES, localisation_table

    n = 40
    cam = {"share": np.full((n, 3), 0.30), "hit": np.tile(np.r_[np.ones(n // 2), np.zeros(n // 2)][:, None], (1, 3))}
    ent = {"share": np.full((n, 3), 0.50), "hit": np.ones((n, 3))}
    uni = {"share": np.full((n, 1), 0.25), "hit": np.full((n, 1), 0.25)}
    t = localisation_table({CAM: cam, "entropy_linear": ent, "uniform": uni}, {"entropy_linear": "entropy"}).set_index(
        "map"
    )
    assert t.loc["entropy", "share minus CAM"] == pytest.approx(20.0)
    assert t.loc["entropy", "share minus CAM 95% CI"] == "[+20.0, +20.0]"
    assert t.loc["entropy", "hits minus CAM"] == pytest.approx(50.0)
    lo, hi = (float(v) for v in t.loc["entropy", "hits minus CAM 95% CI"].strip("[]").split(","))
    assert 30 < lo < 50 < hi < 70  # half the canvases differ by 1, half by 0: a real interval around +50
    assert t.loc["uniform", "share minus CAM"] == pytest.approx(-5.0)
    cam_row = MAP_TITLES[CAM]  # the table shows titles; the dict's keys are slugs
    assert np.isnan(t.loc[cam_row, "share minus CAM"]) and t.loc[cam_row, "share in box (%)"] == pytest.approx(30.0)


def test_scores_tell_rows_from_columns():
    """Issue 37: a box off the diagonal and not square (columns 5-7, rows 1-2 of an 8-px image), so that reading the
    argmax or the box transposed gives other answers, each computed here by hand. Maps on the image's own grid, so
    the bilinear upsampling is the identity."""
    size = 8
    boxes = np.array([[5, 1, 8, 3], [5, 1, 8, 3]])  # x0, y0, x1, y1
    maps = torch.zeros(2, size, size)
    maps[0, 1, 6] = 1.0  # maximum at row 1, column 6: inside (x 6 in [5, 8), y 1 in [1, 3)); transposed, row 6: out
    maps[1, 6, 1] = 1.0  # maximum at row 6, column 1: outside; read transposed it would be (x 6, y 1), inside
    np.testing.assert_array_equal(pointing_hits(maps, boxes, size), [True, False])
    # mass 1 on each of the box's 6 pixels and 3 on (row 6, column 1), which the transposed box m[5:8, 1:3] holds:
    # the share is 6 / 9 read the right way, 3 / 9 transposed
    m = torch.zeros(1, size, size)
    m[0, 1:3, 5:8] = 1.0
    m[0, 6, 1] = 3.0
    np.testing.assert_allclose(box_share(m, boxes[:1], size), [6 / 9], atol=1e-6)
    np.testing.assert_allclose(box_fraction(boxes[:1], size), [6 / 64])


def test_cluttered_box_of_an_object_that_is_not_square():
    """Issue 37: objects 8 rows x 24 columns, pasted on a 64-px canvas: each box is 24 wide and 8 high, away from
    the diagonal for some seed, and holds exactly the object's pixels (rows y0:y1, columns x0:x1)."""
    rng = np.random.default_rng(1)
    objects = rng.integers(0, 256, (6, 8, 24, 3), dtype=np.uint8)
    background = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    c = cluttered(objects, np.arange(6), background, canvas=64, patch=16, seed=5)
    x0, y0, x1, y1 = c.boxes.T
    np.testing.assert_array_equal(x1 - x0, 24)
    np.testing.assert_array_equal(y1 - y0, 8)
    assert (x1 <= 64).all() and (y1 <= 64).all() and (x0 != y0).any()
    for img, obj, (a, b, c_, d) in zip(c.images, objects, c.boxes):
        np.testing.assert_array_equal(img[b:d, a:c_], obj)
