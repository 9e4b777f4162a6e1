"""Auto-pooling's experiment (Sec. 3.2) after P is trained (:mod:`.pools`): Table 1 and Fig. 10.

1. pooled CIFAR-10 features, a linear L2-SVM (Table 1), the SVM's C chosen by cross-validation as a check;
2. the fair statistic of Fig. 10: AP with K pools against SP with the same number of features;
3. AP against pairs seen (the learning curve) and the invariance of the convolutional codes.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from ...pooling.spatial import MultiGridPool, grid_name
from .model import PatchModel, conv_features, resize_images
from .pools import PoolRuns, Scale, shuffled_rows

# The paper's numbers, typed in once from Table 1 (CIFAR-10 accuracy, %, linear SVM): AP at each K, and the
# range of its SP rows per training set (the SP grid labels were lost in our copy's text extraction).
PAPER_K = [400, 800, 1300, 1600, 2000, 2500]
PAPER_AP = {
    "full": dict(zip(PAPER_K, [64.6, 67.2, 69.0, 69.4, 69.7, 69.3])),
    "small": dict(zip(PAPER_K, [61.6, 62.9, 63.8, 64.3, 65.0, 63.5])),
}
PAPER_SP_RANGE = {"full": (63.8, 68.4), "small": (57.6, 61.5)}
ANIMATED = {"Megamind.avi": "an animated film excerpt (rendered, not camera footage)"}


def check_params(p: dict) -> None:
    """Errors a run would otherwise meet late: every K a multiple of the SAE's units (the same-K grid must exist),
    the first K a square grid (the learning curve compares it with one), pair counts that the held-out curve's step
    divides, the invariance claims' lambdas in the grid."""
    from ...config import ParamsError
    from ...pooling.spatial import grid_for

    for name, ks in (("ks", p["ks"]), ("rep_ks", p["rep_ks"] if p["rep_side"] else [])):
        for K in ks:
            if K % p["hidden"]:
                raise ParamsError(
                    f"autopool.{name}: K={K} is not a multiple of hidden={p['hidden']}: no sum-pooling grid "
                    "has K outputs to compare P with"
                )
        gy, gx = grid_for(ks[0], p["hidden"]) if ks else (1, 1)
        if gy != gx:
            raise ParamsError(
                f"autopool.{name}: the first K={ks[0]} gives a {gy}x{gx} grid; the learning curve needs a square one "
                "(K = hidden x g^2)"
            )
    for name in ("n_pairs", "rep_pairs", "grid_start_pairs"):
        if p[name] % p["curve_every"] or p[name] < p["curve_every"]:
            raise ParamsError(f"autopool.{name} = {p[name]}: must be a multiple of curve_every = {p['curve_every']}")
    for c in p["curve_pairs"]:
        if c % p["curve_every"] or not 0 < c < min(p["n_pairs"], p["rep_pairs"] if p["rep_side"] else p["n_pairs"]):
            raise ParamsError(f"autopool.curve_pairs: {c} must be a multiple of curve_every below every n_pairs")
    if "small" not in p["train_sets"] or not set(p["train_sets"]) <= {"full", "small"}:
        raise ParamsError(
            f"autopool.train_sets = {p['train_sets']}: 'small' and optionally 'full' (the learning curve, the "
            "C check and every AP-vs-SP claim use the small set)"
        )
    singles = {g[0] for g in p["sp_grids"] if len(g) == 1}
    for K in p["rep_ks"] if p["rep_side"] else []:
        g = round((K / p["hidden"]) ** 0.5)
        if p["hidden"] * g * g != K or g not in singles:
            raise ParamsError(
                f"autopool.rep_ks: K={K} has no single grid in sp_grids with exactly K features (hidden x g^2): the "
                "replicate's Fig. 10 compares each K with SP at exactly K features, fixed before the run"
            )
    if p["rep_side"] and not 6 < p["rep_side"] < 32:
        raise ParamsError(f"autopool.rep_side = {p['rep_side']}: must lie in 7..31 (or null: no replicate)")
    if not 0 < p["heldout_from"] < 1:
        raise ParamsError(f"autopool.heldout_from = {p['heldout_from']}: must lie in (0, 1)")
    missing = [lm for lm in p["inv_lambdas"] if lm not in p["lambdas"]]
    if len(p["inv_lambdas"]) != 3 or missing or sorted(p["inv_lambdas"]) != list(p["inv_lambdas"]):
        raise ParamsError(
            f"autopool.inv_lambdas = {p['inv_lambdas']}: three increasing values (low, large, top) from lambdas"
        )


