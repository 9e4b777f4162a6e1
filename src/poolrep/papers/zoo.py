"""The pooling zoo: every operator of the five papers, plus global average, max and GeM, on one backbone.

All operators read the same ImageNet MobileNetV2 maps (the ``backbone`` stage: last block ``features.18``,
1280 x 6 x 6 at 192 px, and the block before it, ``features.17``, 320 x 6 x 6) and are evaluated the same way:
a linear probe on CIFAR-10, CIFAR-10 class retrieval and instance / scene retrieval, with their output dimension
and pooling time per image.

Some operators need more than the maps; each gets it here, in the most direct form the backbone allows:
- auto-pooling learns its non-negative P from consecutive frames of the mirror's real videos. With 1280 x 36
  inputs a full P (K x 46,080) is out of reach on 2 cores, so P pools the 36 locations and is shared by all
  channels (``SharedAutoPool``): learned pooling regions against the fixed grids of spatial pooling.
- entropy pooling uses the backbone's own ImageNet classifier (1000 classes) at every location.
- attention pooling is trained with a linear softmax head on the CIFAR-10 training maps (labels used).
- cross-layer pooling takes ``features.17`` as layer t (PCA-reduced 3x3 neighbourhoods) and ``features.18`` as t+1.

Your own operator (params.yaml ``zoo.extra_operators``; README "Evaluate your own pooling operator")
---------------------------------------------------------------------------------------------------
The contract, the same as every built-in operator's:

- a class that subclasses ``torch.nn.Module``; ``forward(x)`` takes ``x``, float32 maps ``N x C x H x W`` (here
  ``features.18``: C = 1280, 6 x 6), and returns a tensor ``N x D``: one D-dimensional descriptor per map, D the
  same for every batch. It is called under ``torch.no_grad()`` in eval mode, in batches, on the run's device
  (``.to(device)``), so keep learned tensors as parameters or buffers;
- optional ``fit(train_maps, labels)``: called once, before anything is evaluated, with the CIFAR-10 training maps
  (float32 CPU tensor ``N x C x H x W``) and their labels (int64 CPU tensor ``N``), like the zoo's learned
  operators (attention, cross-layer's PCA). Its return value is ignored. Test maps are never passed to it.

An entry of ``zoo.extra_operators`` names the class by import path, ``"package.module:ClassName"``, constructed with
no arguments; or a mapping ``{class: "package.module:ClassName", kwargs: {...}, id: ...}`` (``kwargs`` and ``id``
optional); or the name of an entry point of an installed distribution in the group ``poolrep.pooling``
(``[project.entry-points."poolrep.pooling"] softpool = "mypools.softpool:SoftPool"``). The repository root is
importable, so ``mypools/softpool.py`` there is ``mypools.softpool``; elsewhere use PYTHONPATH or install it.
Import paths are resolved and the classes constructed when the notebook starts (:func:`resolve_extra_operators`:
a path that does not resolve is an :class:`ExtraOperatorError` naming the entry, what failed and the fix); after
``fit``, each operator pools a probe batch of 4 training maps before the evaluation (:func:`build_extra_ops`: an
output that is not ``N x D`` is an :class:`OperatorOutputError` naming the operator and both shapes). Extra
operators get rows in the zoo's table (paper ``extra``) and entries in metrics.json exactly like the built-in
ones. Their id (metrics.json's key) is the slug of the class name (``SoftPool`` -> ``softpool``) unless given.
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import io, paths
from ..features import apply_batched
from ..heads import fit_head, head_recipe
from ..pooling.attention import SpatialAttentionPool
from ..pooling.autopool import train_autopool
from ..pooling.crosslayer import CrossLayerPool, sample_local_features
from ..pooling.entropy import EntropyPool
from ..pooling.global_pool import GeM, GlobalAvgPool, GlobalMaxPool
from ..pooling.group_l2 import GroupL2Pool
from ..pooling.postprocess import PostProcess, fit_pca
from ..pooling.spatial import MultiGridPool, SpatialPool
from ..pooling.window import HybridPool, WindowMaxPool


class SharedAutoPool(nn.Module):
    """Auto-pooling over locations, shared by channels: ``N x C x H x W -> N x C*K``, ``z_c = P x_c`` with
    ``x_c`` the ``H*W`` values of channel c and ``P >= 0`` (K x H*W) learned by ``train_autopool``."""

    def __init__(self, P: torch.Tensor):
        super().__init__()
        if P.ndim != 2 or (P < 0).any():
            raise ValueError("P must be a non-negative K x (H*W) matrix")
        self.P = nn.Buffer(P.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[2] * x.shape[3] != self.P.shape[1]:
            raise ValueError(f"expected N x C x H x W maps with H*W = {self.P.shape[1]}, got {tuple(x.shape)}")
        n, c = x.shape[:2]
        return (x.reshape(n, c, -1).float() @ self.P.T).reshape(n, -1)


class CrossLayerOnBoth(nn.Module):
    """Adapter: the zoo calls ``op(last, prev)``; cross-layer pooling wants ``(layer t, layer t+1)``."""

    def __init__(self, cross: CrossLayerPool):
        super().__init__()
        self.cross = cross

    def forward(self, last: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        return self.cross(prev, last)


@dataclass
class Op:
    name: str
    paper: str  # which paper (or "reference")
    module: str  # where the operator lives
    pool: nn.Module
    two_layers: bool = False  # needs (last, prev) maps
    learned: str = "none"  # what it learned from, if anything
    post_process: bool = False  # cross-layer's post-processing (poolrep.pooling.postprocess.PostProcess) after pooling
    id: str = ""  # short stable key for machines (metrics.json); default: the slug of ``name``

    def __post_init__(self):
        self.id = self.id or io.slug(self.name)
        if not io.SLUG_RE.match(self.id):
            raise ValueError(f"operator {self.name!r}: id {self.id!r} must be lower-case letters, digits and _")


def learn_shared_autopool(
    pairs_a: np.ndarray, pairs_b: np.ndarray, K: int, lam: float, epochs: int, lr: float, batch: int, seed: int, device
) -> tuple[SharedAutoPool, dict]:
    """Train P (K x H*W) on maps of consecutive frames: every channel of every pair is one training pair."""
    n, c, h, w = pairs_a.shape
    xa = torch.as_tensor(pairs_a, dtype=torch.float32).reshape(n * c, h * w)
    xb = torch.as_tensor(pairs_b, dtype=torch.float32).reshape(n * c, h * w)
    keep = (xa.sum(1) + xb.sum(1)) > 0  # channels silent in both frames carry no information about P
    xa, xb = xa[keep], xb[keep]

    def batches(ep):
        g = torch.Generator().manual_seed(seed + ep)
        order = torch.randperm(len(xa), generator=g)
        for s in range(0, len(order), batch):
            i = order[s : s + batch]
            yield xa[i], xb[i]

    ap, log = train_autopool(
        batches, K=K, D=h * w, lam=lam, epochs=epochs, lr=lr, seed=seed, device=device, desc="zoo auto-pooling"
    )
    # frame_pairs: consecutive-frame pairs; channel_pairs: the training pairs P sees (one per non-silent channel)
    return SharedAutoPool(ap.P.cpu()), {
        "frame_pairs": int(n),
        "channel_pairs": int(len(xa)),
        "cost": log.cost,
        "seconds": log.seconds,
    }


def train_attention(train_maps: np.ndarray, labels: np.ndarray, head: dict, seed: int, device) -> SpatialAttentionPool:
    """Spatial attention pooling trained with a linear softmax head on labelled maps, with the entropy stage's head
    recipe (``poolrep.heads.fit_head``: SGD, warm-up then cosine, its epochs, batch, learning rate, weight
    decay and dropout); the classifier is discarded, the attention kept."""
    h, _ = fit_head(
        "attention",
        seed,
        torch.as_tensor(train_maps),
        torch.as_tensor(labels),
        lr=head["head_lr"],
        **head_recipe(head),
        device=device,
    )
    return h.pool.eval()


# The zoo's video benchmark: the pyramid stage's scenes, one (middle) query per scene, a junk window of 1 sampled
# frame (the pyramid stage's `video_gap` is per-clip `auto`, which leaves no relevant frame beyond the window for
# the middle frame of some scenes, e.g. box.mp4's), plus the rest of the query's camera shot (data.scenes).
VIDEO_GAP = 1


def build_ops(
    p: dict,
    train_maps,
    train_prev,
    train_labels,
    video_pairs,
    classifier: nn.Linear,
    device,
    head: dict,
    pyramids: dict,
) -> tuple[list[Op], dict]:
    """The zoo's operators, each configured from params ``p``; ``head``: the entropy stage's head recipe (its
    ``head_*`` parameters), with which the attention baseline is trained as there; ``pyramids``: the pyramid
    stage's compositions. Returns (ops, info about what was learned)."""
    info = {}
    ops = [
        Op("global average (GAP)", "reference", "pooling.global_pool", GlobalAvgPool(), id="gap"),
        Op("global max", "reference", "pooling.global_pool", GlobalMaxPool(), id="gmp"),
        Op(f"GeM p={p['gem_p']:g}", "reference", "pooling.global_pool", GeM(p["gem_p"]), id=_gem_id(p)),
        Op("spatial sum 2x2", "auto-pooling (SP baseline)", "pooling.spatial", SpatialPool(2, "sum"), id="sp_2x2"),
        Op(
            "spatial sum 1x1+2x2",
            "auto-pooling (SP baseline)",
            "pooling.spatial",
            MultiGridPool((1, 2), "sum"),
            id="sp_1x1_2x2",
        ),
    ]
    a, b = video_pairs
    t0 = time.perf_counter()
    ap, ap_info = learn_shared_autopool(
        a,
        b,
        p["autopool_k"],
        p["autopool_lam"],
        p["autopool_epochs"],
        p["autopool_lr"],
        p["autopool_batch"],
        p["seed"],
        device,
    )
    info["autopool"] = {**ap_info, "train_s": time.perf_counter() - t0}
    ops.append(
        Op(
            f"auto-pooling K={p['autopool_k']} (shared over channels)",
            "auto-pooling",
            "pooling.autopool",
            ap,
            learned=(
                f"{len(a)} consecutive-frame pairs of real video, from frames in no test scene; "
                f"{p['autopool_epochs']} epochs, cost {ap_info['cost'][0]:.4g} -> "
                f"{ap_info['cost'][-1]:.4g} per epoch"
            ),
            id="autopool",
        )
    )
    ops.append(
        Op(
            f"L2 group pooling ({p['l2_group']} ch, {p['l2_kernel']}x{p['l2_kernel']})",
            "slow features",
            "pooling.group_l2",
            GroupL2Pool(p["l2_group"], p["l2_kernel"]),
            id="l2_group",
        )
    )
    ops += window_ops(p["windows"], pyramids)
    t0 = time.perf_counter()
    local = sample_local_features(train_prev, 3, 3, p["cross_pca_samples"], p["seed"])
    mean, comp, _ = fit_pca(local, p["cross_pca_dim"], p["seed"])
    info["crosslayer"] = {"pca_dim": p["cross_pca_dim"], "pca_samples": len(local), "fit_s": time.perf_counter() - t0}
    # layer t+1 weighs 3x3 neighbourhoods of layer t through its own 1x1 positions: the zoo caches only two layers,
    # so the paper's Eq. 1 correspondence (t+1 = an m x n convolution of t) is not matched here; named in the name
    ops.append(
        Op(
            f"cross-layer (17 -> 18 as 1x1 weights, PCA {p['cross_pca_dim']}, standardised + signed sqrt)",
            "cross-layer",
            "pooling.crosslayer",
            CrossLayerOnBoth(CrossLayerPool(mean, comp, normalise_sum=True)),
            two_layers=True,
            post_process=True,
            learned="PCA and post-processing statistics on CIFAR-10 training maps",
            id="cross_layer",
        )
    )
    ops.append(
        Op(
            "entropy (ImageNet classifier, linear weights)",
            "entropy",
            "pooling.entropy",
            EntropyPool(classifier, "linear"),
            learned="none (backbone's own classifier)",
            id="entropy_linear",
        )
    )
    ops.append(
        Op(
            f"entropy (ImageNet classifier, softmax T={p['entropy_t']:g} log C)",
            "entropy",
            "pooling.entropy",
            EntropyPool(classifier, "softmax", p["entropy_t"]),
            learned="none (backbone's own classifier)",
            id="entropy_softmax",
        )
    )
    t0 = time.perf_counter()
    att = train_attention(train_maps, train_labels, head, p["seed"], device)
    info["attention"] = {"train_s": time.perf_counter() - t0}
    ops.append(
        Op(
            "spatial attention",
            "entropy (baseline)",
            "pooling.attention",
            att,
            learned=f"CIFAR-10 training labels (the entropy stage's head recipe, {head['head_epochs']} epochs)",
            id="attention",
        )
    )
    if [o.id for o in ops] != builtin_ids(p):  # builtin_ids reserves these before the operators are built
        raise AssertionError(f"built-in ids {[o.id for o in ops]} differ from builtin_ids(p) {builtin_ids(p)}")
    return ops, info


