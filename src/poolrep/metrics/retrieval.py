"""Average precision for instance retrieval, under the two official protocols, and mAP.

Both official tools integrate the precision-recall curve with the trapezoid rule. For a ranked list, let the
k-th relevant item (k = 0, 1, ...) sit at 0-based position r_k (after removing ignored items); with n relevant
items in all,

    AP = sum_k (1/n) * (p0_k + p1_k) / 2,   p0_k = k / r_k  (1 if r_k = 0),   p1_k = (k + 1) / (r_k + 1)

- ``holidays_ap``: INRIA Holidays' ``holidays_map.py`` (Jegou & Douze 2008): the query image is removed from its
  result list before ranks are counted; relevant = the other images of its group; n = their number.
- ``oxford_ap``: Oxford's ``compute_ap.cpp`` (Philbin et al. 2007): ``junk`` images are skipped (they neither
  count as hits nor take a rank); relevant = good + ok; the query image is NOT removed (it is itself in good).
  Its form: old_recall = 0, old_precision = 1; for each non-junk item j: recall = hits / n,
  precision = hits / (j + 1), ap += (recall - old_recall) * (old_precision + precision) / 2.

Both are written here from those definitions (not copied); ``trapezoid_ap`` is the vectorised form used for
whole similarity matrices (CIFAR-10 class retrieval: 1,000 queries x 3,000 items), checked against the loop
forms in tests. An item relevant to nothing still takes ranks; a query with no relevant item is an error
(AP undefined), as in the official tools' inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from ..normalize import l2_normalize


def holidays_ap(ranked: Sequence, query, relevant: Iterable) -> float:
    """INRIA Holidays AP of one query. ``ranked``: database ids, best first (may include the query)."""
    relevant = set(relevant) - {query}
    if not relevant:
        raise ValueError(f"query {query!r} has no relevant image: AP undefined")
    ranks = []
    rank = 0
    for item in ranked:
        if item == query:  # "if the query image is ranked, it is ignored in the scoring"
            continue
        if item in relevant:
            ranks.append(rank)
        rank += 1
    ap, step = 0.0, 1.0 / len(relevant)
    for ntp, r in enumerate(ranks):
        p0 = 1.0 if r == 0 else ntp / r
        p1 = (ntp + 1) / (r + 1)
        ap += (p0 + p1) * step / 2.0
    return ap


def oxford_ap(ranked: Sequence, positives: Iterable, junk: Iterable = ()) -> float:
    """Oxford Buildings AP of one query (``compute_ap.cpp``): positives = good + ok, junk ignored."""
    pos, junk = set(positives), set(junk)
    if not pos:
        raise ValueError("no positive (good/ok) image: AP undefined")
    old_recall, old_precision, ap = 0.0, 1.0, 0.0
    hits, j = 0, 0
    for item in ranked:
        if item in junk:
            continue
        if item in pos:
            hits += 1
        recall = hits / len(pos)
        precision = hits / (j + 1.0)
        ap += (recall - old_recall) * ((old_precision + precision) / 2.0)
        old_recall, old_precision = recall, precision
        j += 1
    return ap


def trapezoid_ap(relevant: np.ndarray, n_relevant: np.ndarray | None = None) -> np.ndarray:
    """Vectorised trapezoid AP. ``relevant``: bool ``Q x N``, each row in ranked order with ignored items
    (query, junk) already removed. ``n_relevant``: relevant count per query (default: row sums; pass it when
    relevant items may be missing from the list). Returns ``Q`` APs."""
    rel = np.asarray(relevant, dtype=bool)
    if rel.ndim != 2:
        raise ValueError(f"relevant must be Q x N, got shape {rel.shape}")
    n = rel.sum(1) if n_relevant is None else np.asarray(n_relevant)
    if np.any(n <= 0):
        raise ValueError("a query has no relevant item: AP undefined")
    ntp = np.cumsum(rel, axis=1) - rel  # hits before each position
    r = np.arange(rel.shape[1])[None, :]
    p0 = np.where(r == 0, 1.0, ntp / np.maximum(r, 1))
    p1 = (ntp + 1) / (r + 1)
    return np.where(rel, (p0 + p1) / 2.0, 0.0).sum(1) / n


def rank(queries: torch.Tensor, database: torch.Tensor, chunk: int = 1024) -> np.ndarray:
    """Database indices sorted by Euclidean distance of L2-normalised descriptors (= by cosine similarity,
    descending), ``Q x N``. Ties keep database order (stable sort). The database may be float16; it is
    normalised and multiplied in float32 chunks of ``chunk`` rows (memory stays ~ Q x N)."""
    if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
        raise ValueError(f"descriptors must be Q x D and N x D, got {tuple(queries.shape)} and {tuple(database.shape)}")
    q = l2_normalize(queries.float())
    sims = torch.empty(len(q), len(database), dtype=torch.float32, device=q.device)
    for s in range(0, len(database), chunk):
        sims[:, s : s + chunk] = q @ l2_normalize(database[s : s + chunk].to(q.device).float()).T
    return torch.sort(-sims, dim=1, stable=True).indices.cpu().numpy()


def holidays_map(
    order: np.ndarray, queries: Sequence[int], groups: Sequence[Sequence[int]]
) -> tuple[float, np.ndarray]:
    """mAP under the Holidays protocol. ``order``: ``Q x N`` ranking (``rank``) of query ``queries[i]`` against
    the whole database; ``groups[i]``: the database indices of its group (the query among them)."""
    aps = np.array([holidays_ap(order[i], q, g) for i, (q, g) in enumerate(zip(queries, groups))])
    return float(aps.mean()), aps


def oxford_map(
    order: np.ndarray, positives: Sequence[Iterable[int]], junk: Sequence[Iterable[int]]
) -> tuple[float, np.ndarray]:
    aps = np.array([oxford_ap(order[i], p, j) for i, (p, j) in enumerate(zip(positives, junk))])
    return float(aps.mean()), aps


def class_map(order: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray) -> tuple[float, np.ndarray]:
    """mAP of class retrieval (relevant = same label; query not in the database), trapezoid rule."""
    rel = db_labels[order] == np.asarray(query_labels)[:, None]
    aps = trapezoid_ap(rel)
    return float(aps.mean()), aps
