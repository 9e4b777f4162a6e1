"""Information-entropy-based feature pooling (after W. Wan, J. Chen et al., "Information Entropy Based Feature
Pooling for Convolutional Neural Networks", ICCV 2019).

Our copy of the paper is its abstract and references only, so the weight formula below is OUR choice in the
spirit of the abstract ("locations whose class prediction is confident matter more"), not the paper's equation.

For feature maps ``f`` (N x D x H x W) and the network's own linear classifier (weight ``W``: C x D, bias ``b``),
applied at every location i as a 1x1 convolution:

    z_i = W f_i + b                       (C class scores at location i)
    p_i = softmax(z_i)
    H_i = -sum_c p_ic log p_ic            (0 <= H_i <= log C)

and a weight that falls as H_i rises, normalised over the H*W locations of each image:

    weighting="linear":        w_i = (log C - H_i + eps) / sum_j (log C - H_j + eps)
    weighting="softmax":       w_i = exp(-H_i / (T log C)) / sum_j exp(-H_j / (T log C))
    weighting="unnormalised":  w_i = 1 - H_i / log C       (not renormalised; pooled with a mean, see forward)

The pooled feature is ``g = sum_i w_i f_i`` (N x D), fed to the same classifier. Uniform predictions everywhere
give uniform weights (the layer then equals global average pooling); a single confident location with all others
uncertain takes nearly all the weight. Gradients flow through the weights into ``W`` and ``b`` (used in training
and in inference alike); ``detach_weights=True`` stops them.

Numerical safety: ``H`` is computed from ``log_softmax`` (finite for finite scores), as ``-sum exp(l) * l``; a
probability that underflows to exactly 0 contributes ``0 * finite = 0`` to the value and to the gradient, so
saturated predictions give neither NaN nor inf. ``entropy_from_probs`` handles probability tensors that contain
exact zeros the same way (``xlogy`` on a clamped argument).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .helpers import check_maps

WEIGHTINGS = ("linear", "softmax", "unnormalised")


def entropy_from_logits(z: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Shannon entropy (nats) of ``softmax(z)`` along ``dim``; finite and NaN-free for any finite ``z``."""
    logp = F.log_softmax(z, dim=dim)
    return -(logp.exp() * logp).sum(dim=dim)


def entropy_from_probs(p: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Entropy of probability vectors along ``dim``, with ``0 log 0 = 0`` (also for the gradient)."""
    if (p < 0).any():
        raise ValueError("probabilities must be non-negative")
    safe = torch.where(p > 0, p, torch.ones_like(p))  # log(1) = 0 where p == 0: value and gradient stay finite
    return -(p * torch.log(safe)).sum(dim=dim)


def entropy_weights(
    h: torch.Tensor, n_classes: int, weighting: str = "linear", temperature: float = 1.0, eps: float = 1e-6
) -> torch.Tensor:
    """Location weights from entropies ``h`` (N x L), non-negative and non-increasing in H.

    ``linear`` and ``softmax`` rows sum to 1 (the pooled feature is a weighted mean); ``unnormalised`` is
    ``1 - H / log C`` per location, in [0, 1], not renormalised over the locations (the pooled feature is the mean of
    the weighted features, so an image whose every location is uncertain pools to a small vector). ``softmax``
    divides H by ``temperature * log C``, so one temperature means the same for 10 and for 1,000 classes."""
    if h.ndim != 2:
        raise ValueError(f"expected entropies N x L, got shape {tuple(h.shape)}")
    log_c = math.log(n_classes)
    if weighting == "linear":
        s = (log_c - h).clamp(min=0) + eps
        return s / s.sum(dim=1, keepdim=True)
    if weighting == "softmax":
        return torch.softmax(-h / (temperature * log_c), dim=1)
    if weighting == "unnormalised":
        return (1 - h / log_c).clamp(min=0)
    raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")


class EntropyPool(nn.Module):
    """Entropy-weighted pooling ``N x D x H x W -> N x D`` using ``classifier`` (an ``nn.Linear(D, C)``, shared
    with the head that classifies the pooled feature) as a 1x1 convolution. See the module docstring."""

    def __init__(
        self,
        classifier: nn.Linear,
        weighting: str = "linear",
        temperature: float = 1.0,
        eps: float = 1e-6,
        detach_weights: bool = False,
    ):
        super().__init__()
        if not isinstance(classifier, nn.Linear):
            raise ValueError(f"classifier must be an nn.Linear, got {type(classifier).__name__}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        if classifier.out_features < 2:
            raise ValueError("entropy pooling needs at least 2 classes")
        self.classifier = classifier  # shared module: parameters are deduplicated by nn.Module.parameters()
        self.weighting, self.temperature, self.eps, self.detach_weights = (
            weighting,
            float(temperature),
            eps,
            detach_weights,
        )

    def location_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores at every location, ``N x C x H x W`` (the classifier as a 1x1 conv)."""
        check_maps(x, channels=self.classifier.in_features, channels_of="the classifier expects")
        w = self.classifier.weight[:, :, None, None]
        return F.conv2d(x, w, self.classifier.bias)

    def entropy(self, x: torch.Tensor) -> torch.Tensor:
        """Per-location entropy ``N x H x W``."""
        return entropy_from_logits(self.location_scores(x), dim=1)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        """Location weights ``N x H x W`` (each map sums to 1, but for ``unnormalised``)."""
        n, _, hh, ww = x.shape if x.ndim == 4 else (None,) * 4
        h = self.entropy(x).reshape(n, hh * ww)
        w = entropy_weights(h, self.classifier.out_features, self.weighting, self.temperature, self.eps)
        if self.detach_weights:
            w = w.detach()
        return w.reshape(n, hh, ww)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weights(x)
        if self.weighting == "unnormalised":  # the mean of the weighted features (the weights do not sum to 1)
            w = w / (w.shape[1] * w.shape[2])
        return torch.einsum("ndhw,nhw->nd", x, w)

    def extra_repr(self) -> str:
        t = f", T={self.temperature:g}" if self.weighting == "softmax" else ""
        return f"weighting={self.weighting}{t}"
