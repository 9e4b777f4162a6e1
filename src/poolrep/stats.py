"""The ledger's statistics: estimates with their intervals, over test items and over retrained seeds.

:mod:`poolrep.claims` keeps the ledger's rows, gates and text; this module only computes numbers:

- :class:`Estimate`: a value, its interval (95 % unless ``confidence`` says otherwise: an equivalence or
  non-superiority test reads the 90 % interval, the two one-sided tests at 5 %), what the interval is over, how many
  items it resamples and how many seeds it spans, and the *items-only floor* (``floor``): the half-width the same
  items alone would give if retraining did not move the result. A design (items, seeds) can never resolve less
  than that floor; more seeds can bring the half-width down to it, only more items below it.
- :func:`bootstrap` / :func:`paired_bootstrap` / :func:`bootstrap_mean`: scipy's percentile bootstrap over the test
  items (paired: the same resample for both sides of a comparison).
- :func:`seed_interval`: items crossed with seeds (every seed's models tested on the same items), a t-interval
  from the two-way random-effects ANOVA.
- :func:`nested_interval`: items nested in seeds (each seed's model has its own items, e.g. its own pool groups),
  a t-interval over the seeds' means; the interval resamples items x seeds units.
- :func:`exact`: a number with no sampling error (a dimension).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 9999
CONFIDENCE = 0.95  # every interval the ledger shows, unless a test needs another (TOST_CONFIDENCE)
TOST_CONFIDENCE = 0.90  # two one-sided tests at 5 %: the 90 % interval inside the margin


@dataclass(frozen=True)
class Estimate:
    """A measured value and its 95 % interval; ``how`` says what the interval is over."""

    value: float
    lo: float
    hi: float
    how: str
    items: int | None = None  # how many test units the interval resamples (None: exact, or not over items)
    seeds: int = 1  # how many independently trained models per arm the interval spans (1: models held fixed)
    confidence: float = CONFIDENCE  # the interval's coverage (0.90 for the two one-sided tests)
    floor: float | None = None  # the items-only half-width: what these items alone allow (None: not computed)

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

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
    statistic,
    *samples,
    seed: int = 0,
    scale: float = 1.0,
    what: str = "items",
    paired: bool = True,
    confidence: float = CONFIDENCE,
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
            confidence_level=confidence,
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
        f"{_pct(confidence)}{kind} over {n} {what} ({N_RESAMPLES} resamples)",
        items=min(len(x) for x in xs),
        confidence=confidence,
        floor=scale * (hi - lo) / 2,  # the items are all it resamples: its half-width is the floor
    )


def bootstrap_mean(
    a, seed: int = 0, scale: float = 1.0, what: str = "items", confidence: float = CONFIDENCE
) -> Estimate:
    """Mean of per-item values ``a`` (x ``scale``) with a bootstrap interval over the items."""
    return bootstrap(lambda x, axis: x.mean(axis), a, seed=seed, scale=scale, what=what, confidence=confidence)


def paired_bootstrap(
    a, b, seed: int = 0, scale: float = 1.0, what: str = "items", confidence: float = CONFIDENCE
) -> Estimate:
    """``mean(a) - mean(b)`` over the same items (x ``scale``, e.g. 100 for accuracy in points), the interval from
    resampling the items jointly. ``a``, ``b``: per-item values (0/1 correctness, AP per query, ...) or items x
    seeds."""
    return bootstrap(
        lambda x, y, axis: x.mean(axis) - y.mean(axis), a, b, seed=seed, scale=scale, what=what, confidence=confidence
    )


def seed_interval(
    a, b=None, seed: int = 0, scale: float = 1.0, what: str = "items", confidence: float = CONFIDENCE
) -> Estimate:
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
    ``seed`` is that bootstrap's generator seed; the interval over several seeds involves no random draws.

    ``floor``: the items-only half-width, ``z * sqrt(MS_item / (n k))``: what the items' own spread costs the
    seed-averaged mean, the least any number of seeds could bring the half-width to at these items."""
    from scipy.stats import norm
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
        e = bootstrap_mean(a[:, 0], seed=seed, scale=scale, what=what, confidence=confidence)
        return Estimate(
            e.value,
            e.lo,
            e.hi,
            f"one seed (models held fixed): {e.how}",
            items=e.items,
            confidence=confidence,
            floor=e.floor,
        )
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
        half = float(student_t.ppf(0.5 + confidence / 2, df)) * np.sqrt(var)
        lo, hi = v - half, v + half
    floor = float(norm.ppf(0.5 + confidence / 2)) * np.sqrt(ms_item / (n * k))
    return Estimate(
        scale * v,
        scale * lo,
        scale * hi,
        f"{_pct(confidence)}t-interval over {k} seeds x {n:,} {what} (crossed random effects, {df:.1f} "
        "Satterthwaite df)",
        items=n,
        seeds=k,
        confidence=confidence,
        floor=scale * min(floor, (hi - lo) / 2),
    )


