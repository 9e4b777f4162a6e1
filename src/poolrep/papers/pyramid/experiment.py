"""The ``pyramid`` stage's steps, in the notebook's order: each data set described by every descriptor and ranked
(Holidays, Oxford5K or class protocol), the per-query APs kept for the claims' paired intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ...metrics.retrieval import class_map, holidays_map, oxford_map, rank
from .claims import SUBSTITUTES
from .model import conv_maps, describe, pyramid_defs

DATASETS = ("pairs", "video", "cifar10", "holidays", "holidays_rotated", "oxford5k")  # slugs (titles: figures.py)


@dataclass
class SetResult:
    name: str  # the data set's slug (one of DATASETS); its display title is figures.SET_TITLES[name]
    maps_shape: tuple
    dims: dict[str, int]
    mAP: dict[str, float]
    aps: dict[str, np.ndarray] = field(default_factory=dict)
    order: dict[str, np.ndarray] = field(default_factory=dict)  # rankings kept for figures
    clusters: np.ndarray | None = None  # per query: its camera shot, where one shot holds several queries
    scenes: np.ndarray | None = None  # per query: its scene (a segment of its shot)
    query_clip: np.ndarray | None = None  # per query: its clip's name (the video set)

    @property
    def n_items(self) -> int:
        """How many independent items the set holds (its queries, or its camera shots where ``clusters`` groups
        them): a count of the data set, known before any descriptor is computed."""
        if self.clusters is not None:
            return len(np.unique(self.clusters))
        return len(next(iter(self.aps.values()))) if self.aps else 0

    def items(self, name: str) -> np.ndarray:
        """The independent items of this set for descriptor ``name``: the queries' APs, or where several queries
        come from one camera shot (``clusters``), each shot's mean over its scenes of their queries' mean AP
        (every shot weighs the same; intervals resample shots: the queries of one scene, and the scenes cut from
        one shot, are not independent)."""
        a = np.asarray(self.aps[name], dtype=np.float64)
        if self.clusters is None:
            return a
        sc = self.scenes if self.scenes is not None else np.arange(len(a))
        out = []
        for c in np.unique(self.clusters):
            in_c = self.clusters == c
            out.append(np.mean([a[in_c & (sc == s)].mean() for s in np.unique(sc[in_c])]))
        return np.array(out)

    @property
    def item_word(self) -> str:
        return "queries" if self.clusters is None else "shots"

    def tied(self, names: Sequence[str]) -> np.ndarray:
        """Per independent item (:meth:`items`): does every descriptor of ``names`` give it the same value? Such an
        item adds exactly 0 to every paired difference between them, so it cannot tell descriptors apart."""
        x = np.stack([self.items(n) for n in names])
        return np.ptp(x, axis=0) == 0

    def cluster_means(self) -> None:
        """``mAP`` as the mean over :meth:`items` (each shot weighing the same)."""
        self.mAP = {n: float(self.items(n).mean()) for n in self.aps}


def evaluate(
    name: str,
    desc_q: dict[str, torch.Tensor],
    desc_db: dict[str, torch.Tensor],
    protocol: str,
    keep_order: Sequence[str] = (),
    **gt,
) -> SetResult:
    """Rank and score every descriptor. ``protocol``: ``holidays`` (gt: queries, groups; desc_q rows are the
    queries' database rows), ``oxford`` (gt: positives, junk), ``classes`` (gt: query_labels, db_labels)."""
    if protocol not in ("holidays", "oxford", "classes"):
        raise ValueError(f"unknown protocol {protocol!r}; choose holidays, oxford or classes")
    res = SetResult(name, (), {}, {})
    for n in tqdm(list(desc_db), desc=f"{name} retrieval", leave=False):
        order = rank(desc_q[n], desc_db[n])
        if protocol == "holidays":
            m, aps = holidays_map(order, gt["queries"], gt["groups"])
        elif protocol == "oxford":
            m, aps = oxford_map(order, gt["positives"], gt["junk"])
        else:
            m, aps = class_map(order, gt["query_labels"], gt["db_labels"])
        res.mAP[n], res.aps[n], res.dims[n] = m, aps, int(desc_db[n].shape[1])
        if n in keep_order:
            res.order[n] = order[:, : 20 + max((len(j) for j in gt.get("junk", [])), default=0)]  # top-k after junk
    return res


def select(desc: dict[str, torch.Tensor], rows) -> dict[str, torch.Tensor]:
    rows = torch.as_tensor(np.asarray(rows), dtype=torch.long)
    return {k: v[rows] for k, v in desc.items()}


@dataclass
class Shown:
    """What the top-k figure needs: images, the query rows, their relevant and ignored items."""

    images: list
    queries: list[int]
    relevant: list
    skip: list
    rows: list[int] | None = None  # each shown query's row in the result's rankings (None: the same order)


def run_dataset(kind: str, model: nn.Module, net: str, p: dict, device="cpu") -> tuple[SetResult, Shown | None, dict]:
    """Describe and score one data set with every descriptor in ``p["descriptors"]``.

    ``kind``: pairs | video | cifar10 (substitutes) | holidays | holidays_rotated | oxford5k (the paper's).
    ``p``: the stage's resolved params. Returns (result, what to show, data-source info for the run log).
    """
    from ...data.pairs import load_pairs

    names, pyr = p["descriptors"], pyramid_defs(p.get("pyramids"))
    kw = dict(names=names, pyramids=pyr, net=net, model=model, device=device)
    keep = [p["show_descriptor"]]

    def maps_of(images, what):
        return conv_maps(model, net, images, p["input_px"], p["batch_size"], device, desc=f"{what} {net}")

    if kind in ("pairs", "holidays", "holidays_rotated"):
        if kind == "pairs":
            s = load_pairs(max_side=p["pairs_max_side"])
        else:
            from ...data.holidays import load_holidays

            s = load_holidays(
                p["holidays_root"],
                "rotated" if kind.endswith("rotated") else "original",
                p["holidays_max_side"],
                limit=p["holidays_limit"],
            )
        maps = maps_of(s.images, kind)
        d = describe(maps, **kw)
        q = [g[0] for g in s.groups]
        res = evaluate(kind, select(d, q), d, "holidays", keep, queries=q, groups=s.groups)
        res.maps_shape = tuple(maps.shape[1:])
        shown = Shown(s.images, q, [g[1:] for g in s.groups], [[] for _ in q])
        info = dict(source=s.source, images=len(s.images), queries=len(q))
    elif kind == "video":
        from ...data.scenes import video_scene_set
        from ...data.video import clips

        v = video_scene_set(
            clips(),
            (p["input_px"], p["input_px"]),
            p["video_step"],
            p["video_threshold"],
            p["video_min_len"],
            p["video_max_len"],
            p["video_gap"],
            p["video_max_frames"],
            segment_gap=p["video_segment_gap"],
            queries=p["video_queries"],
        )
        maps = maps_of(v.frames, kind)
        d = describe(maps, **kw)
        res = evaluate(kind, select(d, v.queries), d, "oxford", keep, positives=v.positives, junk=v.junk)
        res.maps_shape = tuple(maps.shape[1:])
        res.query_clip = np.array([v.clips[v.clip[q]] for q in v.queries])
        res.clusters, res.scenes = np.asarray(v.query_shot), np.asarray(v.query_scene)  # shots: independent
        res.cluster_means()
        first = [v.query_scene.index(s) for s in dict.fromkeys(v.query_scene)]  # one query per scene in the figure
        shown = Shown(
            list(v.frames),
            [v.queries[i] for i in first],
            [v.positives[i] for i in first],
            [v.junk[i] for i in first],
            rows=first,
        )
        info = dict(
            source=v.source,
            frames=len(v.frames),
            scenes=len(set(v.query_scene)),
            shots=len(set(v.query_shot)),
            queries=len(v.queries),
            query_frames=p["video_queries"],
            segment_gaps=dict(zip(v.clips, v.segment_gaps)),
            junk_window=dict(zip(v.clips, v.junk_gaps)),
            note="Megamind.avi is an animated film excerpt (rendered, not camera footage)",
        )
    elif kind == "cifar10":
        from ...stages import backbone_rows, load_backbone_features

        z = load_backbone_features(p["profile"])
        if str(z["net"]) != net:
            raise ValueError(f"the backbone cache holds {z['net']} maps, this run uses {net}")
        tr = backbone_rows(z["train_labels"], p["cifar_train_per_class"], p["seed"])
        te = backbone_rows(z["test_labels"], p["cifar_test_per_class"], p["seed"])
        dq, ddb = describe(z["test_maps"][te], **kw), describe(z["train_maps"][tr], **kw)
        res = evaluate(kind, dq, ddb, "classes", (), query_labels=z["test_labels"][te], db_labels=z["train_labels"][tr])
        res.maps_shape = tuple(z["train_maps"].shape[1:])
        shown = None
        info = dict(
            source=f"backbone stage cache ({z['net']} {z['layer']} at {int(z['input_px'])} px, CIFAR-10 JPEG)",
            database=len(tr),
            queries=len(te),
            full={"database": 50000, "queries": 10000},
        )
    elif kind == "oxford5k":
        from ...data.oxford import load_oxford5k

        o = load_oxford5k(p["oxford_root"], p["oxford_crop_query"], p["oxford_max_side"])
        maps = maps_of(o.images, kind)
        d_db = describe(maps, **kw)
        dq = describe(maps_of(o.query_images, "oxford queries"), **kw)
        res = evaluate(kind, dq, d_db, "oxford", keep, positives=o.positives, junk=o.junk)
        res.maps_shape = tuple(maps.shape[1:])
        shown = None
        info = dict(source=o.source, images=len(o.images), queries=len(o.queries), crop_query=o.crop_query)
    else:
        raise ValueError(f"unknown data set {kind!r}; known: {', '.join(DATASETS)}")
    return res, shown, info


OPTIONAL = ("holidays_rotated",)  # used when present, named when absent (no official archive we can name)


def run_all(datasets: Sequence[str], model: nn.Module, net: str, p: dict, device, run):
    """``run_dataset`` for each of ``datasets``, timed and logged in ``run``; returns (results, shown by set). An
    optional set (``OPTIONAL``) whose data is not there is recorded in the run log as absent, with the reason, and
    left out; any other missing data stops the run with its error."""
    from ...data import DataError

    results, shown = [], {}
    for kind in datasets:
        try:
            with run.timed(kind):
                res, show, info = run_dataset(kind, model, net, p, device)
        except DataError as e:
            if kind not in OPTIONAL:
                raise
            run.data(kind, source="absent", absent=str(e).splitlines()[0])
            print(f"{kind}: absent, left out ({str(e).splitlines()[0]})")
            continue
        subst = SUBSTITUTES.get(kind)
        run.data(kind, **info, **({"substitute": subst} if subst else {}))
        results.append(res)
        shown[kind] = show
        print(f"{res.name}: conv map {res.maps_shape}, mAP " + ", ".join(f"{k}={v:.3f}" for k, v in res.mAP.items()))
    if not results:
        raise ValueError(f"no data set could be evaluated of {list(datasets)}")
    return results, shown