def cifar_sets(p: dict):
    """``(train_all, full, small_idx, test)``: the 'full' training subset, the 'small' one nested in it (indices
    into ``full``), and the test set (all of it at 1,000 per class)."""
    from ...data.cifar import balanced_indices, load_cifar10

    train_all, test_all = load_cifar10("train"), load_cifar10("test")
    full = train_all if p["train_full"] >= 5000 else train_all.subset(p["train_full"], p["seed"])
    small_idx = balanced_indices(full.labels, p["train_small"], p["seed"] + 1)  # small is nested in full
    test = test_all if p["test_per_class"] >= 1000 else test_all.subset(p["test_per_class"], p["seed"])
    return train_all, full, small_idx, test


# --------------------------------------------------------------------------------------------- CIFAR-10


@torch.no_grad()
def pooled_cifar(
    images: np.ndarray,
    model: PatchModel,
    pools: dict[str, torch.Tensor],
    grids: list[int],
    side: int = 32,
    batch_size: int = 100,
    device="cpu",
    desc: str = "pooled features",
) -> dict[str, np.ndarray]:
    """Pooled features of ``images`` (N x 32 x 32 x 3) resized to ``side``: ``z = P x`` for every named P in
    ``pools`` (K x D each) and sum pooling over each ``g x g`` grid in ``grids`` (key ``SP gxg``; a multi-grid SP is
    the concatenation of its grids' features, :func:`sp_features`), computing the conv features one batch at a
    time (72,900-d at 32x32)."""
    names = list(pools)
    P_all = torch.cat([pools[n].to(device=device, dtype=torch.float32) for n in names]) if names else None
    sizes = [pools[n].shape[0] for n in names]
    sps = {f"SP {g}x{g}": MultiGridPool([g], "sum") for g in grids}
    out: dict[str, list] = {**{n: [] for n in names}, **{n: [] for n in sps}}
    for s in tqdm(range(0, len(images), batch_size), desc=desc, leave=False):
        maps = conv_features(resize_images(images[s : s + batch_size], side), model, device)
        if P_all is not None:
            z = maps.flatten(1) @ P_all.T
            for n, part in zip(names, torch.split(z, sizes, dim=1)):
                out[n].append(part.cpu().numpy())
        for n, pool in sps.items():
            out[n].append(pool(maps).cpu().numpy())
    return {k: np.concatenate(v).astype(np.float32) for k, v in out.items()}


def sp_features(feats: dict[str, np.ndarray], grids) -> np.ndarray:
    """The features of SP over several grids (``[1, 2]`` -> 1x1 + 2x2) from the per-grid ones."""
    return np.concatenate([feats[f"SP {g}x{g}"] for g in grids], axis=1)


# How pooled features are prepared for the SVM. The paper says only "we trained a linear SVM with pooled
# representations" (Sec. 3.2); "standardised" is ours (Coates, Lee & Ng 2011, whose features the paper follows,
# standardise before their linear SVM); the others are the 32-px diagnostic's alternatives, never chosen by accuracy.
PREPS = ("standardised", "raw", "l2", "sqrt_standardised", "whitened")


