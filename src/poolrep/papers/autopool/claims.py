"""Auto-pooling's claims, judged on this run (see :mod:`poolrep.claims`).

AP against SP (Sec. 3.2, Table 1, Fig. 10) is judged per size (:class:`.pools.Scale`), on the statistic
fixed before the run: AP with K pools against SP at the same number of features (:func:`.experiment.same_size_sp`),
paired over the test images and carried over P's seeds, and only where P reached the same-K grid on its own
objective (:func:`p_reaches_grid`). The invariance claims (Sec. 3.1, Fig. 6) are judged over the grey model's
seeds, "raises invariance" also against a random P of the same row density.
"""

from __future__ import annotations

import numpy as np

from ... import claims as C
from ...stats import Estimate
from .experiment import ANIMATED, PAPER_AP, fair_diffs
from .grey import seed_scores
from .model import cluster_orientation_excess

PAPER = "Sukhbaatar, Makino & Aihara (2013)"
STAGE = "autopool"
VIDEO = "mirror_clips_for_autopool_videos"  # the stand-in registry's key for the video P learns from


def p_reaches_grid(runs) -> list[dict]:
    """The precondition of every AP-vs-SP claim of one size: for each K and seed, P's held-out cost (optimally
    scaled, P's own objective) is at or below the same-K sum-pooling grid's. A P that does worse than a hand-made
    grid on the very objective it was trained for has not learned the pools the paper's method learns, so comparing
    its accuracy with SP tests our training budget, not auto-pooling."""
    return [
        C.precondition(
            f"P ({runs.scale.name}, K={K}, seed {s}) held-out cost <= the {d['grid']} grid's",
            f"{d['heldout_cost']:.2f} vs {d['grid_cost']:.2f} after {d['pairs']:,} fresh pairs",
            "P's cost at or below the grid's",
            d["heldout_cost"] <= d["grid_cost"],
        )
        for (K, s), d in sorted(runs.info.items())
    ]


def cell_intervals(fair: dict, sets, ks, seed: int) -> dict[tuple[str, int], Estimate]:
    """Fig. 10's cells: per (training set, K), AP - SP at K features with its 95 % interval over the test images
    and P's seeds (:func:`poolrep.stats.seed_interval`), computed once for every claim and sentence that reads it."""
    return {(s, K): C.seed_interval(fair[s][K][0], seed=seed, scale=100, what="test images") for s in sets for K in ks}


def ks_text(es: dict[int, Estimate]) -> str:
    """``K=400 +1.2 [+0.3, +2.1], ...``: one interval per K, for a claim's why."""
    return ", ".join(f"K={k} {e.value:+.1f} [{e.lo:+.1f}, {e.hi:+.1f}]" for k, e in es.items())


def most_cells(cells: dict[tuple[str, int], Estimate]) -> tuple[Estimate, list[str]]:
    """Fig. 10's "most of the time" over the cells (:func:`cell_intervals`): the share of cells where AP - SP at K
    features is above 0 (value: its point estimate; lo: the share whose 95 % interval over the test images and P's
    seeds lies above 0; hi: the share whose interval does not lie below 0), and each cell's interval as text."""
    es = list(cells.values())
    text = [f"{s} {ks_text({K: e})}" for (s, K), e in cells.items()]
    n = len(es)
    est = Estimate(
        value=sum(e.value > 0 for e in es) / n,
        lo=sum(e.lo > 0 for e in es) / n,
        hi=sum(e.hi >= 0 for e in es) / n,
        how=f"share of {n} cells (K x training set) above 0: lo counts the cells whose 95 % interval (test images x "
        "P's seeds, poolrep.stats.seed_interval) lies above 0, hi those whose interval does not lie below 0",
        items=es[0].items,
        seeds=es[0].seeds,
    )
    return est, text


