"""Precision-recall of cosine nearest neighbours and its area (Goroshin et al., ICLR 2015, Sec. 5 and Fig. 7).

For one query with ranked neighbours ``r_1, ..., r_k`` (cosine similarity, best first) and relevance ``rel_j``:

    P_k = (1/k) sum_{j<=k} rel_j,      R_k = (1/n) sum_{j<=k} rel_j,      AUC = sum_k (R_k - R_{k-1}) P_k   (R_0 = 0)

The paper: "precision is defined as the proportion of the nearest neighbors that come from the same scene, and
recall is defined as the proportion of frames recalled from that scene", over "the nearest 40 neighbors" (Sec. 5).
``n``, the recall base, is ``"all"`` = every relevant item in the database (the temporal protocol's definition:
its scenes have at most 40 frames, so 40 neighbours can recall a whole scene, and recall runs from 0 to 1), or
``"top_k"`` = ``min(#relevant, k)``: the most relevant items ``k`` neighbours can hold. The class protocol
defines only precision ("the proportion of nearest neighbors that have the same label") over the nearest 40;
with ``all`` as its recall base, recall at 40 neighbours could not exceed 40/5,000 for a class of 5,000 training
images, so its curve would not span the recall axis as the temporal one does; ``top_k`` keeps the temporal
protocol's property that a perfect ranking reaches recall 1 within the 40 neighbours, and is our choice there
(the notebook reports ``all`` beside it). The reported area is the mean of the per-query areas (each query's
area is kept, for intervals); the plotted curve is the mean (R_k, P_k) over queries at each rank ``k``.
:func:`chance_auc` is the expected area of a random ranking, the level a metric must beat to mean anything.

Protocols:
- ``temporal``: the query is the middle frame of each test scene; the database is every other test frame;
  relevant = the other frames of the query's scene.
- ``classes``: each test image queries the training set; relevant = same label; ``k`` = 40.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..normalize import l2_normalize


@dataclass
class PR:
    precision: np.ndarray  # mean precision at ranks 1..k
    recall: np.ndarray  # mean recall at ranks 1..k
    auc: float  # mean of per-query areas
    per_query_auc: np.ndarray
    ranks: np.ndarray  # Q x k neighbour indices into the database
    queries: np.ndarray | None = None  # the query frames (temporal protocol: indices into the features)

    def as_dict(self) -> dict:
        return {"auc": self.auc, "n_queries": len(self.per_query_auc), "k": len(self.precision)}


def _as_tensor(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.detach().float().cpu()


def cosine_neighbours(
    queries, database, k: int, exclude: np.ndarray | None = None, junk: np.ndarray | None = None
) -> np.ndarray:
    """Indices (``Q x k``) of the ``k`` database rows most cosine-similar to each query, best first.

    ``exclude[q]`` (optional, an index into the database or -1) is never returned for query ``q`` (the query
    itself when it is in the database). ``junk`` (optional, ``Q x N`` bool): database rows left out of query
    ``q``'s ranking, neither right nor wrong (Oxford's junk images). Ties are broken by the lower index (stable
    sort).
    """
    q, d = _as_tensor(queries), _as_tensor(database)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise ValueError(f"need queries Q x D and database N x D, got {tuple(q.shape)} and {tuple(d.shape)}")
    ex = None if exclude is None else np.asarray(exclude)
    left = np.zeros(len(q), int)  # items left out per query (a Q x N mask only where junk is given: class_pr's
    if junk is not None:  # paper-size database would make it gigabytes)
        junk = np.asarray(junk, dtype=bool)
        if junk.shape != (len(q), len(d)):
            raise ValueError(f"junk must be Q x N = {(len(q), len(d))}, got {junk.shape}")
        if ex is not None:
            junk = junk.copy()
            rows = np.flatnonzero(ex >= 0)
            junk[rows, ex[rows]] = False  # counted once below
        left += junk.sum(1)
    if ex is not None:
        left += ex >= 0
    n_avail = int(len(d) - (left.max() if len(q) else 0))
    if not 1 <= k <= n_avail:
        raise ValueError(f"k={k} must be in [1, {n_avail}] for a database of {len(d)} items (after left-out ones)")
    q, d = l2_normalize(q), l2_normalize(d)
    sim = (q @ d.T).double()
    if junk is not None:
        sim[torch.from_numpy(junk)] = -np.inf
    if ex is not None:
        rows = np.flatnonzero(ex >= 0)
        sim[torch.from_numpy(rows), torch.from_numpy(ex[rows])] = -np.inf
    order = torch.sort(-sim, dim=1, stable=True).indices[:, :k]
    return order.numpy()


def pr_from_relevance(rel: np.ndarray, n_relevant: np.ndarray, recall_base: str = "all") -> PR:
    """Curves and area from a ``Q x k`` 0/1 relevance matrix of ranked neighbours and each query's count of
    relevant database items."""
    rel = np.asarray(rel, dtype=np.float64)
    if rel.ndim != 2:
        raise ValueError(f"relevance must be Q x k, got shape {rel.shape}")
    n_relevant = np.asarray(n_relevant, dtype=np.float64).reshape(-1)
    if len(n_relevant) != len(rel):
        raise ValueError(f"{len(n_relevant)} relevant counts for {len(rel)} queries")
    if np.any(n_relevant <= 0):
        raise ValueError("every query needs at least one relevant database item")
    k = rel.shape[1]
    if recall_base == "all":
        base = n_relevant
    elif recall_base == "top_k":
        base = np.minimum(n_relevant, k)
    else:
        raise ValueError(f"unknown recall_base {recall_base!r}; use 'all' or 'top_k'")
    hits = np.cumsum(rel, axis=1)
    precision = hits / np.arange(1, k + 1)
    recall = hits / base[:, None]
    drec = np.diff(np.concatenate([np.zeros((len(rel), 1)), recall], axis=1), axis=1)
    per_q = (drec * precision).sum(axis=1)
    return PR(precision.mean(0), recall.mean(0), float(per_q.mean()), per_q, np.empty((len(rel), 0), int))


def temporal_queries(scene_ids) -> tuple[np.ndarray, np.ndarray]:
    """The temporal protocol's queries: the middle frame of each scene of >= 2 frames, and its count of relevant
    frames (the other frames of its scene)."""
    scene_ids = np.asarray(scene_ids)
    queries, n_rel = [], []
    for s in np.unique(scene_ids):
        idx = np.flatnonzero(scene_ids == s)
        if len(idx) < 2:
            continue
        queries.append(idx[len(idx) // 2])
        n_rel.append(len(idx) - 1)
    if not queries:
        raise ValueError("no scene has two frames: nothing to query")
    return np.asarray(queries), np.asarray(n_rel)


def shot_junk(scene_ids, shot_ids, queries) -> np.ndarray:
    """``Q x N`` bool: the frames of each query's camera shot that lie outside its scene. A long shot cut into
    several scenes (segments) holds frames of the same view: an invariant feature that finds them is not wrong, and
    not right either, so they leave the query's ranking (Oxford's junk convention)."""
    scene_ids, shot_ids = np.asarray(scene_ids), np.asarray(shot_ids)
    if len(shot_ids) != len(scene_ids):
        raise ValueError(f"{len(shot_ids)} shot ids for {len(scene_ids)} frames")
    q = np.asarray(queries)
    return (shot_ids[None, :] == shot_ids[q][:, None]) & (scene_ids[None, :] != scene_ids[q][:, None])


def temporal_pr(features, scene_ids, k: int | None = None, recall_base: str = "all", shot_ids=None) -> PR:
    """Temporal protocol: the middle frame of each scene (of >= 2 frames) queries all other frames;
    relevant = same scene. ``k`` None = the whole database (full curve). ``shot_ids`` (optional, per frame): the
    frames of the query's shot outside its scene are junk (``shot_junk``), left out of its ranking."""
    scene_ids = np.asarray(scene_ids)
    if len(scene_ids) != len(features):
        raise ValueError(f"{len(scene_ids)} scene ids for {len(features)} frames")
    queries, n_rel = temporal_queries(scene_ids)
    junk = None if shot_ids is None else shot_junk(scene_ids, shot_ids, queries)
    left = len(features) - 1 - (0 if junk is None else int(junk.sum(1).max()))
    k = left if k is None else min(k, left)
    feats = _as_tensor(features).flatten(1)
    ranks = cosine_neighbours(feats[queries], feats, k, exclude=queries, junk=junk)
    rel = scene_ids[ranks] == scene_ids[queries][:, None]
    out = pr_from_relevance(rel, n_rel, recall_base)
    out.ranks, out.queries = ranks, queries
    return out