def prepare(kind: str, xtr: np.ndarray, xte: np.ndarray, eps: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features for the SVM, fitted on the training rows only: ``standardised`` (mean 0, variance 1 per
    feature), ``raw``, ``l2`` (each vector unit length), ``sqrt_standardised`` (square root of the non-negative
    pooled sums, then standardised) or ``whitened`` (standardised, then ZCA with ``eps``)."""
    from sklearn.preprocessing import StandardScaler

    from ...normalize import ZCA, l2_normalize

    if kind not in PREPS:
        raise ValueError(f"unknown preparation {kind!r}; one of {PREPS}")
    if kind == "raw":
        return xtr, xte
    if kind == "l2":
        return l2_normalize(xtr), l2_normalize(xte)
    if kind == "sqrt_standardised":
        xtr, xte = np.sqrt(np.maximum(xtr, 0)), np.sqrt(np.maximum(xte, 0))
    sc = StandardScaler().fit(xtr)
    xtr, xte = sc.transform(xtr).astype(np.float32), sc.transform(xte).astype(np.float32)
    if kind == "whitened":
        z = ZCA(eps).fit(xtr)
        return z(xtr), z(xte)
    return xtr, xte


# How far choose_C extends svm_C_grid past an edge choice: above C = 1 (next to no regularisation of standardised
# features at 6,667+ training images) L-BFGS runs to its iteration limit, which the stage's 25 minutes cannot pay
C_RANGE = (1e-6, 1.0)


def fit_svm(xtr: np.ndarray, ytr: np.ndarray, C: float, device="cpu", W0=None):
    """A linear L2-SVM (squared hinge, one-vs-rest, as Coates et al.'s liblinear classifier:
    :class:`poolrep.linear_svm.LinearSVM`, LinearSVC's objective in torch) on prepared features, started from
    ``W0`` if given (a warm start: the same minimum, fewer iterations)."""
    from ...linear_svm import LinearSVM

    return LinearSVM(C=C, device=device).fit(xtr, ytr, W0=W0)


def classify(
    xtr: np.ndarray,
    ytr: np.ndarray,
    xte: np.ndarray,
    yte: np.ndarray,
    C: float = 0.01,
    device="cpu",
    prep: str = "standardised",
    W0=None,
) -> np.ndarray:
    """Per test item, is it classified right (bool vector) by the SVM (:func:`fit_svm`) on features prepared by
    :func:`prepare` (standardised with the training set's mean and standard deviation)? Its mean is the test
    accuracy; kept per item for paired intervals."""
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("features and labels must have the same length")
    xtr, xte = prepare(prep, xtr, xte)
    return fit_svm(xtr, ytr, C, device, W0).predict(xte) == np.asarray(yte)


def cv_accuracy(
    x: np.ndarray,
    y: np.ndarray,
    Cs: list[float],
    folds: int = 3,
    seed: int = 0,
    device="cpu",
    prep="standardised",
    starts: dict | None = None,
) -> tuple[dict, dict]:
    """Mean accuracy of the SVM for each C over ``folds`` stratified folds of the training images (scikit-learn's
    ``StratifiedKFold``): the C a method would get from its training data alone. Within a fold the Cs are fitted
    in ascending order, each from the previous one's weights (a warm start along the path; ``starts[fold]``: where
    the first starts). Returns ``(accuracy per C, per fold {C: weights})``."""
    from sklearn.model_selection import StratifiedKFold

    if len(Cs) < 1:
        raise ValueError("Cs: give at least one C")
    acc, weights = {C: [] for C in Cs}, {}
    for f, (tr, va) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)):
        xtr, xva = prepare(prep, x[tr], x[va])
        W, weights[f] = (starts or {}).get(f), {}
        for C in sorted(Cs):
            clf = fit_svm(xtr, y[tr], C, device, W)
            W = weights[f][C] = clf.W
            acc[C].append(float((clf.predict(xva) == np.asarray(y[va])).mean()))
    return {C: float(np.mean(v)) for C, v in acc.items()}, weights


def choose_C(x: np.ndarray, y: np.ndarray, p: dict, device="cpu", prep="standardised") -> tuple[float, dict, object]:
    """The C that ``cv_folds``-fold cross-validation on these training images prefers (ties: the smaller C), from
    ``svm_C_grid`` extended a decade at a time past an edge choice (within :data:`C_RANGE`), so that the choice is
    never the grid's edge by construction. Returns ``(C, accuracy per C, the first fold's weights at C)`` (the last:
    a warm start for the fit on every training image)."""
    cv, weights = cv_accuracy(x, y, p["svm_C_grid"], p["cv_folds"], p["seed"], device, prep)
    while True:
        best = max(cv, key=lambda c: (cv[c], -c))
        lo, hi = min(cv), max(cv)
        if best == hi and hi * 10 <= C_RANGE[1] * (1 + 1e-9):
            new = hi * 10
        elif best == lo and lo / 10 >= C_RANGE[0] * (1 - 1e-9):
            new = lo / 10
        else:
            return best, dict(sorted(cv.items())), weights[0][best]
        starts = {f: w[best] for f, w in weights.items()}
        more, mw = cv_accuracy(x, y, [new], p["cv_folds"], p["seed"], device, prep, starts)
        cv.update(more)
        for f in weights:
            weights[f].update(mw[f])


def methods(p: dict, sc: Scale) -> dict[str, tuple]:
    """The Table 1 rows of one size: ``{name: ("AP", K) | ("random", K) | ("SP", grids)}``; the random-P control
    for the first K (classified on the small training set only)."""
    out = {f"AP K={k}": ("AP", k) for k in sc.ks}
    out[f"random P K={sc.ks[0]}"] = ("random", sc.ks[0])
    out.update({f"SP {grid_name(g)}": ("SP", tuple(g)) for g in p["sp_grids"]})
    return out


def pool_names(kind: str, K: int, seeds: list[int]) -> list[str]:
    """The feature keys of one method's seeds (``AP K=400 seed 0``, ...; the random control: seed 0's only)."""
    return [f"{'AP' if kind == 'AP' else 'random P'} K={K} seed {s}" for s in (seeds if kind == "AP" else seeds[:1])]


def pools_of(runs: PoolRuns) -> dict[str, torch.Tensor]:
    """Every P to pool CIFAR-10 with: each (K, seed) and the first K's row-shuffled control."""
    sc = runs.scale
    out = {pool_names("AP", K, [s])[0]: runs.P[(K, s)] for K in sc.ks for s in sc.seeds}
    s0 = sc.seeds[0]
    out[pool_names("random", sc.ks[0], sc.seeds)[0]] = shuffled_rows(runs.P[(sc.ks[0], s0)], s0)
    return out