def ap_vs_sp(runs: dict, correct: dict, p: dict, sizes: dict) -> list:
    """The AP-vs-SP claims for each size, ids suffixed by the size (``_32px``, ``_16px``): "most of the time" over
    the cells (K, training set) of Fig. 10, the small set's mean difference over K, and the gain's size on the small
    set against the full one. Every classifier's C is chosen by cross-validation on its own training images."""
    out = []
    for name, r in runs.items():
        sc = r.scale
        fair = {s: fair_diffs(correct[name], sc, s, p["hidden"]) for s in sc.sets}
        pre = p_reaches_grid(r)
        data = (
            f"profile {p['profile']}; {sc.label}; CIFAR-10 (JPEG copy of the mirror), {sizes['test']:,} test images "
            f"(paper 10,000); P: K in {sc.ks}, {len(sc.seeds)} seed(s), {sc.n_pairs:,} fresh frame pairs each from "
            f"the first {p['heldout_from']:.0%} of the mirror's {sizes['clips']} clips (substitute for the paper's 44 "
            f"videos; {', '.join(ANIMATED)} animated); SP at the same number of features: "
            + ", ".join(f"K={k} ~ {fair['small'][k][1]}" for k in sc.ks)
            + f"; SVM C per method and training set by {p['cv_folds']}-fold cross-validation on its training images"
        )
        train = {
            "full": f"{sizes['train_full']:,} training images ({sizes['train_full'] // 10}/class; paper 5,000)",
            "small": f"{sizes['train_small']:,} training images ({p['train_small']}/class; paper 1,000)",
        }
        sets_text = " and ".join(train[s] for s in sc.sets)

        def mean_k(setting, fair=fair, ks=sc.ks):  # items x seeds: mean over K of AP - same-size SP
            return np.mean([fair[setting][k][0] for k in ks], axis=0)

        intervals = cell_intervals(fair, sc.sets, sc.ks, p["seed"])

        def per_k(setting, iv=intervals, ks=sc.ks):
            return "Per K: " + ks_text({k: iv[(setting, k)] for k in ks})

        few_seeds = len(sc.seeds) < C.MIN_SEEDS and all(c["passed"] for c in pre)
        one_seed_why = (
            f"A claim about a training method needs {C.MIN_SEEDS} seeds of P; the {p['profile']} profile trains "
            f"{len(sc.seeds)} at this size (each about 8 min of one core; more would pass the stage's 25 minutes)."
        )
        seeds_decide = f"{C.MIN_SEEDS} seeds of P at this size: a GPU (paper profile) or this machine with more time"
        no_full = (
            f"The {p['profile']} profile classifies this size's features on the small training set only (the SVM on "
            "50,000 images is the stage's largest cost after P); the paper profile has the full set."
        )
        # "most of the time" (Fig. 10): more than half of the cells (K, training set), judged on the cells' intervals
        most, cells = most_cells(intervals)
        n = len(cells)
        need = (n // 2 + 0.5) / n  # more than half: at least n // 2 + 1 cells
        stmt = '"Auto-pooling outperformed traditional spatial pooling for most of the time."'
        qty = f"share of the cells (K, training set) of Fig. 10 where accuracy(AP K) - accuracy(SP at K features) > 0, {name}"
        setting_most = f"{data}; {sets_text}; {n} cell(s): K in {sc.ks} x {list(sc.sets)}"
        if few_seeds or n < 2:
            out.append(
                C.not_testable(
                    f"ap_beats_sp_most_{name}",
                    STAGE,
                    stmt,
                    "Sec. 3.2, Table 1, Fig. 10",
                    qty,
                    ours=most if not few_seeds else None,
                    setting=setting_most,
                    reason="scale",
                    why=("; ".join(cells) + ". ")
                    + (one_seed_why if few_seeds else "")
                    + (f" One cell (K={sc.ks[0]}, {list(sc.sets)[0]} set): no 'most' to judge." if n < 2 else ""),
                    decide=seeds_decide + "; several K" + ("" if "full" in sc.sets else " and the full training set"),
                    preconditions=pre,
                    standins=[VIDEO],
                )
            )
        else:
            out.append(
                C.greater(
                    f"ap_beats_sp_most_{name}",
                    STAGE,
                    stmt,
                    "Sec. 3.2, Table 1, Fig. 10",
                    qty,
                    most,
                    bound=need,
                    setting=setting_most,
                    preconditions=pre,
                    trained=True,
                    standins=[VIDEO],
                    why=f"Per cell: {'; '.join(cells)}. 'Most' = more than half of the {n} cells (at least "
                    f"{n // 2 + 1}), fixed before the run; a cell counts for AP only where its interval lies above 0.",
                )
            )
        # the small set's difference, and the gain's size on the small set against the full one
        small_stmt = (
            '"Especially for small training data, the difference between the two pooling methods was substantial."'
        )
        small_q = f"mean over K of accuracy(AP K) - accuracy(SP at K features), small training set, {name}"
        est = C.seed_interval(mean_k("small"), seed=p["seed"], scale=100, what="test images")
        if few_seeds:
            out.append(
                C.not_testable(
                    f"ap_beats_sp_small_{name}",
                    STAGE,
                    small_stmt,
                    "Sec. 3.2, Table 1, Fig. 10",
                    small_q,
                    ours=est,
                    unit="points",
                    setting=f"{data}; {train['small']}",
                    reason="scale",
                    why=f"{per_k('small')}. {one_seed_why}",
                    decide=seeds_decide,
                    preconditions=pre,
                    standins=[VIDEO],
                )
            )
        else:
            out.append(
                C.greater(
                    f"ap_beats_sp_small_{name}",
                    STAGE,
                    small_stmt,
                    "Sec. 3.2, Table 1, Fig. 10",
                    small_q,
                    est,
                    unit="points",
                    setting=f"{data}; {train['small']}",
                    preconditions=pre,
                    trained=True,
                    standins=[VIDEO],
                    why=per_k("small") + ".",
                )
            )
        gain = (
            '"Especially for small training data, the difference between the two pooling methods was '
            'substantial. This indicates that auto-pooling is better at generalization"'
        )
        gq = f"mean over K of (AP - SP at K features) on the small set - the same on the full set, {name}"
        if "full" in sc.sets:
            diff = {
                k: C.seed_interval(
                    fair["small"][k][0] - fair["full"][k][0], seed=p["seed"], scale=100, what="test images"
                )
                for k in sc.ks
            }
            out.append(
                C.greater(
                    f"ap_gain_larger_on_small_{name}",
                    STAGE,
                    gain,
                    "Sec. 3.2, Table 1",
                    gq,
                    C.seed_interval(mean_k("small") - mean_k("full"), seed=p["seed"], scale=100, what="test images"),
                    unit="points",
                    setting=f"{data}; {sets_text}",
                    why=f"{per_k('small')} (small); {per_k('full')} (full); small - full {ks_text(diff)}. "
                    "Each classifier's C chosen on its own training set, so neither set's SVM is tuned on the other's.",
                    preconditions=pre,
                    trained=True,
                    standins=[VIDEO],
                )
            )
        else:
            out.append(
                C.not_testable(
                    f"ap_gain_larger_on_small_{name}",
                    STAGE,
                    gain,
                    "Sec. 3.2, Table 1",
                    gq,
                    setting=data,
                    reason="scale",
                    why=no_full,
                    decide="the full training set's SVM at this size: a GPU (paper profile) or more time here",
                    preconditions=pre,
                    standins=[VIDEO],
                )
            )
        if sc.side == 32:
            k0 = sc.ks[0]
            st = "full" if "full" in sc.sets else "small"
            acc = C.seed_interval(correct[name][(f"AP K={k0}", st)].astype(float), seed=p["seed"], scale=100)
            out.append(
                C.not_testable(
                    f"table1_ap{k0}_{st}",
                    STAGE,
                    f"Table 1: AP ({k0} clusters), {st} training set: {PAPER_AP[st].get(k0, float('nan'))} %",
                    "Table 1",
                    f"accuracy(AP K={k0}), {st} set, paper size",
                    ours=acc,
                    unit="%",
                    paper=PAPER_AP[st].get(k0),
                    setting=f"{data}; {train[st]}",
                    reason="stand-in",
                    standins=[VIDEO],
                    why="An absolute accuracy: P learned its pools from the mirror's clips, not the paper's 44 videos, "
                    "and an absolute number is never judged on a substitute (poolrep.standins); shown, not judged. "
                    "The notebook's 32-px diagnosis checks the pipeline against the paper's text step by step.",
                    decide="the paper's videos (data)",
                )
            )
    return out


def invariance(grey, p: dict, sizes: dict) -> list:
    """Fig. 6's claims over the grey model's seeds: per held-out pair and seed the linearised score
    (:func:`.grey.seed_scores`), so each interval carries the pairs and the seeds."""
    seeds = p["grey_seeds"]
    lam1 = p["cluster_lam"]
    low, large, top = p["inv_lambdas"]
    grey_set = (
        f"profile {p['profile']}; grey model, {p['gray_hidden']} SAE features of {p['gray_patch']}x{p['gray_patch']} "
        f"patches, K={p['cluster_k']}, {len(seeds)} seeds of P, {sizes['grey_held']:,} held-out pairs from the last "
        f"{1 - p['heldout_from']:.0%} of each of the mirror's clips (substitute video)"
    )

    def diff(hi_key, lo_key):
        return C.seed_interval(
            seed_scores(grey, hi_key, seeds), seed_scores(grey, lo_key, seeds), seed=p["seed"], what="held-out pairs"
        )

    frac = p["stop_rise_frac"]
    lams = sorted({lm for (_s, lm) in grey.P})
    means = {lm: float(seed_scores(grey, lm, seeds).mean()) for lm in lams}
    scores = "Scores (mean over seeds): " + ", ".join(f"lambda={lm:g} {means[lm]:.2f}" for lm in lams) + "."
    out = [
        C.greater(
            "pooling_raises_invariance",
            STAGE,
            '"The invariance score is significantly improved by the pooling"',
            "Sec. 3.1, Fig. 6",
            f"invariance score(pooled, lambda={lam1:g}) - score(raw features)",
            diff(lam1, "raw"),
            setting=grey_set,
            why="",
            trained=True,
        ),
        C.greater(
            "pooling_beats_random_pools",
            STAGE,
            '"The invariance score is significantly improved by the pooling" (by what P learned, not by summing '
            "alone: against a random P of the same row density)",
            "Sec. 3.1, Fig. 6",
            f"invariance score(P, lambda={lam1:g}) - score(the same P with each row's entries shuffled)",
            diff(lam1, "random"),
            setting=grey_set,
            why="",
            trained=True,
        ),
        C.greater(
            "invariance_rises_with_lambda",
            STAGE,
            '"The invariance score is significantly improved by the pooling, especially for large lambda values."',
            "Sec. 3.1, Fig. 6",
            f"score(lambda={large:g}) - score(lambda={low:g})",
            diff(large, low),
            setting=grey_set,
            trained=True,
            why=f"{scores} The levels (low {low:g}, large {large:g}, top {top:g}) are params (inv_lambdas), not our "
            "curve's peak; the paper's Fig. 6 values are lost in our copy, and these were written down after earlier "
            "runs of this stage had shown a curve, so they are fixed, not blind.",
        ),
        C.non_superior(
            "invariance_stops_rising",
            STAGE,
            '"the invariance score stopped its increase at large lambda"',
            "Sec. 3.1, Fig. 6",
            f"[score(lambda={top:g}) - score(lambda={large:g})] - {frac:g} x [score(lambda={large:g}) - "
            f"score(lambda={low:g})]",
            C.seed_interval(
                seed_scores(grey, top, seeds)
                - seed_scores(grey, large, seeds)
                - frac * (seed_scores(grey, large, seeds) - seed_scores(grey, low, seeds)),
                seed=p["seed"],
                what="held-out pairs",
                confidence=C.TOST_CONFIDENCE,
            ),
            0.0,
            setting=grey_set,
            trained=True,
            why=f"A plateau, not a fall (non-superiority at 5 %): the rise from lambda={large:g} to {top:g} is at most "
            f"stop_rise_frac = {frac:g} of the rise from {low:g} to {large:g} (params). Rises: "
            f"{means[large] - means[low]:+.2f}, then {means[top] - means[large]:+.2f}. Both lambdas fixed in params "
            f"(inv_lambdas {p['inv_lambdas']}), not by our curve.",
        ),
    ]
    return out


def orientation(grey, theta: np.ndarray, p: dict, sizes: dict) -> tuple[list, dict]:
    """ "Edge detectors of similar orientations are grouped together": per seed, the mean over pools of (orientation
    spread of its members - random groups of the same size), minus the same for the row-shuffled P (the random-P
    control); a t-interval over the seeds. Returns the claim and the per-seed numbers."""
    from .pools import shuffled_rows

    lam1, thr = p["cluster_lam"], p["cluster_threshold"]
    per_seed, ctrl, pools, own, shuffled = [], [], 0, [], []
    for s in p["grey_seeds"]:
        P = grey.P[(s, lam1)]
        e = cluster_orientation_excess(P, theta, thr, s)
        r = cluster_orientation_excess(shuffled_rows(P, s).double().numpy(), theta, thr, s)
        if len(e) < 2 or len(r) < 2:
            continue
        per_seed.append(float(e.mean()))
        ctrl.append(float(r.mean()))
        own.append(e)
        shuffled.append(r)
        pools += len(e)
    info = {"excess_per_seed": per_seed, "random_excess_per_seed": ctrl, "pools": pools}
    setting = (
        f"profile {p['profile']}; grey model, lambda={lam1:g}, {len(p['grey_seeds'])} seeds; members: P_ij > {thr} "
        f"max_j P_ij; {pools} pools with 2+ members over the seeds; spread = circular variance of the filters' "
        "orientation"
    )
    stmt = (
        '"In some clusters, edge detectors of similar orientations are grouped together." / "It is evident that '
        'similar features are clustered together."'
    )
    if len(per_seed) < len(p["grey_seeds"]):
        return [
            C.not_testable(
                "pools_group_similar_orientations",
                STAGE,
                stmt,
                "Sec. 3.2; Sec. 3.1, Fig. 4",
                "orientation spread inside pools vs random groups and vs a random P",
                setting=setting,
                reason="scale",
                why="Some seed's P has fewer than two pools with two or more members.",
                decide="a P with more multi-member pools (a longer training)",
            )
        ], info
    est = C.nested_interval(own, shuffled, what="pools (P's and the row-shuffled P's)")
    return [
        C.less(
            "pools_group_similar_orientations",
            STAGE,
            stmt,
            "Sec. 3.2; Sec. 3.1, Fig. 4",
            "mean over pools of (members' orientation spread - random groups of the same size), P minus the same "
            "P with its rows shuffled",
            est,
            setting=setting,
            trained=True,
            why="Per seed, P: "
            + ", ".join(f"{v:+.3f}" for v in per_seed)
            + "; row-shuffled P: "
            + ", ".join(f"{v:+.3f}" for v in ctrl)
            + ".",
        )
    ], info


def claims(runs: dict, correct: dict, grey, theta: np.ndarray, p: dict, sizes: dict) -> tuple[list, dict]:
    """Every claim of the paper on this run, and the orientation numbers behind the last one."""
    orient, info = orientation(grey, theta, p, sizes)
    out = ap_vs_sp(runs, correct, p, sizes) + invariance(grey, p, sizes) + orient
    return C.check_unique(out), info
