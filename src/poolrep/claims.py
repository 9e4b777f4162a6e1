"""The claims ledger: each paper's claims, checked by the run that produced the numbers.

A paper module (``poolrep.papers.<stage>``) declares its paper's claims and evaluates them from the run's own
numbers with the helpers here; the stage writes them into ``metrics.json`` (``claims``) and the report stage
gathers every stage's claims into ``results/claims.md`` and the top of the HTML report.

One claim: an id, the paper's statement quoted with its section or table, the test (what quantity, compared
with what bound), our value with its 95 % interval, the status, the setting it was measured in, and one
sentence of why. The status is computed, never typed:

- ``reproduced``: the interval supports the claim (it lies entirely on the claimed side of the bound);
- ``not reproduced``: the interval excludes it (entirely on the other side, or on the bound itself);
- ``inconclusive``: the interval straddles the bound;
- ``not testable here``: the claim needs data or weights this machine cannot have, or models trained further
  than its budget allows (a stage's own convergence control shows them still gaining), or it is an absolute number
  and our run is on a substitute or a reduced size (our number is then shown beside the paper's, untested).

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

from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

STATUSES = ("reproduced", "not reproduced", "inconclusive", "not testable here")
# what each status means, as the ledger and the report print it (the module docstring says it at length)
STATUS_LEGEND = ("reproduced = the 95 % interval lies on the claimed side; not reproduced = it excludes the claim; "
                 "inconclusive = it straddles the bound; not testable here = the data, weights, sizes or training "
                 "the claim needs are beyond this machine (our number, where there is one, is shown but not judged)")
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


def bootstrap(statistic, *samples, seed: int = 0, scale: float = 1.0, what: str = "items",
              paired: bool = True) -> Estimate:
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
        r = sp_bootstrap(tuple(xs), statistic, n_resamples=N_RESAMPLES, batch=500, vectorized=True,
                         paired=paired and len(xs) > 1, method="percentile", confidence_level=CONFIDENCE,
                         rng=np.random.default_rng(seed))
        lo, hi = float(r.confidence_interval.low), float(r.confidence_interval.high)
        lo, hi = min(lo, v), max(hi, v)  # a percentile interval of a skewed statistic can miss the point by a hair
    kind = "paired bootstrap" if paired and len(xs) > 1 else "bootstrap"
    n = f"{len(xs[0]):,}" if paired else " / ".join(f"{len(x):,}" for x in xs)
    return Estimate(scale * v, scale * lo, scale * hi, f"{kind} over {n} {what} ({N_RESAMPLES} resamples)")


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
        if a.ndim != 2 or b.ndim != 2 or len(a) != len(b) or 1 not in (a.shape[1], b.shape[1]) and a.shape[1] != b.shape[1]:
            raise ValueError(f"paired items x seeds need the same items and seeds (or one column): {a.shape}, {b.shape}")
        a = a - b  # broadcasts a one-column side over the other's seeds
    if a.ndim != 2 or len(a) < 2:
        raise ValueError(f"need items x seeds with at least 2 items, got shape {a.shape}")
    n, k = a.shape
    if k == 1:
        e = bootstrap_mean(a[:, 0], seed=seed, scale=scale, what=what)
        return Estimate(e.value, e.lo, e.hi, f"one seed (models held fixed): {e.how}")
    v = float(a.mean())
    item_means, seed_means = a.mean(axis=1), a.mean(axis=0)
    ms_seed = n * float(((seed_means - v) ** 2).sum()) / (k - 1)
    ms_item = k * float(((item_means - v) ** 2).sum()) / (n - 1)
    resid = a - item_means[:, None] - seed_means[None, :] + v
    ms_resid = float((resid ** 2).sum()) / ((n - 1) * (k - 1))
    terms = np.array([ms_seed, ms_item, -ms_resid]) / (n * k)
    var = max(float(terms.sum()), terms[0], terms[1])
    if var <= 0:  # every value the same: the interval is the point
        lo = hi = v
        df = float("inf")
    else:
        df = var ** 2 / float((terms ** 2 / np.array([k - 1, n - 1, (n - 1) * (k - 1)])).sum())
        half = float(student_t.ppf(0.5 + CONFIDENCE / 2, df)) * np.sqrt(var)
        lo, hi = v - half, v + half
    return Estimate(scale * v, scale * lo, scale * hi,
                    f"t-interval over {k} seeds x {n:,} {what} (crossed random effects, "
                    f"{df:.1f} Satterthwaite df)")


def status_of(test: str, est: Estimate | None, bound=None) -> str:
    """The status a test gives an estimate (see the module docstring)."""
    if test == "none" or est is None:
        return "not testable here"
    lo, hi = est.lo, est.hi
    if test == "greater":
        return "reproduced" if lo > bound else "not reproduced" if hi <= bound else "inconclusive"
    if test == "less":
        return "reproduced" if hi < bound else "not reproduced" if lo >= bound else "inconclusive"
    if test == "within":
        b_lo, b_hi = bound
        if b_lo <= lo and hi <= b_hi:
            return "reproduced"
        return "not reproduced" if hi < b_lo or lo > b_hi else "inconclusive"
    raise ValueError(f"unknown test {test!r}; one of {TESTS}")


@dataclass
class Claim:
    """One row of the ledger (see the module docstring). Build it with :func:`greater`, :func:`less`,
    :func:`within` or :func:`not_testable`; ``status`` is computed from the test and the estimate."""

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
    status: str = field(default="")

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; one of {TESTS}")
        est = None if self.value is None else Estimate(self.value, self.lo, self.hi, self.interval)
        self.status = status_of(self.test, est, self.bound)
        self.why = " ".join(x for x in (self.why.strip(), self._reason()) if x)

    def _reason(self) -> str:
        """The sentence that says why the status follows from the interval (generated, so it cannot go stale)."""
        if self.test == "none":
            return ""
        unit = f" {self.unit}" if self.unit else ""
        ci = f"the 95 % interval [{self.lo:.4g}, {self.hi:.4g}]{unit}" if self.lo != self.hi else \
            f"the exact value {self.value:.4g}{unit}"
        if self.test == "within":
            where = {"reproduced": "lies inside", "not reproduced": "lies outside",
                     "inconclusive": "overlaps the edge of"}[self.status]
            return f"{ci[0].upper() + ci[1:]} {where} [{self.bound[0]:g}, {self.bound[1]:g}]."
        side = ">" if self.test == "greater" else "<"
        where = {"reproduced": f"lies entirely {side} {self.bound:g}",
                 "not reproduced": f"excludes {side} {self.bound:g}",
                 "inconclusive": f"straddles {self.bound:g}"}[self.status]
        return f"{ci[0].upper() + ci[1:]} {where}."

    def as_dict(self) -> dict:
        return asdict(self)


def _claim(test: str, id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate | None,
           bound, unit: str, setting: str, why: str, paper: float | None) -> Claim:
    return Claim(id=id, stage=stage, statement=statement, source=source, test=test, quantity=quantity, bound=bound,
                 value=None if est is None else est.value, lo=None if est is None else est.lo,
                 hi=None if est is None else est.hi, unit=unit, interval="" if est is None else est.how,
                 paper=paper, setting=setting, why=why)


def greater(id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, *, setting: str,
            why: str, bound: float = 0.0, unit: str = "", paper: float | None = None) -> Claim:
    """The claim holds if ``quantity > bound`` (an ordering: A - B > 0)."""
    return _claim("greater", id, stage, statement, source, quantity, est, bound, unit, setting, why, paper)


def less(id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, *, setting: str,
         why: str, bound: float = 0.0, unit: str = "", paper: float | None = None) -> Claim:
    """The claim holds if ``quantity < bound``."""
    return _claim("less", id, stage, statement, source, quantity, est, bound, unit, setting, why, paper)


def within(id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, band: Sequence[float],
           *, setting: str, why: str, unit: str = "", paper: float | None = None) -> Claim:
    """The claim holds if ``quantity`` lies in ``band`` = (low, high), e.g. a band around the paper's number or an
    equivalence margin around zero ("no significant gain")."""
    lo, hi = (float(v) for v in band)
    if lo > hi:
        raise ValueError(f"band {band} is empty")
    return _claim("within", id, stage, statement, source, quantity, est, [lo, hi], unit, setting, why, paper)


def not_testable(id: str, stage: str, statement: str, source: str, quantity: str, *, setting: str, why: str,
                 ours: Estimate | None = None, unit: str = "", paper: float | None = None) -> Claim:
    """A claim this machine cannot test (``why`` names the missing data/weights or the cut); ``ours`` (optional)
    is our number on the substitute, shown beside ``paper`` but not judged."""
    return _claim("none", id, stage, statement, source, quantity, ours, None, unit, setting, why, paper)


# --------------------------------------------------------------------------------------------- ledger tables


def table(claims: Iterable[Claim | dict]):
    """One row per claim (the columns of the report's claims table), as a DataFrame."""
    import pandas as pd

    rows = []
    for c in claims:
        d = c.as_dict() if isinstance(c, Claim) else dict(c)
        rows.append({"stage": d["stage"], "id": d["id"], "claim": d["statement"], "source": d["source"],
                     "test": describe_test(d), "ours": fmt_estimate(d),
                     "paper's number": fmt_number(d.get("paper"), d["unit"]), "status": d["status"],
                     "setting": d["setting"], "why": d["why"]})
    return pd.DataFrame(rows, columns=["stage", "id", "claim", "source", "test", "ours", "paper's number", "status",
                                       "setting", "why"])


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