def train_rows(sc: Scale, n_full: int, small_idx: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which training images a size pools (all of 'full', or only 'small' when its Table 1 has no full set) and,
    per training set, its rows in those pooled features."""
    if "full" in sc.sets:
        return np.arange(n_full), {"full": np.arange(n_full), "small": small_idx}
    return small_idx, {"small": np.arange(len(small_idx))}


def table1(runs: PoolRuns, ftr: dict, fte: dict, ytr, rows_of: dict, yte, p: dict, device="cpu"):
    """Table 1 of one size (ours beside the paper's, 95 % intervals over the test images and, for AP, its seeds),
    per test item the correctness of every classifier: ``{(method, "full"|"small"): items x seeds bool}`` (one
    column for SP and the random control), and the cross-validation that chose each classifier's C (per method and
    training set, on its training images only: :func:`choose_C`). ``ftr``: pooled training features with labels ``ytr``;
    ``rows_of``: per training set, its rows (:func:`train_rows`)."""
    import pandas as pd

    from ... import claims as C

    sc = runs.scale
    rows, correct, cvs = [], {}, []
    for setting, idx in rows_of.items():
        for name, (kind, arg) in tqdm(methods(p, sc).items(), desc=f"classifiers {sc.name} ({setting})", leave=False):
            if kind == "random" and setting != "small":
                continue  # the control is read on the small set, where the paper's claim is strongest
            keys = [None] if kind == "SP" else pool_names(kind, arg, sc.seeds)
            feats = [
                (sp_features(ftr, arg), sp_features(fte, arg)) if kind == "SP" else (ftr[key], fte[key]) for key in keys
            ]
            # C per method and training set, by cross-validation on its training images (the first seed's P)
            best, cv, W0 = choose_C(feats[0][0][idx], ytr[idx], p, device)
            cvs.append({"size": sc.name, "method": name, "train": setting, "C chosen": best})
            cvs[-1].update(
                {"at the grid's edge": best in (min(cv), max(cv)), **{f"cv C={c:g}": v for c, v in cv.items()}}
            )
            # the first seed's fit starts from its cross-validation weights; another seed's P orders its pools its own way
            cols = [
                classify(xtr[idx], ytr[idx], xte, yte, best, device, W0=W0 if i == 0 else None)
                for i, (xtr, xte) in enumerate(feats)
            ]
            correct[(name, setting)] = np.stack(cols, 1)
            e = C.seed_interval(correct[(name, setting)].astype(float), seed=p["seed"], scale=100, what="test images")
            rows.append(
                {
                    "size": sc.name,
                    "method": name,
                    "features": feats[0][0].shape[1],
                    "train": setting,
                    "train_per_class": len(idx) // 10,
                    "seeds": len(cols),
                    "C": best,
                    "paper": PAPER_AP[setting].get(arg) if kind == "AP" and sc.side == 32 else None,
                    "ours": e.value,
                    "95% CI": f"[{e.lo:.1f}, {e.hi:.1f}]",
                    "lo": e.lo,
                    "hi": e.hi,
                }
            )
    table = pd.DataFrame(rows)
    table["diff"] = table.ours - table.paper
    return table, correct, pd.DataFrame(cvs)


# --------------------------------------------------------------------------------------------- the fair statistic


def same_size_sp(correct: dict, setting: str, grid_features: dict[int, int], K: int) -> tuple[np.ndarray, str]:
    """Fig. 10's comparison, fixed before the run: SP "at K features", per test item, from the single g x g grids
    run (``grid_features``: g -> features). A grid with exactly K features is itself; else the two grids around K,
    weighted linearly in log(features) (Fig. 10's axis); outside the grids' range the nearest grid. Returns the
    per-item values (0..1) and how they were made."""
    gs = sorted(grid_features, key=lambda g: grid_features[g])
    f = np.array([grid_features[g] for g in gs], dtype=float)
    c = {g: correct[(f"SP {g}x{g}", setting)][:, 0].astype(float) for g in gs}
    for g in gs:
        if grid_features[g] == K:
            return c[g], f"SP {g}x{g}"
    if K < f[0] or K > f[-1]:
        g = gs[0] if K < f[0] else gs[-1]
        return c[g], f"SP {g}x{g} (nearest; K outside the grids' range)"
    i = int(np.searchsorted(f, K))
    lo, hi = gs[i - 1], gs[i]
    w = float((np.log(f[i]) - np.log(K)) / (np.log(f[i]) - np.log(f[i - 1])))
    return w * c[lo] + (1 - w) * c[hi], f"{w:.2f} SP {lo}x{lo} + {1 - w:.2f} SP {hi}x{hi}"


def fair_diffs(correct: dict, sc: Scale, setting: str, hidden: int) -> dict[int, tuple[np.ndarray, str]]:
    """Per K: (test items x seeds) of correct(AP K) - SP at K features (:func:`same_size_sp`), and the SP used."""
    gf = {g: hidden * g * g for g in sorted({g for (m, _s) in correct for g in _single_grid(m)})}
    out = {}
    for K in sc.ks:
        sp, how = same_size_sp(correct, setting, gf, K)
        out[K] = (correct[(f"AP K={K}", setting)].astype(float) - sp[:, None], how)
    return out


def _single_grid(method: str) -> list[int]:
    """``SP 3x3`` -> [3]; multi-grid and other rows -> []."""
    if not method.startswith("SP ") or "+" in method:
        return []
    return [int(method.split()[1].split("x")[0])]


# --------------------------------------------------------------------------------------------- learning curve


def learning_curve(
    runs: PoolRuns, fsmall: dict, ftest: dict, y_small, y_test, p: dict, correct: dict, cv_table, device="cpu"
):
    """AP (the first K and seed) after each checkpoint of pairs seen, and at the end, minus SP of the same size
    (the same-K grid) on the small training set, paired over the test images. ``fsmall``/``ftest``: pooled
    features with keys ``curve <pairs>`` (the checkpoints); ``correct`` and ``cv_table``: :func:`table1`'s (the
    final P's and the grid's test items; the checkpoints are classified at the C chosen for the final P)."""
    import pandas as pd

    from ... import claims as C

    sc = runs.scale
    K = sc.ks[0]
    gy, gx = runs.grid_of(K)
    if gy != gx:
        raise ValueError(f"the learning curve compares AP K={K} with a square grid; {gy}x{gx} is not")
    sp = correct[(f"SP {gy}x{gx}", "small")][:, 0]
    cv = cv_table[(cv_table["size"] == sc.name) & (cv_table.train == "small")].set_index("method")["C chosen"]
    info = runs.info[(K, sc.seeds[0])]
    rows = []
    for n in sorted(runs.checkpoints) + [sc.n_pairs]:
        if n == sc.n_pairs:
            a = correct[(f"AP K={K}", "small")][:, 0]
        else:
            a = classify(fsmall[f"curve {n}"], y_small, ftest[f"curve {n}"], y_test, cv[f"AP K={K}"], device)
        d = C.paired_bootstrap(a, sp, seed=p["seed"], scale=100, what="test images")
        rows.append(
            {
                "size": sc.name,
                "pairs_seen": n,
                "heldout_cost": info["heldout_curve"][n // p["curve_every"]],
                "grid_cost": info["grid_cost"],
                "AP accuracy": 100 * a.mean(),
                f"SP {gy}x{gx} accuracy": 100 * sp.mean(),
                "AP - SP": d.value,
                "lo": d.lo,
                "hi": d.hi,
                "95% CI": f"[{d.lo:+.1f}, {d.hi:+.1f}]",
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- the 32-px diagnosis


def prep_effects(ftr: dict, fte: dict, ytr, yte, ap_key: str, sp_key: str, p: dict, device="cpu") -> list[dict]:
    """The classifier end of the pipeline, step by step: for each preparation of the pooled features
    (:data:`PREPS`; the paper names none), AP and SP (their feature keys: e.g. AP's first seed and the same-size
    grid) with C chosen by cross-validation on the training images under that preparation, their
    test accuracies and AP - SP (paired bootstrap over the test images). Rows keyed by the preparation's slug."""
    from ... import claims as C

    rows = []
    for prep in tqdm(PREPS, desc="pooled-feature preparations", leave=False):
        row, hits = {"prep": prep}, {}
        for role, key in (("ap", ap_key), ("sp", sp_key)):
            best, _, W0 = choose_C(ftr[key], ytr, p, device, prep)
            hits[role] = classify(ftr[key], ytr, fte[key], yte, best, device, prep, W0)
            row.update({f"{role}_C": best, f"{role}_accuracy": 100 * float(hits[role].mean())})
        d = C.paired_bootstrap(hits["ap"], hits["sp"], seed=p["seed"], scale=100, what="test images")
        rows.append({**row, "ap_minus_sp": d.value, "lo": d.lo, "hi": d.hi})
    return rows


# --------------------------------------------------------------------------------------------- invariance


def conv_invariance(held: list, runs: PoolRuns, seed: int) -> dict[str, tuple]:
    """Per code, the per-pair (near, far) distances (Sec. 2.1's invariance score is their mean ratio) on the
    held-out pairs: the raw conv features, AP at each K (first seed), its row-shuffled control and the sum-pooling
    grid of the first K's size."""
    from ...metrics.invariance import invariance_parts
    from ...pooling.spatial import grid_matrix

    xa = torch.cat([a for a, _ in held]).double().cpu()
    xb = torch.cat([b for _, b in held]).double().cpu()
    C, H, W = runs.shape
    s0 = runs.scale.seeds[0]
    codes = {"raw features": (xa, xb)}
    for K in runs.scale.ks:
        P = runs.P[(K, s0)].double()
        codes[f"AP K={K}"] = (xa @ P.T, xb @ P.T)
    K0 = runs.scale.ks[0]
    R = shuffled_rows(runs.P[(K0, s0)], s0).double()
    codes[f"random P K={K0}"] = (xa @ R.T, xb @ R.T)
    gy, gx = runs.grid_of(K0)
    G = grid_matrix((gy, gx), C, H, W).double()
    codes[f"SP {gy}x{gx}"] = (xa @ G.T, xb @ G.T)
    return {k: invariance_parts(a, b, seed) for k, (a, b) in codes.items()}


# --------------------------------------------------------------------------------------------- summary