def class_pr(query_feats, query_labels, db_feats, db_labels, k: int = 40, recall_base: str = "top_k") -> PR:
    """Class-based protocol: test images query the training set; relevant = same label; ``k`` neighbours."""
    query_labels, db_labels = np.asarray(query_labels), np.asarray(db_labels)
    q, d = _as_tensor(query_feats).flatten(1), _as_tensor(db_feats).flatten(1)
    if len(q) != len(query_labels) or len(d) != len(db_labels):
        raise ValueError("features and labels differ in length")
    ranks = cosine_neighbours(q, d, k)
    rel = db_labels[ranks] == query_labels[:, None]
    n_rel = (db_labels[None, :] == query_labels[:, None]).sum(1)
    out = pr_from_relevance(rel, n_rel, recall_base)
    out.ranks = ranks
    return out


def chance_auc(n_relevant, n_database, k: int, recall_base: str = "all", draws: int = 200, seed: int = 0) -> float:
    """Expected area (mean over queries) of a random ranking: for each query, ``draws`` random orders of a database
    of ``n_database`` items (one count, or one per query where junk leaves each query its own database) of which
    ``n_relevant[q]`` are relevant, cut at ``k``, scored like the real rankings (Monte Carlo, seeded)."""
    n_relevant = np.asarray(n_relevant).reshape(-1)
    n_db = np.broadcast_to(np.asarray(n_database, dtype=int).reshape(-1), n_relevant.shape)
    rng = np.random.default_rng(seed)
    aucs = []
    for n_rel, n in zip(n_relevant, n_db):
        rel = np.zeros((draws, n), bool)
        rel[:, :n_rel] = True
        rel = rng.permuted(rel, axis=1)[:, : min(k, n)]
        aucs.append(pr_from_relevance(rel, np.full(draws, n_rel), recall_base).auc)
    return float(np.mean(aucs))
