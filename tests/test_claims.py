"""The claims ledger (poolrep.claims): statuses follow from the interval and the test, on synthetic numbers on
both sides of every kind of claim; intervals come from scipy's bootstrap, paired over the items, or from the
seeds x items t-intervals of poolrep.stats. Issue 42's rules (claims.py's module docstring, rules 1-7) each have
hand-made cases on both sides of their threshold below; the committed-ledger tests at the end read
results/*/claims.json."""

from __future__ import annotations

import numpy as np
import pytest

from poolrep import claims as C

KW = dict(setting="synthetic", why="")


def _claim(test, est, bound=0.0):
    if test == "greater":
        return C.greater("x", "s", "q", "src", "A - B", est, bound=bound, **KW)
    if test == "less":
        return C.less("x", "s", "q", "src", "A - B", est, bound=bound, **KW)
    return C.within("x", "s", "q", "src", "A", est, bound, **KW)


@pytest.mark.parametrize(
    "test,interval,bound,status,why",
    [
        ("greater", (0.5, 1.0, 1.5), 0.0, "reproduced", "The 95 % interval [0.5, 1.5] lies entirely > 0."),
        ("greater", (-1.5, -1.0, -0.5), 0.0, "not reproduced", "The 95 % interval [-1.5, -0.5] excludes > 0."),
        ("greater", (-0.5, 0.2, 0.9), 0.0, "inconclusive", "The 95 % interval [-0.5, 0.9] straddles 0."),
        # an interval that only touches the bound is never "not reproduced" (a ceiling tie, e.g.)
        ("greater", (-0.3, -0.1, 0.0), 0.0, "inconclusive", "The 95 % interval [-0.3, 0] touches 0."),
        ("less", (0.0, 0.1, 0.3), 0.0, "inconclusive", "The 95 % interval [0, 0.3] touches 0."),
        ("greater", (0.0, 0.0, 0.0), 0.0, "not reproduced", "The exact value 0 excludes > 0."),  # equal is not better
        ("greater", (0.5, 1.0, 1.5), 1.0, "inconclusive", "The 95 % interval [0.5, 1.5] straddles 1."),  # bound != 0
        ("less", (-1.5, -1.0, -0.5), 0.0, "reproduced", "The 95 % interval [-1.5, -0.5] lies entirely < 0."),
        ("less", (0.5, 1.0, 1.5), 0.0, "not reproduced", "The 95 % interval [0.5, 1.5] excludes < 0."),
        ("less", (-0.1, 0.005, 0.02), 0.01, "inconclusive", "The 95 % interval [-0.1, 0.02] straddles 0.01."),
        # "no significant gain" within a margin
        ("less", (-0.02, -0.01, 0.005), 0.01, "reproduced", "The 95 % interval [-0.02, 0.005] lies entirely < 0.01."),
        (
            "within",
            (64.0, 64.5, 65.0),
            (63.6, 65.6),
            "reproduced",
            "The 95 % interval [64, 65] lies inside [63.6, 65.6].",
        ),
        (
            "within",
            (41.5, 42.0, 42.5),
            (63.6, 65.6),
            "not reproduced",
            "The 95 % interval [41.5, 42.5] lies outside [63.6, 65.6].",
        ),
        (
            "within",
            (70.2, 71.0, 71.8),
            (63.6, 65.6),
            "not reproduced",
            "The 95 % interval [70.2, 71.8] lies outside [63.6, 65.6].",
        ),
        (
            "within",
            (63.0, 63.8, 64.4),
            (63.6, 65.6),
            "inconclusive",
            "The 95 % interval [63, 64.4] overlaps the edge of [63.6, 65.6].",
        ),
    ],
)
def test_status_follows_from_the_interval(test, interval, bound, status, why):
    lo, v, hi = interval
    c = _claim(test, C.Estimate(v, lo, hi, "synthetic"), bound)
    assert c.status == status
    # the verdict sentence is generated from the same interval and bound; the author's why (empty here) is kept apart
    assert c.verdict == why and c.why == ""


def test_why_keeps_the_given_sentence_and_names_the_unit():
    c = C.greater(
        "x",
        "s",
        "q",
        "src",
        "A - B",
        C.Estimate(2.5, 0.5, 4.5, "boot"),
        unit="points",
        setting="x",
        why="Read as a strict ordering.",
    )
    assert c.why == "Read as a strict ordering."  # the author's sentence, untouched
    assert c.verdict == "The 95 % interval [0.5, 4.5] points lies entirely > 0."
    joined = "Read as a strict ordering. The 95 % interval [0.5, 4.5] points lies entirely > 0."
    assert C.why_text(c.as_dict()) == joined and C.table([c]).iloc[0]["why"] == joined


def test_not_testable_keeps_our_number_and_the_papers_but_never_judges():
    ours = C.Estimate(42.0, 40.0, 44.0, "bootstrap")
    c = C.not_testable(
        "t1",
        "autopool",
        "64.6 %",
        "Table 1",
        "accuracy",
        ours=ours,
        unit="%",
        paper=64.6,
        setting="cpu",
        why="Reduced sizes.",
        reason="scale",
    )
    assert c.status == "not testable here" and c.value == 42.0 and c.paper == 64.6 and c.why == "Reduced sizes."
    assert c.verdict == "" and c.decide == C.DECIDE[C.Reason.SCALE]  # the default for its reason
    row = C.table([c]).iloc[0]
    assert (
        row["ours"] == "42 [40, 44] %"
        and row["paper's number"] == "64.6 %"
        and row["status"] == "not testable here (scale)"
    )
    assert C.not_testable("t2", "s", "q", "src", "y", setting="x", why="No data.", reason="data").value is None


def test_paired_bootstrap_on_synthetic_items_on_both_sides():
    rng = np.random.default_rng(0)
    n = 2000
    base = rng.random(n) < 0.6
    better = base | (rng.random(n) < 0.15)  # right on every item base gets right, and more
    est = C.paired_bootstrap(better, base, scale=100, what="test images")
    assert est.lo > 0 and est.value == pytest.approx(100 * (better.mean() - base.mean()))
    assert C.greater("b", "s", "q", "src", "A - B", est, **KW).status == "reproduced"
    rev = C.paired_bootstrap(base, better, scale=100)
    assert rev.hi < 0 and C.greater("b", "s", "q", "src", "A - B", rev, **KW).status == "not reproduced"
    noise = rng.random(n) < 0.6
    tie = C.paired_bootstrap(noise, np.roll(noise, 1), scale=100)
    assert tie.lo < 0 < tie.hi and C.greater("b", "s", "q", "src", "A - B", tie, **KW).status == "inconclusive"