def _gem_id(p: dict) -> str:
    return io.slug(f"gem_p{p['gem_p']:g}")  # p = 3 -> gem_p3, p = 2.5 -> gem_p2_5


def builtin_ids(p: dict) -> list[str]:
    """The ids (metrics.json keys) of ``build_ops(p, ...)``'s operators, in its order, known before any is built (an
    extra operator may not take one)."""
    return [
        "gap",
        "gmp",
        _gem_id(p),
        "sp_2x2",
        "sp_1x1_2x2",
        "autopool",
        "l2_group",
        *(io.slug(w) for w in p["windows"]),
        "hybrid",
        "cross_layer",
        "entropy_linear",
        "entropy_softmax",
        "attention",
    ]


def window_ops(windows, pyramids: dict) -> list[Op]:
    """The windows and pyramids of Jose et al. (Tables 1 and 2) named in ``windows``, composed as the pyramid stage
    composes them (``pyramids``), and their hybrid pooling."""
    ops = [
        Op(f"window max {w}", "pyramid", "pooling.window", WindowMaxPool(w, pyramids), id=io.slug(w)) for w in windows
    ]
    return ops + [Op("hybrid max+avg", "pyramid", "pooling.window", HybridPool(), id="hybrid")]


# ------------------------------------------------------------------------------- your operator in the zoo
ENTRY_POINT_GROUP = "poolrep.pooling"
EXTRA_PAPER = "extra"  # the ``paper`` column of an operator from ``zoo.extra_operators``
PROBE_MAPS = 4  # maps in the probe batch each extra operator pools before the evaluation


