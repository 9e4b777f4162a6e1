"""Feature extraction plumbing: input conversion, batching, dtype, and the ImageNet backbones' layer names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poolrep import features


class Probe(torch.nn.Module):
    """Returns each image's mean as a 1x1 'map', so batching and order can be checked exactly."""

    def forward(self, x):
        return {"m": x.mean(dim=(1, 2, 3), keepdim=True)}


def test_to_input_normalises_and_resizes():
    imgs = np.full((2, 8, 8, 3), 255, np.uint8)
    mean, std = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1), torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1)
    x = features.to_input(imgs, 4, mean, std)
    assert x.shape == (2, 3, 4, 4)
    assert torch.allclose(x, torch.full_like(x, 2.0))
    with pytest.raises(ValueError, match="N x H x W x 3"):
        features.to_input(np.zeros((2, 8, 8), np.uint8), 4, mean, std)


def test_extract_batches_in_order_and_lists_of_sizes():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 6, 6, 3), dtype=np.uint8)
    mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
    out = features.extract(Probe(), mean, std, imgs, 6, batch_size=3, dtype=torch.float32)["m"]
    assert out.shape == (7, 1, 1, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), imgs.reshape(7, -1).mean(1) / 255, rtol=1e-5)
    varied = [rng.integers(0, 256, (h, 5, 3), dtype=np.uint8) for h in (5, 9, 12)]
    assert features.extract(Probe(), mean, std, varied, 6, batch_size=2)["m"].shape == (3, 1, 1, 1)


@pytest.mark.parametrize(
    "net,shape_last,shape_prev",
    [
        ("mobilenet_v2", (1280, 6, 6), (320, 6, 6)),
        ("alexnet", (256, 6, 6), (256, 13, 13)),
    ],
)
def test_backbone_layer_names_give_the_papers_shapes(net, shape_last, shape_prev):
    """With random weights (no download): the named nodes exist and have the expected shapes at 192/224 px."""
    nodes = [features.PREV_CONV[net], features.LAST_CONV[net]]
    fx, mean, std = features.extractor(net, nodes, pretrained=False)
    assert mean.shape == (1, 3, 1, 1) and float(std[0, 0]) == pytest.approx(0.229)
    size = 192 if net == "mobilenet_v2" else 224
    with torch.no_grad():
        out = fx(torch.zeros(1, 3, size, size))
    assert tuple(out[nodes[1]].shape[1:]) == shape_last
    assert tuple(out[nodes[0]].shape[1:]) == shape_prev


def test_extractor_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        features.extractor("vgg16", ["x"], pretrained=False)