def test_pairing_narrows_the_interval():
    """The same resample for both sides: a shared per-item effect cancels in the paired difference."""
    rng = np.random.default_rng(1)
    item = rng.normal(size=500)  # per-item difficulty shared by both methods
    a, b = item + 0.1, item + rng.normal(0, 0.05, 500)
    paired = C.paired_bootstrap(a, b)
    unpaired_width = C.bootstrap_mean(a).hi - C.bootstrap_mean(a).lo
    assert (paired.hi - paired.lo) < 0.2 * unpaired_width and paired.lo > 0


def test_seeds_are_averaged_per_item_and_results_repeat():
    x = np.array([[1, 0, 1], [1, 1, 1], [0, 0, 0], [1, 0, 0]], dtype=float)  # items x seeds
    e1 = C.bootstrap_mean(x, seed=3)
    assert e1.value == pytest.approx(np.mean([2 / 3, 1, 0, 1 / 3]))
    assert C.bootstrap_mean(x, seed=3) == e1  # same seed, same interval
    const = C.bootstrap_mean(np.ones(10))
    assert (const.lo, const.value, const.hi) == (1.0, 1.0, 1.0)


def test_seed_interval_carries_run_to_run_variation():
    """Three seeds whose difference swings from -6 to +6 points while the items agree within a seed: the item-only
    interval (models held fixed) is narrow around the mean; the one over seeds x items spans the seeds' spread."""
    rng = np.random.default_rng(4)
    n = 2000
    b = (rng.random((n, 3)) < 0.6).astype(float)
    a = b.copy()
    for s, flips in ((0, 120), (1, 0), (2, -120)):  # seed 0: +6 points, seed 1: 0, seed 2: -6 points
        rows = np.flatnonzero(b[:, s] == (0 if flips > 0 else 1))[: abs(flips)]
        a[rows, s] = 1 - a[rows, s]
    two = C.seed_interval(a, b, scale=100, what="test images")
    fixed = C.paired_bootstrap(a, b, scale=100, what="test images")
    assert two.value == pytest.approx(0.0) and fixed.value == pytest.approx(0.0)
    assert fixed.hi - fixed.lo < 1.5  # items only: the per-item mean over seeds barely moves
    # seed means +6, 0, -6: sd 6, so the t-interval (about 2 df) is about 0 +- 4.3 * 6 / sqrt(3) = +-15
    assert -17 < two.lo < -13 and 13 < two.hi < 17
    assert two.how.startswith("t-interval over 3 seeds x 2,000 test images (crossed random effects")
    assert C.seed_interval(a, b, scale=100, what="test images") == two  # no random draws: the same interval


def test_seed_interval_equals_the_anova_formula_on_a_hand_made_table():
    """2 items x 2 seeds, d = [[1, 3], [2, 6]]: mean 3; seed means 1.5, 4.5 (MS_seed = 2 * 4.5 = 9); item means 2, 4
    (MS_item = 2 * 2 = 4); residuals +-0.5 (MS_resid = 1); var = (9 + 4 - 1) / 4 = 3; Satterthwaite df =
    9 / ((9/4)^2 + (4/4)^2 + (1/4)^2) = 9 / 6.125."""
    from scipy.stats import t

    d = np.array([[1.0, 3.0], [2.0, 6.0]])
    est = C.seed_interval(d)
    half = t.ppf(0.975, 9 / 6.125) * np.sqrt(3.0)
    assert est.value == pytest.approx(3.0)
    assert est.lo == pytest.approx(3.0 - half) and est.hi == pytest.approx(3.0 + half)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("sd_seed, sd_item, sd_inter", [(0.03, 0.10, 0.10), (0.01, 0.20, 0.20), (0.0, 0.20, 0.20)])
def test_seed_interval_covers_at_few_seeds(k, sd_seed, sd_item, sd_inter):
    """Issue 36's simulation, seeded: d[i, s] = 0.05 + seed_s + item_i + interaction_is, 500 items, 200 draws of
    the whole design (Monte Carlo SE of a coverage near 0.95: about 0.015). The seeds-x-items interval covers the
    true 0.05 in at least 90 % of the draws in every scenario, the seed-dominated one included, where the pigeonhole
    bootstrap it replaced covered 84 % (issue 36)."""
    rng = np.random.default_rng(36)
    hits = 0
    for _ in range(200):
        d = (
            0.05
            + rng.normal(0, sd_seed, k)[None]
            + rng.normal(0, sd_item, 500)[:, None]
            + rng.normal(0, sd_inter, (500, k))
        )
        est = C.seed_interval(d)
        hits += est.lo <= 0.05 <= est.hi
    assert hits / 200 >= 0.90