class ExtraOperatorError(ValueError):
    """An entry of ``zoo.extra_operators`` that does not give a usable operator (import, construction, fit)."""


class OperatorOutputError(ValueError):
    """An operator whose output is not one descriptor per map (``N x D``)."""


@dataclass
class ExtraOperator:
    """One resolved entry of ``zoo.extra_operators``: the constructed module and how to show it."""

    entry: str  # the import path (or entry-point name) as written in params.yaml
    path: str  # "package.module:ClassName"
    pool: nn.Module
    id: str
    name: str  # the table's display name: the class name, with its kwargs if any
    kwargs: dict = field(default_factory=dict)

    @property
    def module(self) -> str:
        return self.path.split(":")[0]


def _where(entry: Any) -> str:
    return f"zoo.extra_operators entry {entry!r}"


def _colon_fix(path: str) -> str:
    head, _, tail = path.rpartition(".")
    return f"'{head}:{tail}'" if head else "'package.module:ClassName'"


def load_class(entry: str) -> tuple[type, str]:
    """``(class, "package.module:ClassName")`` of one import path, or of the name of an entry point in the group
    ``poolrep.pooling``. Every failure is one :class:`ExtraOperatorError` that names ``entry``, what failed and the
    fix."""
    if not isinstance(entry, str) or not entry.strip():
        raise ExtraOperatorError(f"{_where(entry)}: expected a string 'package.module:ClassName'")
    entry = entry.strip()
    path = entry
    if ":" not in entry:
        from importlib.metadata import entry_points

        found = list(entry_points(group=ENTRY_POINT_GROUP, name=entry))
        if not found:
            raise ExtraOperatorError(
                f"{_where(entry)} is not an import path 'package.module:ClassName' (it has no ':') and no installed "
                f"distribution declares an entry point {entry!r} in the group {ENTRY_POINT_GROUP!r}; "
                f"write it as {_colon_fix(entry)}"
            )
        path = found[0].value.replace(" ", "")
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ExtraOperatorError(
            f"{_where(entry)}: {path!r} is not 'package.module:ClassName' (one ':' between a module and a class name)"
        )
    root = str(paths.ROOT)  # a module in the repository (mypools/softpool.py) imports as mypools.softpool
    if root not in sys.path:
        sys.path.append(root)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ExtraOperatorError(
                f"{_where(entry)}: no module named {e.name!r} (searched the repository root {root} and sys.path); "
                f"put it under the repository root, add its folder to PYTHONPATH, or pip install it"
            ) from e
        raise ExtraOperatorError(
            f"{_where(entry)}: importing {module_name!r} failed, it imports {e.name!r}, which "
            f"is not installed ({e}); install it or drop that import"
        ) from e
    except Exception as e:  # a syntax error or an exception raised while the module runs
        raise ExtraOperatorError(
            f"{_where(entry)}: importing {module_name!r} raised {type(e).__name__}: {e}; fix the module"
        ) from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            classes = sorted(
                k
                for k, v in vars(module).items()
                if isinstance(v, type)
                and issubclass(v, nn.Module)
                and not k.startswith("_")
                and v.__module__ == module.__name__
            )
            raise ExtraOperatorError(
                f"{_where(entry)}: module {module_name!r} ({getattr(module, '__file__', '?')}) has no attribute "
                f"{attr!r}; nn.Module classes it defines: {', '.join(classes) or 'none'}; fix the name after ':'"
            )
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ExtraOperatorError(
            f"{_where(entry)}: {path!r} is {obj!r}, not a subclass of torch.nn.Module; the "
            "zoo's operators are nn.Modules whose forward(x) maps N x C x H x W to N x D"
        )
    return obj, f"{module_name}:{attr}"


