"""Classification accuracy of a trained model, kept per test item so that comparisons can be paired.

``correct(model, x, y)`` is the 0/1 vector of right answers (argmax of the logits == label), computed in batches
(``features.apply_batched``); ``accuracy`` is its mean. Paired intervals between two models compare their
``correct`` vectors item by item (:mod:`poolrep.claims`).
"""

from __future__ import annotations

import numpy as np
import torch

from ..features import apply_batched


def predict(model, x, batch_size: int = 256, device: torch.device | str = "cpu") -> torch.Tensor:
    """Logits of ``model`` for ``x`` (eval mode, in batches), on the cpu."""
    return apply_batched(model, x, batch_size=batch_size, device=device)


def correct(model, x, y, batch_size: int = 256, device: torch.device | str = "cpu") -> np.ndarray:
    """Per-item 0/1 (bool) vector: is the arg-max prediction of ``model`` on ``x[i]`` equal to ``y[i]``?"""
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} inputs but {len(y)} labels")
    return (predict(model, x, batch_size, device).argmax(1) == y).numpy()


def accuracy(model, x, y, batch_size: int = 256, device: torch.device | str = "cpu") -> float:
    """Fraction of ``x`` that ``model`` classifies right."""
    return float(torch.as_tensor(correct(model, x, y, batch_size, device)).float().mean())