def test_seed_interval_one_seed_is_the_item_bootstrap_and_one_column_counts_for_every_seed():
    rng = np.random.default_rng(5)
    a, b = (rng.random((800, 1)) < 0.7).astype(float), (rng.random((800, 1)) < 0.6).astype(float)
    one, items = C.seed_interval(a, b, scale=100), C.paired_bootstrap(a, b, scale=100)
    assert (one.value, one.lo, one.hi) == pytest.approx((items.value, items.lo, items.hi))
    assert one.how.startswith("one seed (models held fixed)")
    three = (rng.random((800, 3)) < 0.7).astype(float)
    assert C.seed_interval(three, b) == C.seed_interval(three, np.repeat(b, 3, axis=1))
    assert C.seed_interval(three).value == pytest.approx(three.mean())  # no b: the mean
    const = C.seed_interval(np.full((10, 3), 0.5), np.full((10, 1), 0.25), scale=100)
    assert (const.lo, const.value, const.hi) == (25.0, 25.0, 25.0)
    with pytest.raises(ValueError, match="same items and seeds"):
        C.seed_interval(np.ones((5, 3)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="same items and seeds"):
        C.seed_interval(np.ones((5, 3)), np.ones((6, 3)))
    with pytest.raises(ValueError, match="at least 2 items"):
        C.seed_interval(np.ones((1, 3)))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same items"):
        C.paired_bootstrap(np.ones(5), np.ones(6))
    with pytest.raises(ValueError, match="at least 2"):
        C.bootstrap_mean([1.0])
    with pytest.raises(ValueError, match="does not contain"):
        C.Estimate(5.0, 0.0, 1.0, "x")
    with pytest.raises(ValueError, match="unknown test"):
        C.Claim("x", "s", "q", "src", "bigger", "A", 0.0, 1.0, 0.0, 2.0, "", "", None, "", "")
    with pytest.raises(ValueError, match="used twice"):
        est = C.exact(1.0)
        C.check_unique([_claim("greater", est), _claim("greater", est)])


def test_counts_list_every_status():
    cs = [
        _claim("greater", C.exact(1.0)),
        _claim("greater", C.exact(-1.0)),
        C.not_testable("t", "s", "q", "src", "y", setting="x", why="w", reason="data").as_dict(),
    ]
    assert C.counts(cs) == {"reproduced": 1, "not reproduced": 1, "inconclusive": 0, "not testable here": 1}


# ------------------------------------------------------------------ issue 30: a verdict only where the test decides


def _est(lo, v, hi, items=1000, seeds=1, confidence=C.CONFIDENCE, floor=None):
    return C.Estimate(v, lo, hi, "synthetic", items=items, seeds=seeds, confidence=confidence, floor=floor)


def _g(est, **kw):
    return C.greater("x", "s", "q", "src", "A - B", est, setting="synthetic", why="", **kw)


def test_a_failed_precondition_makes_the_claim_not_testable_and_names_the_check():
    pre = [
        C.precondition("P's held-out cost <= the grid's", "823.7 vs 798.6", "P's cost at or below", False),
        C.precondition("another check", "1 vs 2", "1 < 2", True),
    ]
    c = _g(_est(-14.8, -13.9, -13.1), preconditions=pre)  # the interval alone would read "not reproduced"
    assert (c.status, c.reason) == ("not testable here", "precondition")
    assert "P's held-out cost <= the grid's: 823.7 vs 798.6" in c.verdict and "another check" not in c.verdict
    assert c.why == "" and c.design_error == "" and c.decide == C.DECIDE[C.Reason.PRECONDITION]
    row = C.table([c]).iloc[0]
    assert row["status"] == "not testable here (precondition)"
    assert "823.7 vs 798.6 (needs P's cost at or below; fails)" in row["preconditions"]
    assert "1 vs 2 (needs 1 < 2; holds)" in row["preconditions"]
    held = _g(_est(0.5, 1.0, 1.5), preconditions=pre[1:])
    assert held.status == "reproduced" and held.reason == ""


def test_saturated_when_the_baseline_has_less_headroom_than_the_papers_effect():
    # the pairs set: L5 scores mAP 1.0 (headroom 0) and the paper's effect is +0.0865
    c = _g(_est(-0.028, -0.009, 0.0, items=40), paper=0.0865, headroom=0.0, unit="mAP")
    assert (c.status, c.reason) == ("not testable here", "saturated") and "from its ceiling" in c.verdict
    roomy = _g(_est(-0.028, -0.009, 0.0, items=40), paper=0.0865, headroom=0.25, unit="mAP")
    assert roomy.status == "inconclusive"  # touches the bound: never "not reproduced"


def test_every_item_tied_is_saturated_and_too_few_items_give_no_verdict():
    tie = _g(_est(0.0, 0.0, 0.0, items=500))
    assert (tie.status, tie.reason) == ("not testable here", "saturated") and "ties" in tie.verdict
    nine = _g(_est(-0.3, -0.1, -0.02, items=9))
    assert (nine.status, nine.reason) == ("not testable here", "scale") and "9 test items" in nine.verdict
    thirty = _g(_est(-0.3, -0.1, -0.02, items=C.MIN_ITEMS))
    assert thirty.status == "not reproduced"
    exact = _g(C.exact(0.0))  # an exact value on the bound (a dimension): equal is not better
    assert exact.status == "not reproduced"


def test_power_underpowered_resolves_or_excludes_the_papers_effect():
    """Power remarks on a comparable paper effect only (rule 5)."""
    under = _g(_est(-2.0, 0.5, 3.0), paper=1.0, comparable=True)  # half-width 2.5 >= effect 1
    assert under.status == "inconclusive" and under.power == "underpowered" and "Underpowered" in under.verdict
    excl = _g(_est(-0.3, 0.1, 0.5), paper=2.0, comparable=True)  # [-0.3, 0.5]: excludes +2 but not 0
    assert excl.status == "inconclusive" and excl.power == "excludes the paper's effect"
    assert "excludes an effect as large as the paper's" in excl.verdict
    res = _g(_est(0.5, 1.0, 1.5), paper=2.0, comparable=True)
    assert res.status == "reproduced" and res.power == "resolves" and "resolves the paper's effect 2" in res.verdict
    assert _g(_est(0.5, 1.0, 1.5), comparable=True).power == ""  # no effect in the paper: nothing to resolve


def test_equivalence_inside_and_outside_the_margin():
    kw = dict(setting="synthetic", why="")
    tost = C.TOST_CONFIDENCE
    inside = C.equivalent("e", "s", "q", "src", "L2 - L1", _est(-0.008, -0.002, 0.004, confidence=tost), 0.01, **kw)
    assert inside.status == "reproduced" and inside.bound == [-0.01, 0.01] and inside.margin == 0.01
    assert (
        inside.confidence == tost and inside.verdict == "The 90 % interval [-0.008, 0.004] lies inside [-0.01, 0.01]."
    )
    assert C.describe_test(inside.as_dict()) == "L2 - L1 in [-0.01, 0.01] (two one-sided tests, 90 % interval)"
    worse = C.equivalent("e", "s", "q", "src", "L2 - L1", _est(-0.017, -0.012, -0.011, confidence=tost), 0.01, **kw)
    assert worse.status == "not reproduced"  # a one-sided "no gain" test would have passed this
    edge = C.equivalent("e", "s", "q", "src", "L2 - L1", _est(-0.015, -0.008, -0.001, confidence=tost), 0.01, **kw)
    assert edge.status == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        C.equivalent("e", "s", "q", "src", "L2 - L1", _est(-1, 0, 1, confidence=tost), 0.0, **kw)
    with pytest.raises(ValueError, match="TOST_CONFIDENCE"):  # a 95 % estimate is refused (rule 2)
        C.equivalent("e", "s", "q", "src", "L2 - L1", _est(-0.008, -0.002, 0.004), 0.01, **kw)


def test_item_only_intervals_are_never_used_for_a_claim_about_a_training_method():
    """Issues 36 and 42: a training-method claim on one trained model per arm, or on 2 seeds, gets no verdict and is a
    design error; on an interval over MIN_SEEDS (3) seeds (seed_interval) it is judged."""
    rng = np.random.default_rng(3)
    one = C.paired_bootstrap(np.ones(200), (rng.random(200) < 0.5).astype(float))
    c = _g(one, trained=True)
    assert (c.status, c.reason) == ("not testable here", "scale") and "this interval spans 1" in c.verdict
    assert c.design_error == "a training-method claim on 1 seed(s), fewer than 3"
    two = C.seed_interval(np.ones((200, 2)), (rng.random((200, 2)) < 0.5).astype(float))
    c2 = _g(two, trained=True)
    assert two.seeds == 2 and (c2.status, c2.reason) == ("not testable here", "scale") and c2.design_error
    three = C.seed_interval(np.ones((200, 3)), (rng.random((200, 3)) < 0.5).astype(float))
    assert three.seeds == 3 and _g(three, trained=True).status == "reproduced"
    assert _g(three, trained=True).design_error == ""
    assert _g(one).status == "reproduced"  # not about training: the item interval is the right one


def test_not_testable_needs_a_known_reason():
    with pytest.raises(ValueError, match="needs a reason"):
        C.not_testable("t", "s", "q", "src", "y", setting="x", why="w", reason="")
    with pytest.raises(ValueError, match="unknown reason"):
        C.not_testable("t", "s", "q", "src", "y", setting="x", why="w", reason="budget")


def test_changes_list_each_status_that_moved_with_both_intervals():
    old = [
        dict(_g(_est(-1.5, -1.0, -0.5)).as_dict(), id="a"),
        dict(_g(_est(0.5, 1, 1.5)).as_dict(), id="b"),
        dict(_g(_est(0.5, 1, 1.5)).as_dict(), id="gone"),
    ]
    new = [
        dict(_g(_est(-1.5, -1.0, -0.5), preconditions=[C.precondition("p", "1", "2", False)]).as_dict(), id="a"),
        dict(_g(_est(0.5, 1, 1.5)).as_dict(), id="b"),
        dict(_g(_est(0.5, 1, 1.5)).as_dict(), id="new"),
    ]
    ch = C.changes(old, new)
    assert [(c["id"], c["old"], c["new"]) for c in ch] == [
        ("a", "not reproduced", "not testable here (precondition)"),
        ("new", "(new)", "reproduced"),
        ("gone", "reproduced", "(gone)"),
    ]
    assert ch[0]["old_ours"] == ch[0]["new_ours"] == "-1 [-1.5, -0.5]"


def test_forest_plot_draws_one_row_per_claim():
    cs = [
        _g(_est(0.5, 1.0, 1.5), paper=2.0, comparable=True),
        C.within("w", "s", "q", "src", "A", _est(1, 2, 3), (0, 4), setting="x", why=""),
        C.not_testable("n", "s", "q", "src", "y", setting="x", why="w", reason="data"),
    ]
    fig = C.forest_plot(cs, "synthetic")
    axes = fig.axes
    assert len(axes) == 3
    assert axes[0].get_title(loc="left") == "x: reproduced (resolves)"
    assert axes[2].get_title(loc="left") == "n: not testable here (data)"
    lo, hi = axes[0].get_xlim()
    assert lo < 0.5 and hi > 2.0  # the interval and the paper's diamond are both in view


# ------------------------------------------------------------------ issue 42: the rules, on both sides of each threshold


def _trained(lo, v, hi, **kw):
    """A training-method estimate over MIN_SEEDS seeds (passes the seeds gate), 1,000 items."""
    return _est(lo, v, hi, seeds=C.MIN_SEEDS, **kw)


def test_the_gates_run_in_order_precondition_first():
    """A failed precondition is named even where a stand-in, too few seeds and too few items would also stop the
    claim (the order in Claim._gate: preconditions, stand-ins, seeds, stability, saturation, items, ties, band)."""
    pre = [C.precondition("pools formed", "0 of 8", "8 of 8", False)]
    c = _g(_est(0.5, 1.0, 1.5, items=9), preconditions=pre, standins=["gap_for_fc_codes"], trained=True)
    assert (c.status, c.reason) == ("not testable here", "precondition") and c.design_error == ""
    c = _g(_est(0.5, 1.0, 1.5, items=9), standins=["gap_for_fc_codes"], trained=True)
    assert c.reason == "stand-in" and c.design_error == ""
    c = _g(_est(0.5, 1.0, 1.5, items=9), trained=True)  # seeds before items
    assert c.reason == "scale" and "seed" in c.design_error


@pytest.mark.parametrize("key", sorted(C.standins.REGISTRY))
def test_a_stand_in_that_loses_the_contrast_gates_every_claim_one_that_keeps_it_does_not(key):
    s = C.standins.get(key)
    c = _g(_est(0.5, 1.0, 1.5), standins=[key])
    if s.keeps_contrast:
        assert c.status == "reproduced" and c.reason == "" and c.decide == ""
    else:
        assert (c.status, c.reason) == ("not testable here", "stand-in")
        assert s.reason in c.verdict and s.substitute in c.verdict and c.decide == s.decide
        assert c.design_error == ""  # a substitution is not a design error: the registry says what would decide it


def test_the_registry_reads_the_same_in_every_claim_that_names_a_key():
    lost = C.standins.get("gap_for_fc_codes")
    assert not lost.keeps_contrast and C.standins.get("mobilenet_conv_maps").keeps_contrast
    judged = _g(_est(0.5, 1.0, 1.5), standins=["gap_for_fc_codes", "mobilenet_conv_maps"])
    assert (judged.status, judged.reason, judged.decide) == ("not testable here", "stand-in", lost.decide)
    declared = C.not_testable(
        "n", "s", "q", "src", "y", setting="x", why="Ours is another net.", reason="stand-in", standins=[lost.key]
    )
    assert declared.why == "Ours is another net." and f"Stand-in: {lost.substitute}" in declared.verdict
    assert declared.decide == lost.decide
    with pytest.raises(KeyError, match="poolrep.standins") as e:
        _g(_est(0.5, 1.0, 1.5), standins=["alexnet_fc7"])
    assert "alexnet_fc7" in str(e.value) and "gap_for_fc_codes" in str(e.value)  # names the registry's keys
    with pytest.raises(KeyError, match="poolrep.standins"):
        C.not_testable("n", "s", "q", "src", "y", setting="x", why="w", reason="data", standins=["typo"])


@pytest.mark.parametrize(
    "seeds,trained,status,design_error",
    [
        (1, True, "not testable here", True),
        (2, True, "not testable here", True),
        (3, True, "reproduced", False),
        (5, True, "reproduced", False),
        (1, False, "reproduced", False),  # not about a training method: one model per arm is the design
        (2, False, "reproduced", False),
    ],
)
def test_a_training_method_claim_needs_three_seeds(seeds, trained, status, design_error):
    assert C.MIN_SEEDS == 3
    c = _g(_est(0.5, 1.0, 1.5, seeds=seeds), trained=trained)
    assert c.status == status and bool(c.design_error) == design_error
    if design_error:
        assert c.reason == "scale" and f"on {seeds} seed(s), fewer than 3" in c.design_error
        assert f"spans {seeds}" in c.verdict and c.decide == C.DECIDE[C.Reason.SCALE]


def _stab(std, longer):
    return C.stability(std, longer, "20 epochs", "40 epochs")


def test_stability_gate_a_sign_flip_or_a_large_move_is_not_testable_a_small_move_is_judged():
    std = _trained(0.5, 1.0, 1.5)  # half-width 0.5
    flip = _g(std, trained=True, stability=_stab(std, _trained(-0.7, -0.2, 0.3)))
    assert (flip.status, flip.reason) == ("not testable here", "scale") and flip.design_error == ""
    assert "at 20 epochs" in flip.verdict and "at 40 epochs" in flip.verdict and "moved -1.2" in flip.verdict
    assert flip.decide  # says what would decide it
    small = _g(std, trained=True, stability=_stab(std, _trained(0.8, 1.3, 1.8)))  # moved 0.3 < 0.5
    assert small.status == "reproduced" and small.reason == "" and small.stability["longer"]["value"] == 1.3
    down = _g(std, trained=True, stability=_stab(std, _trained(0.2, 0.7, 1.2)))  # moved -0.3: either direction
    assert down.status == "reproduced"
    large = _g(std, trained=True, stability=_stab(std, _trained(1.2, 1.7, 2.2)))  # moved 0.7 >= 0.5, same side
    assert (large.status, large.reason) == ("not testable here", "scale")
    edge = _g(std, trained=True, stability=_stab(std, _trained(1.0, 1.5, 2.0)))  # moved exactly the half-width
    assert edge.status == "not testable here"  # "less than" the half-width
    assert C.stability_holds(_stab(std, _trained(0.8, 1.3, 1.8)), 0.0) == (True, pytest.approx(0.3), 0.5)


def test_stability_gate_reads_the_standard_estimates_half_width_not_the_longer_ones():
    # standard narrow (+-0.5), longer wide (+-1.5), move 0.7: the standard allowance gates it, the longer's would not
    std = _trained(0.5, 1.0, 1.5)
    c = _g(std, trained=True, stability=_stab(std, _trained(0.2, 1.7, 3.2)))
    assert (c.status, c.reason) == ("not testable here", "scale") and "half-width 0.5" in c.verdict
    # standard wide (+-1.0), longer narrow (+-0.2), move 0.6: the standard allowance passes it, the longer's would not
    wide = _trained(0.5, 1.5, 2.5)
    c = _g(wide, trained=True, stability=_stab(wide, _trained(1.9, 2.1, 2.3)))
    assert c.status == "reproduced"


def test_stability_reads_the_side_of_the_bound_and_needs_the_same_items():
    std = _trained(1.5, 2.0, 2.5)
    longer = _trained(1.4, 1.9, 2.4)
    assert _g(std, trained=True, stability=_stab(std, longer)).status == "reproduced"
    # the same move against bound 1.95 flips the side: not stable
    assert _g(std, trained=True, bound=1.95, stability=_stab(std, longer)).status == "not testable here"
    # a value on the bound has no side
    on = _trained(-0.5, 0.0, 0.5)
    assert _g(on, trained=True, stability=_stab(on, _trained(-0.4, 0.1, 0.6))).status == "not testable here"
    # an equivalence keeps no side: a small move across 0 is stable, a large move is not
    tost = dict(confidence=C.TOST_CONFIDENCE)
    e_std, e_long = _trained(0.001, 0.004, 0.007, **tost), _trained(-0.001, 0.002, 0.005, **tost)
    eq = C.equivalent("e", "s", "q", "src", "d", e_std, 0.01, setting="x", why="", trained=True)
    assert eq.status == "reproduced"
    eq = C.equivalent(
        "e", "s", "q", "src", "d", e_std, 0.01, setting="x", why="", trained=True, stability=_stab(e_std, e_long)
    )
    assert eq.status == "reproduced"
    flip = _trained(-0.005, -0.002, 0.001, **tost)  # moved -0.006, beyond the standard half-width 0.003
    eq = C.equivalent(
        "e", "s", "q", "src", "d", e_std, 0.01, setting="x", why="", trained=True, stability=_stab(e_std, flip)
    )
    assert eq.status == "not testable here"
    near0, across = _trained(-0.002, 0.001, 0.004, **tost), _trained(-0.004, -0.001, 0.002, **tost)  # moved -0.002
    eq = C.equivalent(
        "e", "s", "q", "src", "d", near0, 0.01, setting="x", why="", trained=True, stability=_stab(near0, across)
    )
    assert eq.status == "reproduced"
    with pytest.raises(ValueError, match="same items"):
        C.stability(std, _est(1.4, 1.9, 2.4, items=999, seeds=3), "a", "b")


@pytest.mark.parametrize(
    "headroom,items,saturated",
    [
        (0.0199, 50, True),  # 0.995 of one item's worth
        (0.02, 50, False),  # exactly one item's worth: room for one item to change
        (0.0201, 50, False),
        (0.024, 40, True),  # 0.96
        (0.026, 40, False),  # 1.04
        (0.0, 1000, True),
    ],
)
def test_saturated_when_headroom_times_items_is_below_one(headroom, items, saturated):
    c = _g(_est(0.5, 1.0, 1.5, items=items), headroom=headroom)
    if saturated:
        assert (c.status, c.reason) == ("not testable here", "saturated") and c.design_error == ""
        assert c.decide == C.DECIDE[C.Reason.SATURATED] and f"one of {items} items' worth" in c.verdict
    else:
        assert c.status == "reproduced" and c.reason == ""
    assert _g(_est(0.5, 1.0, 1.5, items=items)).status == "reproduced"  # no headroom given: no saturation check


def test_items_29_is_a_design_error_30_is_judged():
    assert C.MIN_ITEMS == 30
    c29 = _g(_est(0.5, 1.0, 1.5, items=29))
    assert (c29.status, c29.reason) == ("not testable here", "scale")
    assert c29.design_error == "29 resampled items, fewer than 30"
    c30 = _g(_est(0.5, 1.0, 1.5, items=30))
    assert (c30.status, c30.design_error) == ("reproduced", "")


def test_a_band_no_wider_than_the_intervals_half_width_is_a_design_error():
    narrow = C.within("w", "s", "q", "src", "A", _est(0.4, 1.0, 1.6), (0.8, 1.2), setting="x", why="")  # 0.6 vs 0.2
    assert (narrow.status, narrow.reason) == ("not testable here", "scale")
    assert narrow.design_error == "the interval's half-width 0.6 is not below the band's 0.2"
    equal = C.within("w", "s", "q", "src", "A", _est(0.0, 1.0, 2.0), (0.0, 2.0), setting="x", why="")  # 1 vs 1
    assert equal.status == "not testable here" and equal.design_error
    ok = C.within("w", "s", "q", "src", "A", _est(0.1, 1.0, 1.9), (0.0, 2.0), setting="x", why="")  # 0.9 vs 1
    assert (ok.status, ok.design_error) == ("reproduced", "")
    tost = C.equivalent(
        "e", "s", "q", "src", "d", _est(-0.012, 0.0, 0.012, confidence=C.TOST_CONFIDENCE), 0.01, setting="x", why=""
    )
    assert tost.status == "not testable here" and "not below the band's 0.01" in tost.design_error


def _tost_items():
    """400 per-item differences with mean exactly 0.03 and sd exactly 0.1: standard error 0.1 / sqrt(400) = 0.005."""
    z = np.random.default_rng(42).normal(size=400)
    return 0.03 + 0.1 * (z - z.mean()) / z.std(ddof=1)


def test_tost_against_a_hand_computed_90_interval():
    """The 90 % interval of a mean of 400 items with sd 0.1 is 0.03 +- t(0.95, 399) * 0.005 = 0.03 +- 0.00824, i.e.
    about [0.0218, 0.0382]; its 95 % interval about [0.0202, 0.0398]. Against +-margin: 0.05 and 0.039 lie beyond
    the 90 % upper bound (reproduced; 0.039 only because the 90 % interval is read), 0.03 cuts the interval
    (inconclusive), 0.015 lies below its lower bound (not reproduced: the difference is outside the margin)."""
    from scipy.stats import bootstrap, t

    d = _tost_items()
    assert d.mean() == pytest.approx(0.03) and d.std(ddof=1) == pytest.approx(0.1)
    est = C.bootstrap_mean(d, confidence=C.TOST_CONFIDENCE)
    half = t.ppf(0.95, 399) * 0.005
    assert half == pytest.approx(0.00824, abs=1e-5)
    assert est.confidence == 0.90 and est.value == pytest.approx(0.03)
    assert est.lo == pytest.approx(0.03 - half, abs=3e-4) and est.hi == pytest.approx(0.03 + half, abs=3e-4)
    ref = bootstrap(
        (d,),
        lambda x, axis: x.mean(axis),
        n_resamples=C.N_RESAMPLES,
        batch=500,
        vectorized=True,
        method="percentile",
        confidence_level=0.90,
        rng=np.random.default_rng(0),
    ).confidence_interval
    assert (est.lo, est.hi) == pytest.approx((ref.low, ref.high))  # scipy's own bootstrap, same draws
    e95 = C.bootstrap_mean(d)
    assert e95.lo < est.lo and est.hi < 0.039 < e95.hi  # 0.039 separates the two upper bounds
    for margin, status in (
        (0.05, "reproduced"),
        (0.039, "reproduced"),
        (0.03, "inconclusive"),
        (0.015, "not reproduced"),
    ):
        c = C.equivalent("e", "s", "q", "src", "d", est, margin, setting="x", why="")
        assert (c.status, c.design_error) == (status, ""), margin
        assert c.bound == [-margin, margin] and c.confidence == 0.90 and c.items == 400
    assert C.status_of("within", e95, [-0.039, 0.039]) == "inconclusive"  # what a 95 % interval would have said
    with pytest.raises(ValueError, match="TOST_CONFIDENCE"):
        C.equivalent("e", "s", "q", "src", "d", e95, 0.05, setting="x", why="")
    with pytest.raises(ValueError, match="ordering reads the 95"):  # and an ordering refuses a 90 % estimate
        _g(est)


def test_non_superior_reads_the_90_upper_bound_against_the_margin():
    kw = dict(setting="x", why="")
    tost = C.TOST_CONFIDENCE
    below = C.non_superior("n", "s", "q", "src", "rise", _est(-0.02, 0.0, 0.009, confidence=tost), 0.01, **kw)
    assert (below.status, below.test, below.bound, below.margin) == ("reproduced", "less", 0.01, 0.01)
    assert C.describe_test(below.as_dict()) == "rise < 0.01 (non-superiority, 90 % interval)"
    above = C.non_superior("n", "s", "q", "src", "rise", _est(0.011, 0.02, 0.03, confidence=tost), 0.01, **kw)
    assert above.status == "not reproduced"
    across = C.non_superior("n", "s", "q", "src", "rise", _est(0.0, 0.01, 0.02, confidence=tost), 0.01, **kw)
    assert across.status == "inconclusive"
    touch = C.non_superior("n", "s", "q", "src", "rise", _est(0.0, 0.005, 0.01, confidence=tost), 0.01, **kw)
    assert touch.status == "inconclusive"  # an upper bound on the margin is not below it
    # margin 0: the quantity already subtracts its allowance
    zero = C.non_superior(
        "n", "s", "q", "src", "rise - a quarter", _est(-0.03, -0.02, -0.001, confidence=tost), 0, **kw
    )
    assert (zero.status, zero.bound, zero.margin) == ("reproduced", 0.0, 0.0)
    zero = C.non_superior("n", "s", "q", "src", "rise - a quarter", _est(0.001, 0.02, 0.03, confidence=tost), 0, **kw)
    assert zero.status == "not reproduced"
    with pytest.raises(ValueError, match="margin"):
        C.non_superior("n", "s", "q", "src", "rise", _est(-0.02, 0.0, 0.009, confidence=tost), -0.01, **kw)
    with pytest.raises(ValueError, match="TOST_CONFIDENCE"):
        C.non_superior("n", "s", "q", "src", "rise", _est(-0.02, 0.0, 0.009), 0.01, **kw)


def test_nested_interval_on_a_hand_made_design():
    """Three seeds, each with its own items and its own baseline items: per-seed differences of means
    2 - 1/3 = 5/3, 3.5 - 1 = 2.5, 0.5 - 0 = 0.5; value their mean 14/9; t(2) half-width over the seeds' means;
    items every item of every seed, both sides (3 + 4 + 2 + 3 + 2 + 3 = 17)."""
    from scipy.stats import norm, t

    per_seed = [[1.0, 2.0, 3.0], [2.0, 3.0, 4.0, 5.0], [0.0, 1.0]]
    baseline = [[0.0, 0.0, 1.0], [1.0, 1.0], [0.0, 0.0, 0.0]]
    means = np.array([5 / 3, 2.5, 0.5])
    for conf in (C.CONFIDENCE, C.TOST_CONFIDENCE):
        est = C.nested_interval(per_seed, baseline, confidence=conf)
        half = t.ppf(0.5 + conf / 2, 2) * means.std(ddof=1) / np.sqrt(3)
        assert est.value == pytest.approx(14 / 9)
        assert est.lo == pytest.approx(14 / 9 - half) and est.hi == pytest.approx(14 / 9 + half)
        assert (est.items, est.seeds, est.confidence) == (17, 3, conf)
        within = sum(np.var(x, ddof=1) / len(x) for x in per_seed + baseline)
        assert est.floor == pytest.approx(min(norm.ppf(0.5 + conf / 2) * np.sqrt(within) / 3, half))
        assert 0 < est.floor <= est.half_width
    assert (
        C.nested_interval(per_seed, baseline, confidence=0.90).half_width
        < C.nested_interval(per_seed, baseline).half_width
    )
    # no baseline: the mean of the seeds' means (not of all items pooled), items = 9
    plain = C.nested_interval(per_seed)
    assert plain.value == pytest.approx(np.mean([2.0, 3.5, 0.5])) and plain.items == 9
    # seeds that agree exactly while their items spread: half-width 0, and the floor never exceeds it
    agree = C.nested_interval([[0.0, 2.0], [1.0, 1.0], [-1.0, 3.0]])
    assert agree.half_width == 0.0 and agree.floor == 0.0
    one = C.nested_interval([[1.0, 2.0, 3.0]])
    assert (one.lo, one.value, one.hi, one.items) == (2.0, 2.0, 2.0, 3)
    with pytest.raises(ValueError, match="baseline seeds"):
        C.nested_interval(per_seed, baseline[:2])
    with pytest.raises(ValueError, match="at least one item"):
        C.nested_interval([[1.0], []])


def test_nested_interval_items_count_for_the_30_item_rule():
    rng = np.random.default_rng(7)
    ten = C.nested_interval([rng.normal(1.0, 0.1, 10) for _ in range(3)])  # 3 seeds x 10 items = 30
    nine = C.nested_interval([rng.normal(1.0, 0.1, 9) for _ in range(3)])  # 27
    assert (ten.items, nine.items) == (30, 27)
    assert _g(ten, trained=True).status == "reproduced"
    assert _g(nine, trained=True).design_error == "27 resampled items, fewer than 30"


def test_seed_interval_floor_and_confidence():
    """The items-only floor z * sqrt(MS_item / (n k)) never exceeds the half-width; 90 % is narrower than 95 %.
    The hand-made 2 x 2 table (MS_item = 4, n k = 4): floor 1.96 * 1."""
    from scipy.stats import norm

    d = np.array([[1.0, 3.0], [2.0, 6.0]])
    assert C.seed_interval(d).floor == pytest.approx(norm.ppf(0.975))
    assert C.seed_interval(d, confidence=0.90).floor == pytest.approx(norm.ppf(0.95))
    rng = np.random.default_rng(11)
    for sd_seed, sd_item in ((0.05, 0.1), (0.0, 0.3), (0.2, 0.01)):
        x = 0.1 + rng.normal(0, sd_seed, 3)[None] + rng.normal(0, sd_item, 300)[:, None] + rng.normal(0, 0.1, (300, 3))
        e95, e90 = C.seed_interval(x), C.seed_interval(x, confidence=0.90)
        assert 0 < e95.floor <= e95.half_width and 0 < e90.floor <= e90.half_width
        assert e90.half_width < e95.half_width and e90.lo > e95.lo and e90.hi < e95.hi
        assert (e90.confidence, e95.confidence, e90.value) == (0.90, 0.95, e95.value)
        assert e90.how.startswith("90 % t-interval") and e95.how.startswith("t-interval")
    one = C.seed_interval(rng.normal(0, 1, (300, 1)))  # one seed: the item bootstrap, whose half-width is the floor
    assert one.floor == pytest.approx(one.half_width)


def test_the_row_records_what_the_design_resolves():
    c = _g(_est(0.5, 1.0, 1.5, floor=0.3))
    assert (c.floor, c.confidence) == (0.3, 0.95)
    assert c.verdict.endswith("The design resolves +-0.5 (95 %); its items alone allow +-0.3.")
    assert C.table([c]).iloc[0]["resolves"] == "+-0.5 at 95 % (items alone +-0.3)"
    est = C.seed_interval(np.random.default_rng(2).normal(0.5, 1, (100, 3)))
    c = _g(est)
    assert (c.items, c.seeds, c.floor, c.confidence) == (100, 3, est.floor, 0.95)


def test_power_only_on_a_comparable_effect_otherwise_the_papers_setting_is_named():
    other = _g(_est(-2.0, 0.5, 3.0), paper=1.0, paper_setting="AlexNet on ImageNet")
    assert other.status == "inconclusive" and other.power == ""
    assert "measured in another setting (AlexNet on ImageNet): shown, not used" in other.verdict
    assert C.table([other]).iloc[0]["power"] == ""
    same = _g(_est(-2.0, 0.5, 3.0), paper=1.0, paper_setting="AlexNet on ImageNet", comparable=True)
    assert same.power == "underpowered" and "another setting" not in same.verdict
    # a gated row gets no power remark, comparable or not
    assert _g(_est(-2.0, 0.5, 3.0, items=9), paper=1.0, comparable=True).power == ""


def test_as_dict_is_plain_json():
    import json

    cs = [
        _g(_est(0.5, 1.0, 1.5, floor=0.2), paper=2.0, comparable=True, standins=["mobilenet_conv_maps"]),
        _g(_est(0.5, 1.0, 1.5), standins=["gap_for_fc_codes"]),
        C.equivalent("e", "s", "q", "src", "d", _est(-0.01, 0.0, 0.01, confidence=0.9), 0.05, setting="x", why=""),
        C.not_testable("n", "s", "q", "src", "y", setting="x", why="w", reason="data"),
        _g(_est(0.5, 1.0, 1.5, seeds=2), trained=True, stability=_stab(_est(0.5, 1, 1.5), _est(0.6, 1.1, 1.6))),
    ]
    for c in cs:
        d = c.as_dict()
        for k in ("status", "reason", "test"):
            assert type(d[k]) is str, k
        assert d["status"] in C.STATUSES and d["test"] in C.TESTS and d["reason"] in ("", *C.REASONS)
        back = json.loads(json.dumps(d))
        assert back == d
        for k in ("design_error", "decide", "verdict", "standins", "paper_setting", "comparable", "margin", "floor"):
            assert k in back, k
    assert C.Status.NOT_TESTABLE == "not testable here" and cs[1].status == C.Status.NOT_TESTABLE
    assert C.counts([c.as_dict() for c in cs]) == C.counts(cs)


# ------------------------------------------------------------------ the committed ledger (results/*/claims.json)


def _committed_rows() -> list[dict]:
    import json

    from poolrep import paths

    files = sorted((paths.ROOT / "results").glob("*/claims.json"))
    assert files, "no results/*/claims.json"
    rows = [c for f in files for c in json.loads(f.read_text())]
    assert rows
    return rows


def test_committed_ledger_never_calls_a_touching_interval_or_a_failed_precondition_not_reproduced():
    """Over every paper stage's committed claims.json: no "not reproduced" row has an interval that touches its
    bound, a failed precondition, or fewer than MIN_ITEMS items; no judged row rests on fewer than MIN_ITEMS items
    or, for a training method, fewer than MIN_SEEDS seeds; every "not testable here" row names a reason kind; a row
    with a margin (equivalence, non-superiority) reads a 90 % interval. (Fields the ledger gained with issue 42 are
    read with .get, so a row written before them is judged on the rest.)"""
    judged = ("reproduced", "not reproduced", "inconclusive")
    for c in _committed_rows():
        cid = f"{c['stage']}/{c['id']}"
        assert c["status"] in C.STATUSES, cid
        if c["status"] == "not reproduced":
            b = c["bound"]
            if c["test"] == "greater":
                assert c["hi"] < b or c["lo"] == c["hi"] == b, cid
            elif c["test"] == "less":
                assert c["lo"] > b or c["lo"] == c["hi"] == b, cid
            assert all(p["passed"] for p in c.get("preconditions", [])), cid
        if c["status"] in judged:
            assert c["test"] != "none", cid
            assert c.get("items") is None or c["items"] >= C.MIN_ITEMS, cid
            assert not c.get("trained") or c.get("seeds", 1) >= C.MIN_SEEDS, cid
            assert all(p["passed"] for p in c.get("preconditions", [])), cid
            assert not c.get("design_error"), cid
        if c["status"] == "not testable here":
            assert c.get("reason") in C.REASONS, cid
        if c.get("margin") is not None:
            assert c.get("confidence") == C.TOST_CONFIDENCE, cid


def test_committed_ledger_has_no_design_error():
    """Rule 1: no committed row records a design error (a gate its design can never pass: fix the design or declare
    the claim not_testable with what would decide it), and every "not testable here" row says what would decide it.
    Fails on a ledger written before issue 42 (no ``decide``): rerun the pipeline (dvc repro) to regenerate it."""
    rows = _committed_rows()
    errors = [f"{c['stage']}/{c['id']}: {c['design_error']}" for c in rows if c.get("design_error")]
    assert not errors, "design errors in the committed ledger (fix the design or declare not_testable): " + "; ".join(
        errors
    )
    undecided = [f"{c['stage']}/{c['id']}" for c in rows if c["status"] == "not testable here" and not c.get("decide")]
    assert not undecided, (
        "'not testable here' rows without `decide` (what would decide them); a ledger from before issue 42 has "
        "none: rerun the pipeline to regenerate results/*/claims.json: " + ", ".join(undecided)
    )


def test_committed_ledger_gives_each_stand_in_one_treatment():
    """Rule 6: a stand-in key gets one treatment in every stage. No judged row (a test other than none, with a
    status other than "not testable here") names a registry key that loses the contrast; every key named is in the
    registry. Every row must carry ``standins`` (the field issue 42 added): rerun the pipeline if it is missing."""
    rows = _committed_rows()
    missing = [f"{c['stage']}/{c['id']}" for c in rows if "standins" not in c]
    assert not missing, "rows without `standins` (a ledger from before issue 42: rerun the pipeline): " + ", ".join(
        missing
    )
    judged_on_lost: dict[str, list[str]] = {}
    for c in rows:
        cid = f"{c['stage']}/{c['id']}"
        for k in c["standins"]:
            assert k in C.standins.REGISTRY, f"{cid}: unknown stand-in {k!r}"
            if not C.standins.get(k).keeps_contrast and c["test"] != "none" and c["status"] != "not testable here":
                judged_on_lost.setdefault(k, []).append(cid)
    assert not judged_on_lost, f"rows judged on a stand-in that loses the paper's contrast: {judged_on_lost}"