def nested_interval(
    per_seed: Sequence, baseline: Sequence | None = None, what: str = "items", confidence: float = CONFIDENCE
) -> Estimate:
    """Items nested in seeds: each seed's model has its own items (its own pool groups, its own pools), so items of
    two seeds, or of two models, are not the same items and cannot be paired. ``per_seed[s]``: seed ``s``'s per-item
    values; ``baseline[s]`` (optional): the compared model's own items for the same seed. The estimate is the mean
    over seeds of (mean of ``per_seed[s]`` - mean of ``baseline[s]``) with a t-interval over the seeds (k - 1 df):
    the seeds are the independent units, and each seed's mean already carries its items' spread. The interval
    resamples ``items`` = every item of every seed (the unit the 30-item rule counts); ``floor``: the half-width the
    within-seed spread alone gives (the items-only floor, what infinitely many items per seed would remove)."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    xs = [np.asarray(x, dtype=np.float64).ravel() for x in per_seed]
    bs = None if baseline is None else [np.asarray(x, dtype=np.float64).ravel() for x in baseline]
    if bs is not None and len(bs) != len(xs):
        raise ValueError(f"nested_interval: {len(xs)} seeds against {len(bs)} baseline seeds")
    if len(xs) < 1 or any(len(x) < 1 for x in xs) or (bs is not None and any(len(b) < 1 for b in bs)):
        raise ValueError("nested_interval: every seed needs at least one item")
    means = np.array([x.mean() - (0.0 if bs is None else bs[i].mean()) for i, x in enumerate(xs)])
    n_items = sum(len(x) for x in xs) + (0 if bs is None else sum(len(b) for b in bs))
    within = sum(x.var(ddof=1) / len(x) for x in xs if len(x) > 1)
    if bs is not None:
        within += sum(b.var(ddof=1) / len(b) for b in bs if len(b) > 1)
    k = len(means)
    v = float(means.mean())
    floor = float(norm.ppf(0.5 + confidence / 2)) * np.sqrt(within) / k
    if k < 2:
        return Estimate(v, v, v, f"one seed ({what} nested in it)", items=n_items, confidence=confidence, floor=floor)
    half = float(student_t.ppf(0.5 + confidence / 2, k - 1) * means.std(ddof=1) / np.sqrt(k))
    return Estimate(
        v,
        v - half,
        v + half,
        f"{_pct(confidence)}t-interval over {k} seeds' means ({n_items:,} {what} nested in the seeds)",
        items=n_items,
        seeds=k,
        confidence=confidence,
        floor=min(floor, half),
    )


def _pct(confidence: float) -> str:
    """ "" for the usual 95 %, else "90 % " (so a row's ``how`` names a non-default coverage)."""
    return "" if confidence == CONFIDENCE else f"{confidence:.0%} ".replace("%", " %")
