"""The claims ledger: each paper's claims, checked by the run that produced the numbers.

A paper module (``poolrep.papers.<stage>``) declares its paper's claims and evaluates them from the run's own
numbers with the helpers here; the stage writes them into ``results/<stage>/claims.json`` (``io.save_metrics``) and the report stage
gathers every stage's claims into ``results/claims.md`` and the top of the HTML report.

One claim: an id, the paper's statement quoted with its section or table, the test (what quantity, compared
with what bound), our value with its 95 % interval, the status, the setting it was measured in, and one
sentence of why. The status is computed, never typed:

- ``reproduced``: the interval supports the claim (it lies entirely on the claimed side of the bound);
- ``not reproduced``: the interval excludes it (entirely on the other side; an interval that only touches the bound
  is never "not reproduced");
- ``inconclusive``: the interval straddles or touches the bound; where the paper gives its effect, the row says
  whether the interval was too wide to resolve it ("underpowered") or excludes an effect as large as the paper's;
- ``not testable here``, with one reason kind (``REASONS``): ``data`` (data or weights this machine cannot have),
  ``scale`` (a budget cut the claim cannot survive: too few test items, too little training), ``precondition`` (a
  named check of the method under test failed: it did not work as the paper intends, so its comparison says nothing
  about the paper), ``saturated`` (the baseline's headroom to the ceiling is smaller than the paper's effect, or every
  item ties), ``stand-in`` (the substitute lacks the contrast the paper tests). Our number is still shown.

A test can only decide where it can pass and fail, so before the interval is read the ledger checks, in this order
(:meth:`Claim._gate`): every precondition (computed by the run, each with its value and condition); for a claim about
a training method, that its interval spans two or more retrained seeds; saturation (the baseline's headroom below
the paper's effect); the number of test items (fewer than ``MIN_ITEMS`` discrete items give no verdict: a percentile
bootstrap over 9 queries is degenerate); and ties (every item tied on the bound).
"No gain" / "no cost" claims are equivalence tests (:func:`equivalent`: both ends of the interval inside a margin
fixed in ``params.yaml`` before the run), never a one-sided test that passes because the difference is negative. The
compared pairs and levels are fixed in params or code before the run, never an argmax over our own results.

Intervals come from scipy (``scipy.stats.bootstrap``, percentile method; :func:`seed_interval`, a t-interval):
:func:`paired_bootstrap` resamples the
test items (images, queries) with the same resample for both sides of a comparison, so an ordering is judged on
the paired difference; items may carry several seeds (a 2-D array, items x seeds), whose mean per item is what
is resampled. That treats the trained models as fixed. Where a claim is about a training method and each model
was trained with several seeds, :func:`seed_interval` carries the seeds' variation too (a t-interval for the crossed
seeds x items design), so the interval also holds run-to-run variation. A quantity that is exact (a descriptor's dimension) has a zero-width
interval (:func:`exact`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

STATUSES = ("reproduced", "not reproduced", "inconclusive", "not testable here")
REASONS = ("data", "scale", "precondition", "saturated", "stand-in")  # why a claim is not testable here
MIN_ITEMS = 30  # fewer discrete test items (queries, images) than this give no verdict
# what each status means, as the ledger and the report print it (the module docstring says it at length)
STATUS_LEGEND = (
    "reproduced = the 95 % interval lies on the claimed side; not reproduced = it excludes the claim; "
    "inconclusive = it straddles or touches the bound; not testable here = the test cannot decide it here, "
    "for one of five reasons: data (not on this machine), scale (too few items or too little "
    "training), precondition (the method did not work as the paper intends), saturated (no headroom "
    "for the paper's effect), stand-in (the substitute lacks the paper's contrast); our number, where "
    "there is one, is shown but not judged"
)
TESTS = ("greater", "less", "within", "none")
N_RESAMPLES = 9999
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A measured value and its 95 % interval; ``how`` says what the interval is over."""

    value: float
    lo: float
    hi: float
    how: str
    items: int | None = None  # how many test items the interval resamples (None: exact, or not over items)
    seeds: int = 1  # how many independently trained models per arm the interval spans (1: models held fixed)

    def __post_init__(self):
        if not (self.lo <= self.value <= self.hi) and not any(np.isnan([self.lo, self.value, self.hi])):
            raise ValueError(f"interval [{self.lo}, {self.hi}] does not contain its value {self.value}")