def resolve_extra_operators(entries, reserved=()) -> list[ExtraOperator]:
    """``zoo.extra_operators`` (a list of ``"package.module:ClassName"`` strings, entry-point names, or mappings
    ``{class, kwargs, id}``) as constructed modules, in order. Cheap, so the notebook calls it first: a bad entry
    fails in seconds, not after the maps are loaded. ``reserved``: ids already taken (:func:`builtin_ids`)."""
    if entries is None:
        return []
    if isinstance(entries, (str, dict)) or not isinstance(entries, (list, tuple)):
        raise ExtraOperatorError(
            f"zoo.extra_operators must be a list, e.g. ['mypools.softpool:SoftPool'], not {entries!r}"
        )
    out: list[ExtraOperator] = []
    taken = {i: "a built-in operator" for i in reserved}
    for entry in entries:
        kwargs, given_id = {}, None
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - {"class", "kwargs", "id"})
            if "class" not in entry or unknown:
                raise ExtraOperatorError(
                    f"{_where(entry)}: a mapping needs 'class' ('package.module:ClassName') and "
                    f"may have 'kwargs' and 'id'; unknown keys: {', '.join(unknown) or 'none'}"
                )
            kwargs, given_id = entry.get("kwargs") or {}, entry.get("id")
            if not isinstance(kwargs, dict):
                raise ExtraOperatorError(f"{_where(entry)}: 'kwargs' must be a mapping of constructor arguments")
            label = entry["class"]
        else:
            label = entry
        cls, path = load_class(label)
        try:
            pool = cls(**kwargs)
        except Exception as e:
            raise ExtraOperatorError(
                f"{_where(entry)}: {cls.__name__}(**{kwargs!r}) raised {type(e).__name__}: "
                f"{e}; an extra operator is constructed with no arguments (or the mapping's "
                "'kwargs')"
            ) from e
        if not isinstance(pool, nn.Module):
            raise ExtraOperatorError(f"{_where(entry)}: {cls.__name__}() is a {type(pool).__name__}, not an nn.Module")
        fit = getattr(pool, "fit", None)
        if fit is not None and not callable(fit):
            raise ExtraOperatorError(f"{_where(entry)}: {cls.__name__}.fit is not a method fit(train_maps, labels)")
        op_id = io.slug(cls.__name__) if given_id is None else str(given_id)
        if not io.SLUG_RE.match(op_id):
            raise ExtraOperatorError(f"{_where(entry)}: id {op_id!r} must be lower-case letters, digits and _")
        if op_id in taken:
            raise ExtraOperatorError(
                f"{_where(entry)}: its id {op_id!r} (metrics.json key) is already taken by {taken[op_id]}; give the "
                f"entry its own id: {{class: {path!r}, id: {op_id + '_2'!r}}}, or rename the class"
            )
        taken[op_id] = _where(entry)
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        out.append(
            ExtraOperator(
                str(label), path, pool, op_id, f"{cls.__name__}({args})" if args else cls.__name__, dict(kwargs)
            )
        )
    return out