def exact(value: float, how: str = "exact (no sampling)") -> Estimate:
    """A number with no sampling error (a dimension, a count): a zero-width interval."""
    return Estimate(float(value), float(value), float(value), how)


def _per_item(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:  # items x seeds: each item's mean over the seeds
        x = x.mean(axis=1)
    if x.ndim != 1 or len(x) < 2:
        raise ValueError(f"need a vector of at least 2 per-item values (or items x seeds), got shape {np.shape(x)}")
    return x


def bootstrap(
    statistic, *samples, seed: int = 0, scale: float = 1.0, what: str = "items", paired: bool = True
) -> Estimate:
    """``statistic(*samples, axis=-1)`` (x ``scale``) with a 95 % percentile bootstrap interval from resampling the
    items: every sample holds one value per item (or items x seeds), and all are resampled together (scipy's
    ``paired=True``), so a comparison computed inside ``statistic`` is paired. ``paired=False``: the samples hold
    different items (e.g. the pool groups of two models) and each is resampled on its own. The statistic must be
    vectorised (reduce along ``axis``)."""
    from scipy.stats import bootstrap as sp_bootstrap

    xs = [_per_item(s) for s in samples]
    if paired and len({len(x) for x in xs}) != 1:
        raise ValueError(f"paired samples need the same items: lengths {[len(x) for x in xs]}")
    v = float(statistic(*xs, axis=-1))
    if all(np.all(x == x[0]) for x in xs):  # every resample is the same: the interval is the point
        lo = hi = v
    else:
        r = sp_bootstrap(
            tuple(xs),
            statistic,
            n_resamples=N_RESAMPLES,
            batch=500,
            vectorized=True,
            paired=paired and len(xs) > 1,
            method="percentile",
            confidence_level=CONFIDENCE,
            rng=np.random.default_rng(seed),
        )
        lo, hi = float(r.confidence_interval.low), float(r.confidence_interval.high)
        lo, hi = min(lo, v), max(hi, v)  # a percentile interval of a skewed statistic can miss the point by a hair
    kind = "paired bootstrap" if paired and len(xs) > 1 else "bootstrap"
    n = f"{len(xs[0]):,}" if paired else " / ".join(f"{len(x):,}" for x in xs)
    return Estimate(
        scale * v,
        scale * lo,
        scale * hi,
        f"{kind} over {n} {what} ({N_RESAMPLES} resamples)",
        items=min(len(x) for x in xs),
    )


def bootstrap_mean(a, seed: int = 0, scale: float = 1.0, what: str = "items") -> Estimate:
    """Mean of per-item values ``a`` (x ``scale``) with a bootstrap interval over the items."""
    return bootstrap(lambda x, axis: x.mean(axis), a, seed=seed, scale=scale, what=what)


def paired_bootstrap(a, b, seed: int = 0, scale: float = 1.0, what: str = "items") -> Estimate:
    """``mean(a) - mean(b)`` over the same items (x ``scale``, e.g. 100 for accuracy in points), the interval from
    resampling the items jointly. ``a``, ``b``: per-item values (0/1 correctness, AP per query, ...) or items x
    seeds."""
    return bootstrap(lambda x, y, axis: x.mean(axis) - y.mean(axis), a, b, seed=seed, scale=scale, what=what)


def seed_interval(a, b=None, seed: int = 0, scale: float = 1.0, what: str = "items") -> Estimate:
    """``mean(a) - mean(b)`` (``mean(a)`` without ``b``), x ``scale``, over values of items x seeds, with a 95 %
    interval that carries both the test items' sampling and the seeds' (run-to-run) variation. Every seed's models are
    tested on the same items (seeds and items are crossed), so the differences follow the two-way random-effects model
    ``d[i, s] = mu + seed_s + item_i + interaction_is``, whose grand mean has variance
    ``var_seed / k + var_item / n + var_interaction / (n k)``. Its unbiased estimate is ``(MS_seed + MS_item -
    MS_residual) / (n k)`` from the two-way ANOVA mean squares (never below ``max(MS_seed, MS_item) / (n k)``, each of
    which alone estimates less than the whole), and the interval is ``mean +- t * sqrt(var)`` with Satterthwaite's
    degrees of freedom. With few seeds and seed-dominated variation these are close to ``k - 1``: with 3 seeds t is
    about 4.3, not 1.96, which is what an interval from 3 draws of a distribution has to pay.

    Why not a bootstrap (issue 36): Owen's pigeonhole bootstrap (seeds and items each resampled with replacement,
    used here before) covered the true mean only 84 % of the time in a seeded simulation with 3 seeds, 500 items and
    seed sd 0.03, item sd 0.1, interaction sd 0.1 (its seed variance is scaled by (k-1)/k and it takes at most 10
    distinct seed draws); this interval covered 93.5 % there, and 93.5-99 % in every other scenario tried (3 and 5
    seeds; no seed variance; items dominating; seeds alone), at the price of width where seeds dominate.
    ``tests/test_claims.py::test_seed_interval_covers_at_few_seeds`` keeps that simulation.

    ``a`` and ``b`` pair by item and by seed column (the same seed's models share init, batches and augmentation); a
    one-column side (e.g. a fixed uniform map) counts for every seed. With one seed nothing measures the run-to-run
    variation: the interval is then the paired item bootstrap (models held fixed), and ``how`` says so.
    ``seed`` is that bootstrap's generator seed; the interval over several seeds involves no random draws."""
    from scipy.stats import t as student_t

    a = np.asarray(a, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        b = b[:, None] if b.ndim == 1 else b
        if (
            a.ndim != 2
            or b.ndim != 2
            or len(a) != len(b)
            or 1 not in (a.shape[1], b.shape[1])
            and a.shape[1] != b.shape[1]
        ):
            raise ValueError(
                f"paired items x seeds need the same items and seeds (or one column): {a.shape}, {b.shape}"
            )
        a = a - b  # broadcasts a one-column side over the other's seeds
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"need items x seeds with at least 2 items, got shape {a.shape}")
    n, k = a.shape
    if k == 1:
        e = bootstrap_mean(a[:, 0], seed=seed, scale=scale, what=what)
        return Estimate(e.value, e.lo, e.hi, f"one seed (models held fixed): {e.how}", items=e.items)
    v = float(a.mean())
    item_means, seed_means = a.mean(axis=1), a.mean(axis=0)
    ms_seed = n * float(((seed_means - v) ** 2).sum()) / (k - 1)
    ms_item = k * float(((item_means - v) ** 2).sum()) / (n - 1)
    resid = a - item_means[:, None] - seed_means[None, :] + v
    ms_resid = float((resid**2).sum()) / ((n - 1) * (k - 1))
    terms = np.array([ms_seed, ms_item, -ms_resid]) / (n * k)
    dfs = np.array([k - 1, n - 1, (n - 1) * (k - 1)])
    var = max(float(terms.sum()), terms[0], terms[1])
    if var <= 0:  # every value the same: the interval is the point
        lo = hi = v
        df = float("inf")
    else:
        if var > terms.sum():  # floored to one mean square: its own degrees of freedom
            df = float(dfs[0] if var == terms[0] else dfs[1])
        else:
            df = var**2 / float((terms**2 / dfs).sum())
        half = float(student_t.ppf(0.5 + CONFIDENCE / 2, df)) * np.sqrt(var)
        lo, hi = v - half, v + half
    return Estimate(
        scale * v,
        scale * lo,
        scale * hi,
        f"t-interval over {k} seeds x {n:,} {what} (crossed random effects, {df:.1f} Satterthwaite df)",
        items=n,
        seeds=k,
    )


def status_of(test: str, est: Estimate | None, bound=None) -> str:
    """The status an interval gives a test (see the module docstring): an interval that touches the bound is
    inconclusive, never "not reproduced"; a zero-width interval on the bound (an exact value, e.g. a dimension, equal
    to it) is "not reproduced": equal is not better. The checks that come first (preconditions, items, saturation,
    ties) are :class:`Claim`'s."""
    if test == "none" or est is None:
        return "not testable here"
    lo, hi = est.lo, est.hi
    on_bound = test in ("greater", "less") and lo == hi == bound
    if test == "greater":
        return "reproduced" if lo > bound else "not reproduced" if hi < bound or on_bound else "inconclusive"
    if test == "less":
        return "reproduced" if hi < bound else "not reproduced" if lo > bound or on_bound else "inconclusive"
    if test == "within":
        b_lo, b_hi = bound
        if b_lo <= lo and hi <= b_hi:
            return "reproduced"
        return "not reproduced" if hi < b_lo or lo > b_hi else "inconclusive"
    raise ValueError(f"unknown test {test!r}; one of {TESTS}")


def precondition(name: str, value: str, condition: str, passed: bool) -> dict:
    """A named check that the method under test worked as the paper intends, computed by the run: ``value`` the
    numbers (formatted), ``condition`` what they must satisfy, ``passed`` whether they do."""
    return {"name": name, "value": value, "condition": condition, "passed": bool(passed)}


@dataclass
class Claim:
    """One row of the ledger (see the module docstring). Build it with :func:`greater`, :func:`less`,
    :func:`within`, :func:`equivalent` or :func:`not_testable`; ``status`` is computed from the test, the estimate
    and the checks of :meth:`_gate`."""

    id: str
    stage: str
    statement: str  # the paper's words, quoted
    source: str  # where in the paper: section, table, figure
    test: str  # one of TESTS
    quantity: str  # what is measured, e.g. "accuracy(AP K=400) - accuracy(best SP), small set"
    bound: float | list[float] | None
    value: float | None
    lo: float | None
    hi: float | None
    unit: str
    interval: str  # what the interval is over
    paper: float | None  # the paper's own number for the same quantity, where it gives one
    setting: str  # profile, data, substitutes, reduced sizes
    why: str  # one sentence
    reason: str = ""  # with "not testable here": one of REASONS
    preconditions: list = field(default_factory=list)  # precondition(...) dicts, computed by the run
    headroom: float | None = None  # the baseline's room to the ceiling, in the quantity's units (saturation)
    items: int | None = None  # the number of test items behind the interval
    trained: bool = False  # a claim about a training method: its interval must span retrained seeds
    seeds: int = 1  # how many trained models per arm the interval spans
    power: str = ""  # generated: can the interval resolve the paper's effect?
    status: str = field(default="")

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; one of {TESTS}")
        if self.reason and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; one of {REASONS}")
        if self.test == "none" and not self.reason:
            raise ValueError(f"claim {self.id!r}: a claim that is not tested needs a reason, one of {REASONS}")
        est = None if self.value is None else Estimate(self.value, self.lo, self.hi, self.interval)
        gate = self._gate() if self.test != "none" else ""
        if gate:
            self.status = "not testable here"
        else:
            self.status = status_of(self.test, est, self.bound)
        self.power = self._power()
        self.why = " ".join(x for x in (self.why.strip(), gate or self._reason(), self._power_sentence()) if x)

    def _gate(self) -> str:
        """Why the test cannot decide (and sets ``reason``), or "": failed preconditions, a training-method claim on
        one seed, saturation, too few items, every item tied (in that order)."""
        failed = [c for c in self.preconditions if not c["passed"]]
        if failed:
            self.reason = "precondition"
            return (
                "Not judged: precondition failed: "
                + "; ".join(f"{c['name']}: {c['value']} (needs {c['condition']})" for c in failed)
                + "."
            )
        if self.value is None:
            return ""
        if self.trained and self.seeds < 2:
            self.reason = "scale"
            return (
                "Not judged: a claim about a training method, measured on one trained model per arm, so its "
                "interval holds the models fixed; retraining with another seed can move a result beyond such an "
                "interval (the entropy stage measured it), and this stage trains one seed."
            )
        effect = self._effect()
        if self.headroom is not None and effect is not None and self.headroom < abs(effect):
            self.reason = "saturated"
            return (
                f"Not judged: the baseline is {self.headroom:.4g}{self._u()} from the ceiling, less than the "
                f"paper's effect {abs(effect):.4g}{self._u()}, so the claimed difference cannot appear here."
            )
        if self.items is not None and self.items < MIN_ITEMS:
            self.reason = "scale"
            return (
                f"Not judged: {self.items} test items, fewer than {MIN_ITEMS}: a bootstrap over so few discrete "
                f"items gives no usable interval."
            )
        if self.test in ("greater", "less") and self.lo == self.hi == self.bound and self.items is not None:
            self.reason = "saturated"
            return "Not judged: every test item ties, so the test has nothing to order."
        return ""

    def _u(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def _effect(self) -> float | None:
        """The paper's effect in the quantity's units, for an ordering (its number minus the bound), else None."""
        if self.test not in ("greater", "less") or self.paper is None or np.isnan(self.paper):
            return None
        return float(self.paper) - float(self.bound)

    def _power(self) -> str:
        """``resolves`` / ``underpowered`` (half-width vs the paper's effect); for an inconclusive row whose
        interval rules out an effect as large as the paper's, ``excludes the paper's effect``; "" without one."""
        effect = self._effect()
        if effect is None or self.value is None or self.status == "not testable here" or effect == 0:
            return ""
        if self.status == "inconclusive":
            if (self.test == "greater" and self.hi < self.bound + effect) or (
                self.test == "less" and self.lo > self.bound + effect
            ):
                return "excludes the paper's effect"
        half = (self.hi - self.lo) / 2
        return "resolves" if half < abs(effect) else "underpowered"

    def _power_sentence(self) -> str:
        if not self.power:
            return ""
        half, e = (self.hi - self.lo) / 2, abs(self._effect())
        if self.power == "excludes the paper's effect":
            return (
                f"It excludes an effect as large as the paper's ({self._effect():+.4g}{self._u()}), but not "
                f"{self.bound:g}."
            )
        if self.power == "underpowered":
            return (
                f"Underpowered: its half-width {half:.4g}{self._u()} is not below the paper's effect "
                f"{e:.4g}{self._u()}."
            )
        return f"Its half-width {half:.4g}{self._u()} resolves the paper's effect {e:.4g}{self._u()}."

    def _reason(self) -> str:
        """The sentence that says why the status follows from the interval (generated, so it cannot go stale)."""
        if self.test == "none":
            return ""
        unit = self._u()
        ci = (
            f"the 95 % interval [{self.lo:.4g}, {self.hi:.4g}]{unit}"
            if self.lo != self.hi
            else f"the exact value {self.value:.4g}{unit}"
        )
        if self.test == "within":
            where = {
                "reproduced": "lies inside",
                "not reproduced": "lies outside",
                "inconclusive": "overlaps the edge of",
            }[self.status]
            return f"{ci[0].upper() + ci[1:]} {where} [{self.bound[0]:g}, {self.bound[1]:g}]."
        side = ">" if self.test == "greater" else "<"
        straddle = "touches" if self.bound in (self.lo, self.hi) and self.lo != self.hi else "straddles"
        where = {
            "reproduced": f"lies entirely {side} {self.bound:g}",
            "not reproduced": f"excludes {side} {self.bound:g}",
            "inconclusive": f"{straddle} {self.bound:g}",
        }[self.status]
        return f"{ci[0].upper() + ci[1:]} {where}."

    def as_dict(self) -> dict:
        return asdict(self)


def _claim(
    test: str,
    id: str,
    stage: str,
    statement: str,
    source: str,
    quantity: str,
    est: Estimate | None,
    bound,
    unit: str,
    setting: str,
    why: str,
    paper: float | None,
    reason: str = "",
    preconditions: Sequence[dict] = (),
    headroom: float | None = None,
    trained: bool = False,
) -> Claim:
    if est is None and test != "none":
        raise ValueError(
            f"claim {id!r}: a {test!r} test needs an estimate; a claim with no number of ours is "
            f"not_testable(..., reason=...)"
        )
    return Claim(
        id=id,
        stage=stage,
        statement=statement,
        source=source,
        test=test,
        quantity=quantity,
        bound=bound,
        value=None if est is None else est.value,
        lo=None if est is None else est.lo,
        hi=None if est is None else est.hi,
        unit=unit,
        interval="" if est is None else est.how,
        paper=paper,
        setting=setting,
        why=why,
        reason=reason,
        preconditions=list(preconditions),
        headroom=None if headroom is None else float(headroom),
        items=None if est is None else est.items,
        trained=trained,
        seeds=1 if est is None else est.seeds,
    )


def greater(
    id: str,
    stage: str,
    statement: str,
    source: str,
    quantity: str,
    est: Estimate,
    *,
    setting: str,
    why: str,
    bound: float = 0.0,
    unit: str = "",
    paper: float | None = None,
    preconditions: Sequence[dict] = (),
    headroom: float | None = None,
    trained: bool = False,
) -> Claim:
    """The claim holds if ``quantity > bound`` (an ordering: A - B > 0). ``paper``: the paper's own value of the
    quantity (its effect, for an ordering); ``preconditions``: :func:`precondition` checks; ``headroom``: how far the
    baseline B is from the bound its metric can reach on the claimed side (the ceiling for ``greater``, e.g.
    1 - mAP(B); the floor for ``less``), for the saturation check; ``trained``: the
    claim is about a training method, so it is judged only on an interval over retrained seeds (:func:`seed_interval`
    with 2 or more), never on one that holds a single trained model fixed."""
    return _claim(
        "greater",
        id,
        stage,
        statement,
        source,
        quantity,
        est,
        bound,
        unit,
        setting,
        why,
        paper,
        preconditions=preconditions,
        headroom=headroom,
        trained=trained,
    )


def less(
    id: str,
    stage: str,
    statement: str,
    source: str,
    quantity: str,
    est: Estimate,
    *,
    setting: str,
    why: str,
    bound: float = 0.0,
    unit: str = "",
    paper: float | None = None,
    preconditions: Sequence[dict] = (),
    headroom: float | None = None,
    trained: bool = False,
) -> Claim:
    """The claim holds if ``quantity < bound`` (see :func:`greater`)."""
    return _claim(
        "less",
        id,
        stage,
        statement,
        source,
        quantity,
        est,
        bound,
        unit,
        setting,
        why,
        paper,
        preconditions=preconditions,
        headroom=headroom,
        trained=trained,
    )


def within(
    id: str,
    stage: str,
    statement: str,
    source: str,
    quantity: str,
    est: Estimate,
    band: Sequence[float],
    *,
    setting: str,
    why: str,
    unit: str = "",
    paper: float | None = None,
    preconditions: Sequence[dict] = (),
    trained: bool = False,
) -> Claim:
    """The claim holds if ``quantity`` lies in ``band`` = (low, high), e.g. a band around the paper's number."""
    lo, hi = (float(v) for v in band)
    if lo > hi:
        raise ValueError(f"band {band} is empty")
    return _claim(
        "within",
        id,
        stage,
        statement,
        source,
        quantity,
        est,
        [lo, hi],
        unit,
        setting,
        why,
        paper,
        preconditions=preconditions,
        trained=trained,
    )


def equivalent(
    id: str,
    stage: str,
    statement: str,
    source: str,
    quantity: str,
    est: Estimate,
    margin: float,
    *,
    setting: str,
    why: str,
    unit: str = "",
    paper: float | None = None,
    preconditions: Sequence[dict] = (),
    trained: bool = False,
) -> Claim:
    """A "no gain" / "no cost" claim as an equivalence test: reproduced when the whole interval of the difference
    lies within +-``margin`` (fixed in params before the run), not reproduced when it lies outside, else
    inconclusive. A difference that is merely negative does not pass."""
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be > 0, got {margin!r}")
    return within(
        id,
        stage,
        statement,
        source,
        quantity,
        est,
        (-margin, margin),
        setting=setting,
        why=" ".join(
            x
            for x in (
                f"Equivalence margin +-{margin:g}{' ' + unit if unit else ''}, fixed in params before the run.",
                why,
            )
            if x
        ),
        unit=unit,
        paper=paper,
        preconditions=preconditions,
        trained=trained,
    )


def not_testable(
    id: str,
    stage: str,
    statement: str,
    source: str,
    quantity: str,
    *,
    setting: str,
    why: str,
    reason: str,
    ours: Estimate | None = None,
    unit: str = "",
    paper: float | None = None,
    preconditions: Sequence[dict] = (),
) -> Claim:
    """A claim this machine cannot test, with its ``reason`` kind (``REASONS``; ``why`` names the missing data, the
    cut or the missing contrast); ``ours`` (optional) is our number on the substitute, shown beside ``paper`` but
    not judged."""
    return _claim(
        "none",
        id,
        stage,
        statement,
        source,
        quantity,
        ours,
        None,
        unit,
        setting,
        why,
        paper,
        reason=reason,
        preconditions=preconditions,
    )


# --------------------------------------------------------------------------------------------- ledger tables


def status_label(d: dict) -> str:
    """The status as the ledger prints it: "not testable here (saturated)" names its reason kind."""
    return f"{d['status']} ({d['reason']})" if d["status"] == "not testable here" and d.get("reason") else d["status"]


def fmt_preconditions(d: dict) -> str:
    """Each precondition with its numbers and pass/fail, e.g. "P's held-out cost <= grid's: 823.7 vs 798.6 (fails)"."""
    return "; ".join(
        f"{c['name']}: {c['value']} (needs {c['condition']}; {'holds' if c['passed'] else 'fails'})"
        for c in d.get("preconditions") or []
    )


def table(claims: Iterable[Claim | dict]):
    """One row per claim (the columns of the report's claims table), as a DataFrame."""
    import pandas as pd

    rows = []
    for c in claims:
        d = c.as_dict() if isinstance(c, Claim) else dict(c)
        rows.append(
            {
                "stage": d["stage"],
                "id": d["id"],
                "claim": d["statement"],
                "source": d["source"],
                "test": describe_test(d),
                "ours": fmt_estimate(d),
                "paper's number": fmt_number(d.get("paper"), d["unit"]),
                "status": status_label(d),
                "preconditions": fmt_preconditions(d),
                "power": d.get("power") or "",
                "setting": d["setting"],
                "why": d["why"],
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "stage",
            "id",
            "claim",
            "source",
            "test",
            "ours",
            "paper's number",
            "status",
            "preconditions",
            "power",
            "setting",
            "why",
        ],
    )


def changes(old: Iterable[dict], new: Iterable[dict]) -> list[dict]:
    """Claims whose status label changed between two ledgers (matched by stage and id), with both intervals: one
    dict per change, ``{"stage", "id", "old", "new", "old_ours", "new_ours"}``; a claim new to the ledger has old
    status "(new)", one that left it new status "(gone)"."""
    o = {(d["stage"], d["id"]): d for d in old}
    n = {(d["stage"], d["id"]): d for d in new}
    out = []
    for key in list(n) + [k for k in o if k not in n]:
        a, b = o.get(key), n.get(key)
        sa = status_label(a) if a else "(new)"
        sb = status_label(b) if b else "(gone)"
        if sa != sb:
            out.append(
                {
                    "stage": key[0],
                    "id": key[1],
                    "old": sa,
                    "new": sb,
                    "old_ours": fmt_estimate(a) if a else "",
                    "new_ours": fmt_estimate(b) if b else "",
                }
            )
    return out


def counts(claims: Iterable[Claim | dict]) -> dict[str, int]:
    """Number of claims per status (every status listed, zeros included)."""
    out = dict.fromkeys(STATUSES, 0)
    for c in claims:
        out[c.status if isinstance(c, Claim) else c["status"]] += 1
    return out


def fmt_number(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return f"{v:.4g}{(' ' + unit) if unit else ''}"


def fmt_estimate(d: dict) -> str:
    """``value [lo, hi] unit`` (``value unit`` when the interval has zero width; empty when there is none)."""
    if d.get("value") is None:
        return ""
    unit = f" {d['unit']}" if d.get("unit") else ""
    if d["lo"] == d["hi"]:
        return f"{d['value']:.4g}{unit}"
    return f"{d['value']:.4g} [{d['lo']:.4g}, {d['hi']:.4g}]{unit}"


def describe_test(d: dict) -> str:
    q, b = d["quantity"], d.get("bound")
    if d["test"] == "greater":
        return f"{q} > {b:g}"
    if d["test"] == "less":
        return f"{q} < {b:g}"
    if d["test"] == "within":
        return f"{q} in [{b[0]:g}, {b[1]:g}]"
    return f"{q} (not tested)"


def check_unique(claims: Sequence[Claim]) -> list[Claim]:
    """The claims, after checking that their ids are unique within the stage."""
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"claim ids used twice: {dup}")
    return list(claims)


# --------------------------------------------------------------------------------------------- the picture
STATUS_COLOURS = {
    "reproduced": "#1a7f37",
    "not reproduced": "#c62828",
    "inconclusive": "#b26a00",
    "not testable here": "#7a7f87",
}


def forest_plot(claims: Sequence[Claim | dict], title: str = ""):
    """One row per claim: our estimate and its 95 % interval against the test's bound (a dashed line; a band for
    ``within``), coloured by status, the paper's value (the effect, for an ordering) as a diamond where it gives one.
    Each row has its own x-axis (the claims' units differ); a claim with no number of ours is a line of text.
    Returns the matplotlib figure (the caller saves it as ``figures/claims.png``)."""
    import matplotlib.pyplot as plt

    ds = [c.as_dict() if isinstance(c, Claim) else dict(c) for c in claims]
    n = max(1, len(ds))
    fig, axes = plt.subplots(n, 1, figsize=(9, 0.62 * n + 0.9), squeeze=False)
    for ax, d in zip(axes[:, 0], ds):
        colour = STATUS_COLOURS[d["status"]]
        label = f"{d['id']}: {status_label(d)}" + (f" ({d['power']})" if d.get("power") else "")
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        ax.set_title(label, fontsize=8, loc="left", color=colour, pad=2)
        if d.get("value") is None:
            ax.set_xticks([])
            ax.spines["bottom"].set_visible(False)
            ax.text(
                0.5,
                0.3,
                "no number of ours (not testable here)",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
                transform=ax.transAxes,
            )
            continue
        xs = [d["lo"], d["hi"], d["value"]]
        b = d.get("bound")
        if d["test"] == "within":
            ax.axvspan(b[0], b[1], color="#cfd8dc", alpha=0.6, lw=0)
            xs += list(b)
        elif b is not None:
            ax.axvline(b, color="k", ls="--", lw=0.8)
            xs.append(b)
        if d.get("paper") is not None and not np.isnan(d["paper"]) and d["test"] in ("greater", "less"):
            ax.plot([d["paper"]], [0], marker="D", color="k", ms=4, mfc="white")
            xs.append(d["paper"])
        ax.plot([d["lo"], d["hi"]], [0, 0], color=colour, lw=2.5, solid_capstyle="butt")
        ax.plot([d["value"]], [0], "o", color=colour, ms=5)
        lo, hi = min(xs), max(xs)
        pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 0.1
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-1, 1)
        ax.tick_params(axis="x", labelsize=7, pad=1)
        if d.get("unit"):
            ax.set_xlabel(d["unit"], fontsize=7, labelpad=0)
    fig.suptitle(
        title or "Claims: our estimate and 95 % interval (bar) against the bound (dashed), the paper's value (diamond)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