def check_output(name: str, out, n: int, in_shape) -> None:
    """Raise :class:`OperatorOutputError` unless ``out`` is a 2-D tensor of ``n`` rows and D >= 1 columns: one
    descriptor per map of the batch of shape ``in_shape``."""
    shape = tuple(getattr(out, "shape", ()))
    if not isinstance(out, torch.Tensor):
        got = f"a {type(out).__name__}"
    elif len(shape) != 2 or shape[0] != n or shape[1] < 1:
        got = f"shape {shape}"
    else:
        return
    raise OperatorOutputError(
        f"operator {name!r} returned {got} for a batch of maps {' x '.join(map(str, in_shape))}; expected a tensor "
        f"N x D = {n} x D (one D-dimensional descriptor per map, D >= 1). Fix its forward(x): e.g. pool over the "
        "locations, x.flatten(2).mean(-1), and flatten what remains, out.flatten(1); never reduce over the batch"
    )


def build_extra_ops(
    extras: list[ExtraOperator], train_maps: np.ndarray, train_labels: np.ndarray, device, probe: int = PROBE_MAPS
) -> tuple[list[Op], dict[str, float]]:
    """Each resolved extra operator fitted (``fit(train_maps, labels)``, where it has one, once, on CPU float32 /
    int64 tensors) and then checked on a probe batch of the first ``probe`` training maps on ``device``: a wrong
    output shape (:func:`check_output`) or non-finite values fail here, before the expensive evaluation. Returns
    ``(ops, fit seconds by id)``."""
    ops, fit_s = [], {}
    x_tr = y_tr = None
    for ex in extras:
        fit = getattr(ex.pool, "fit", None)
        learned = "none"
        if fit is not None:
            if x_tr is None:
                x_tr = torch.as_tensor(np.asarray(train_maps, dtype=np.float32))
                y_tr = torch.as_tensor(np.asarray(train_labels, dtype=np.int64))
            t0 = time.perf_counter()
            try:
                fit(x_tr, y_tr)
            except Exception as e:
                raise ExtraOperatorError(
                    f"{_where(ex.entry)}: {ex.name}.fit(train_maps {tuple(x_tr.shape)}, labels "
                    f"{tuple(y_tr.shape)}) raised {type(e).__name__}: {e}"
                ) from e
            fit_s[ex.id] = time.perf_counter() - t0
            learned = f"fit() on the CIFAR-10 training maps and labels ({len(x_tr)} images)"
        op = Op(ex.name, EXTRA_PAPER, ex.module, ex.pool, learned=learned, id=ex.id)
        x = torch.as_tensor(np.asarray(train_maps[:probe], dtype=np.float32)).to(device)
        pool = op.pool.to(device).eval()
        try:
            with torch.no_grad():
                out = pool(x)
        except Exception as e:
            raise ExtraOperatorError(
                f"{_where(ex.entry)}: {ex.name}.forward on a probe batch of maps "
                f"{' x '.join(map(str, x.shape))} raised {type(e).__name__}: {e}"
            ) from e
        try:
            check_output(ex.name, out, len(x), tuple(x.shape))
        except OperatorOutputError as e:
            raise OperatorOutputError(f"{_where(ex.entry)}: {e}") from None
        if not torch.isfinite(out).all():
            raise OperatorOutputError(
                f"{_where(ex.entry)}: operator {ex.name!r} returned NaN or inf on a probe batch "
                f"of maps {' x '.join(map(str, x.shape))}; descriptors must be finite"
            )
        ops.append(op)
    return ops, fit_s


def apply(
    op: Op, last: np.ndarray, prev: np.ndarray | None, batch: int = 100, device="cpu"
) -> tuple[np.ndarray, float]:
    """Pooled descriptors (float32 N x D) and the pooling time per image in milliseconds (after one warm-up). Every
    batch's output is checked to be one descriptor per map (:func:`check_output`)."""
    pool = op.pool.to(device).eval()

    def fn(*x):
        out = pool(*x)
        check_output(op.name, out, len(x[0]), tuple(x[0].shape))
        return out

    return apply_batched(
        fn, last, prev if op.two_layers else None, batch_size=batch, device=device, dtype=np.float32, timed=True
    )


def linear_probe(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    yte: np.ndarray,
    alphas=(0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0),
) -> tuple[np.ndarray, float]:
    """(per test item, is it classified right; chosen alpha) of a ridge linear classifier on standardised
    descriptors (scikit-learn).

    Ridge has a closed form, so every operator gets the same cost and no convergence tuning; its regularisation
    is chosen per operator by efficient leave-one-out on the training set (``RidgeClassifierCV``), since one fixed
    alpha would favour some descriptor dimensions over others.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(xtr)
    clf = RidgeClassifierCV(alphas=alphas).fit(sc.transform(xtr), ytr)
    return clf.predict(sc.transform(xte)) == np.asarray(yte), float(clf.alpha_)


# ------------------------------------------------------------------------------------------------- the stage
# Each measure: its label and the scale of its per-item values (0/1 hits -> %, per-query AP -> mAP as is).
METRICS = {
    "cifar10_probe_acc": ("CIFAR-10 linear probe accuracy (%)", 100.0),
    "cifar10_class_mAP": ("CIFAR-10 class-retrieval mAP", 1.0),
    "pairs_mAP": ("pairs mAP (Holidays protocol)", 1.0),
    "video_scene_mAP": ("video scene mAP (Oxford protocol)", 1.0),
}
# Each measure's key in metrics.json (the tables keep the column names above).
METRIC_IDS = {
    "cifar10_probe_acc": "cifar10_probe_acc",
    "cifar10_class_mAP": "cifar10_class_map",
    "pairs_mAP": "pairs_map",
    "video_scene_mAP": "video_scene_map",
}


def inputs(p: dict, bb: dict, device, run) -> dict:
    """Everything the operators are evaluated on besides the cached CIFAR-10 maps ``bb``: the ``pairs/`` photographs'
    maps, the video scene set of the ``pyramid`` stage (defined once, by its parameters, over all the mirror's
    clips) and consecutive-frame pairs for auto-pooling's P taken only from frames that lie in no scene (so P never
    sees a test frame), all through the same network at ``p['input_px']``."""
    from .. import config
    from ..data import source_of
    from ..data.pairs import load_pairs
    from ..data.scenes import outside_scenes, video_scene_set
    from ..data.video import clips, read_frames
    from ..features import LAST_CONV, PREV_CONV, extract, extractor

    net, px = str(bb["net"]), p["input_px"]
    fx, mean, std = extractor(net, [PREV_CONV[net], LAST_CONV[net]])
    pairs = load_pairs()
    run.data("pairs", source=source_of("pairs"), images=len(pairs.images), substitute="stands in for INRIA Holidays")
    pm = extract(fx, mean, std, pairs.images, px, 16, device, desc="pairs")

    pyr = config.resolve("pyramid", profile=p["profile"])
    paths_ = clips()
    scenes = video_scene_set(
        paths_,
        (px, px),
        pyr["video_step"],
        pyr["video_threshold"],
        pyr["video_min_len"],
        pyr["video_max_len"],
        VIDEO_GAP,
        pyr["video_max_frames"],
        segment_gap=pyr["video_segment_gap"],
    )
    run.data(
        "video scenes",
        source=scenes.source,
        frames=len(scenes.frames),
        queries=len(scenes.queries),
        substitute="scene retrieval cut from real video with the pyramid stage's scenes, one (middle) query per "
        "scene, junk: 1 sampled frame either side and the rest of the query's camera shot (Megamind.avi is animated)",
    )
    sm = extract(fx, mean, std, scenes.frames, px, 32, device, desc="scene frames")

    rng = np.random.default_rng(p["seed"])
    per_clip = [
        p["autopool_pairs"] // len(paths_) + (k < p["autopool_pairs"] % len(paths_)) for k in range(len(paths_))
    ]
    max_f = None if pyr["video_max_frames"] is None else pyr["video_max_frames"] * pyr["video_step"]
    pa, pb = [], []
    for k, (clip, n) in enumerate(zip(paths_, per_clip)):
        fr = read_frames(clip, size=(px, px), max_frames=max_f)
        free = outside_scenes(scenes.spans[k], len(fr))
        if len(free) == 0 or n == 0:
            continue
        t = np.sort(rng.choice(free, min(n, len(free)), replace=False))
        m = extract(fx, mean, std, np.concatenate([fr[t], fr[t + 1]]), px, 32, device, desc=clip.name)[LAST_CONV[net]]
        pa.append(m[: len(t)])
        pb.append(m[len(t) :])
    if not pa:
        raise ValueError("no consecutive frames outside the scenes: auto-pooling has nothing to learn from")
    run.data(
        "videos",
        source=source_of("videos"),
        pairs=sum(len(a) for a in pa),
        note="consecutive frames of the mirror's clips that lie in no test scene, for auto-pooling's P",
    )
    return {
        "pairs": pairs,
        "pairs_maps": (pm[LAST_CONV[net]], pm[PREV_CONV[net]]),
        "video_pairs": (np.concatenate(pa), np.concatenate(pb)),
        "scenes": scenes,
        "scene_maps": (sm[LAST_CONV[net]], sm[PREV_CONV[net]]),
    }


def descriptors(op: Op, bb: dict, inp: dict, device) -> tuple[tuple[np.ndarray, ...], float]:
    """``op``'s descriptors of the CIFAR-10 training and test maps, the ``pairs/`` photographs and the video scene
    frames, and its pooling milliseconds per image (test maps). Where ``op.post_process``, cross-layer's
    post-processing (``PostProcess``: standardise, signed square root, L2) is fitted on the CIFAR-10 training
    descriptors alone and applied to all four."""
    xtr, _ = apply(op, bb["train_maps"], bb["train_prev_maps"], device=device)
    xte, t_ms = apply(op, bb["test_maps"], bb["test_prev_maps"], device=device)
    xpr, _ = apply(op, *inp["pairs_maps"], device=device)
    xsc, _ = apply(op, *inp["scene_maps"], device=device)
    if op.post_process:
        pp = PostProcess().fit(xtr)
        xtr, xte, xpr, xsc = (pp.transform(x) for x in (xtr, xte, xpr, xsc))
    return (xtr, xte, xpr, xsc), t_ms


def tie_marks(per_item: dict[str, np.ndarray], scale: float, seed: int = 0) -> list[str]:
    """Per operator (``per_item``: name -> its per-item scores on one measure, same items for all, in table order):
    ``best`` for every operator at the top mean (on a saturated measure several reach it exactly, and picking one
    of them would be arbitrary), ``tied`` where the paired 95 % interval of (the first best - this operator)
    includes 0, else empty."""
    from ..claims import paired_bootstrap

    means = {name: float(np.mean(v)) for name, v in per_item.items()}
    top = max(means.values())
    ref = next(name for name, v in means.items() if v == top)
    marks = []
    for name, v in per_item.items():
        if means[name] == top:
            marks.append("best")
            continue
        e = paired_bootstrap(per_item[ref], v, seed=seed, scale=scale)
        marks.append("tied" if e.lo <= 0 else "")
    return marks


def evaluate(ops: list[Op], bb: dict, inp: dict, probe_alphas, device, seed: int = 0):
    """One row per operator: dimension, CIFAR-10 linear-probe accuracy and class-retrieval mAP, and the mAP of the
    two retrieval substitutes (``pairs/`` under the Holidays protocol, the video scenes under Oxford's), each with
    its 95 % bootstrap interval over the test items (images or queries) and, per measure, a mark (``tie_marks``:
    ``best`` at the top value, ``tied`` where the paired interval against the best includes 0). Returns ``(table, pooling
    milliseconds per image by operator, scores)``: the times go to run.json, not the table (they differ from one
    identical run to the next); ``scores`` are the table's numbers for machines (metrics.json), by operator id:
    ``{id: {"dim": D, <measure id>: {"value", "lo", "hi", "tied_with_best", "best"}}}`` with the measure ids of
    ``METRIC_IDS``, unrounded interval ends, ``tied_with_best`` true for ``best`` and ``tied``."""
    import pandas as pd

    from ..claims import bootstrap_mean
    from ..metrics.retrieval import class_map, holidays_map, oxford_map, rank

    for what in ("name", "id"):
        seen = [getattr(op, what) for op in ops]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            raise ValueError(f"two operators share the {what} {', '.join(map(repr, dup))}: every row needs its own")
    pairs, scenes = inp["pairs"], inp["scenes"]
    q_idx = [g[0] for g in pairs.groups]
    rows, items, times, scores = [], {}, {}, {}
    for op in tqdm(ops, desc="operators", leave=False):
        (xtr, xte, xpr, xsc), t_ms = descriptors(op, bb, inp, device)
        hits, alpha = linear_probe(xtr, bb["train_labels"], xte, bb["test_labels"], probe_alphas)
        # rank() compares L2-normalised descriptors (Euclidean = cosine)
        _, cls_ap = class_map(rank(torch.as_tensor(xte), torch.as_tensor(xtr)), bb["test_labels"], bb["train_labels"])
        d = torch.as_tensor(xpr)
        _, hol_ap = holidays_map(rank(d[q_idx], d), q_idx, pairs.groups)
        ds = torch.as_tensor(xsc)
        _, sc_ap = oxford_map(rank(ds[scenes.queries], ds), scenes.positives, scenes.junk)
        times[op.name] = t_ms
        items[op.name] = {
            "cifar10_probe_acc": hits.astype(float),
            "cifar10_class_mAP": cls_ap,
            "pairs_mAP": hol_ap,
            "video_scene_mAP": sc_ap,
        }
        row = {"operator": op.name, "paper": op.paper, "module": op.module, "dim": xtr.shape[1]}
        scores[op.id] = {"dim": int(xtr.shape[1])}
        for m, (_, scale) in METRICS.items():
            e = bootstrap_mean(items[op.name][m], seed=seed, scale=scale)
            row[m], row[f"{m} 95% CI"] = e.value, f"[{e.lo:.3g}, {e.hi:.3g}]"
            scores[op.id][METRIC_IDS[m]] = {"value": e.value, "lo": e.lo, "hi": e.hi}
        rows.append({**row, "probe_alpha": alpha, "learned_from": op.learned})
    table = pd.DataFrame(rows)
    for m, (_, scale) in METRICS.items():
        marks = tie_marks({op.name: items[op.name][m] for op in ops}, scale, seed)
        table[f"{m} tied with best"] = marks
        for op, mark in zip(ops, marks):
            scores[op.id][METRIC_IDS[m]].update(tied_with_best=mark in ("best", "tied"), best=mark == "best")
    if (
        not table[["cifar10_class_mAP", "pairs_mAP", "video_scene_mAP"]].apply(lambda c: c.between(0, 1).all()).all()
        or not (table["dim"] > 0).all()
    ):
        raise AssertionError("an mAP outside [0, 1] or an empty descriptor")
    return table, times, scores


def alpha_at_grid_edge(table, probe_alphas) -> list[str]:
    """The operators (display names) whose probe alpha is an end of the grid: their best regularisation may lie
    outside it."""
    return table.loc[table.probe_alpha.isin([min(probe_alphas), max(probe_alphas)]), "operator"].tolist()


LEARN_TIMES = ("train_s", "fit_s", "seconds")  # learn_info keys that change from one identical run to the next


def stage_metrics(ops: list[Op], scores: dict, learn_info: dict, edge: list[str]) -> tuple[dict, dict]:
    """``(metrics, learned seconds)``: metrics.json's content, short and structured at the source (keys are slugs,
    intervals are numbers, no display names): ``operators -> <operator id> -> dim`` and ``-> <measure id> ->
    {value, lo, hi, tied_with_best, best}`` (``evaluate``'s scores), ``learned -> <part> -> ...`` (what the learned
    operators saw, without timings) and ``probe_alpha_at_grid_edge``: the ids of ``edge`` (names). The timings go to
    run.json."""
    ids = {op.name: op.id for op in ops}
    learned = {part: {k: v for k, v in d.items() if k not in LEARN_TIMES} for part, d in learn_info.items()}
    metrics = {"operators": scores, "learned": learned, "probe_alpha_at_grid_edge": [ids[name] for name in edge]}
    learned_s = {part: {k: v for k, v in d.items() if k in LEARN_TIMES} for part, d in learn_info.items()}
    return metrics, learned_s


def plot_tradeoffs(table, title: str):
    """Linear-probe accuracy and instance-retrieval mAP against descriptor dimension."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    for ax, col in zip(axes, ["cifar10_probe_acc", "pairs_mAP"]):
        sns.scatterplot(data=table, x="dim", y=col, hue="paper", s=70, ax=ax)
        for _, r in table.iterrows():
            ax.annotate(
                r.operator.split(" (")[0][:22],
                (r["dim"], r[col]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.set_xlabel("descriptor dimension")
        ax.set_ylabel(METRICS[col][0])
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_learned(ops: list[Op], inp: dict):
    """Auto-pooling's P (one map per pooled unit over the locations), and entropy / attention weights on a few
    ``pairs/`` photographs."""
    import matplotlib.pyplot as plt

    pairs = inp["pairs"]
    q_idx = [g[0] for g in pairs.groups]
    ap = next(o for o in ops if o.module == "pooling.autopool").pool
    ent = next(o for o in ops if o.name.startswith("entropy (ImageNet classifier, linear")).pool
    att = next(o for o in ops if o.module == "pooling.attention").pool
    k = ap.P.shape[0]
    side = int(round(ap.P.shape[1] ** 0.5))
    show = q_idx[:3]
    fig, axes = plt.subplots(2, max(k, 2 * len(show)), figsize=(2.2 * max(k, 2 * len(show)), 4.6), squeeze=False)
    for a in axes.ravel():
        a.axis("off")
    for i in range(k):
        axes[0, i].imshow(ap.P[i].reshape(side, side).numpy(), cmap="viridis")
        axes[0, i].set_title(f"P row {i}", fontsize=8)
    with torch.no_grad():
        x = torch.as_tensor(inp["pairs_maps"][0][show]).float()
        we, wa = ent.weights(x).numpy(), att.weights(x).numpy()
    for j, i in enumerate(show):
        img = pairs.images[i]
        for c, (w, lab) in enumerate([(we[j], "entropy"), (wa[j], "attention")]):
            ax = axes[1, 2 * j + c]
            ax.imshow(img)
            ax.imshow(
                np.kron(w, np.ones((img.shape[0] // side + 1, img.shape[1] // side + 1)))[
                    : img.shape[0], : img.shape[1]
                ],
                alpha=0.5,
                cmap="magma",
            )
            ax.set_title(f"{pairs.names[i][:14]}: {lab}", fontsize=7)
    fig.tight_layout()
    return fig
