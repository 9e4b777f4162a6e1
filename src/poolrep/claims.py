"""The claims ledger: each paper's claims, checked by the run that produced the numbers.

A paper package (``poolrep.papers.<stage>``) declares its paper's claims and evaluates them from the run's own
numbers with the builders here; the stage writes them into ``results/<stage>/claims.json`` and the report stage
gathers every stage's claims into ``results/claims.md`` and the top of the HTML report. The numbers behind a row
(estimates, intervals) come from :mod:`poolrep.stats`; the substitutions from :mod:`poolrep.standins`.

One claim: an id, the paper's statement quoted with its section or table, the test (what quantity, compared with
what bound), our value with its interval, the status, the setting it was measured in, one sentence of why (the
author's, ``why``) and the sentences the ledger generates (``verdict``: kept in their own field, never parsed back).
The status (:class:`Status`) is computed, never typed:

- ``reproduced``: the interval lies entirely on the claimed side of the bound (inside the margin, for an
  equivalence);
- ``not reproduced``: it lies entirely on the other side (an interval that only touches the bound never is);
- ``inconclusive``: it straddles or touches the bound;
- ``not testable here``, with one reason (:class:`Reason`): ``data`` (data or weights this machine cannot have),
  ``scale`` (too few items or seeds, or a training budget under which the claim's own difference is not stable),
  ``precondition`` (a named check that the method under test ran as the paper intends failed), ``saturated`` (the
  baseline leaves less room than one test item's worth, or every item ties), ``stand-in`` (the substitute loses the
  paper's contrast, :mod:`poolrep.standins`). Our number is still shown, and ``decide`` says what would decide it.

The rules (issue 42), each held by a test in ``tests/test_claims.py``:

1. **Design before data.** A claim's design (items, seeds, margin, compared pair) is fixed in params or code before
   the run; the row records what the design resolves: the interval's half-width and the *items-only floor*
   (``floor``, :mod:`poolrep.stats`), the least any number of seeds could reach at these items. A gate the design
   can never pass (fewer than ``MIN_ITEMS`` items, fewer than ``MIN_SEEDS`` seeds for a training method, a band no
   wider than the interval's half-width) is a *design error* (``design_error``): the row is "not testable here
   (scale)", and ``tests/test_claims.py::test_committed_ledger_has_no_design_error`` fails on the committed ledger,
   so the design is fixed (more items, seeds, a justified margin) or the claim is declared out of reach with
   :func:`not_testable` and what would decide it.
2. **Equivalence and non-superiority are one-sided tests at 5 %**: :func:`equivalent` reads the 90 % interval
   (two one-sided tests: inside +-margin), :func:`non_superior` its upper bound (below the margin). Their estimates
   must be built at ``stats.TOST_CONFIDENCE``; a 95 % estimate is refused. Margins come from the paper's text or a
   stated practical reason, fixed before the run.
3. **One stability gate for trained models**, on the claim's own statistic (:func:`stability`): the difference at
   the standard budget and at a longer one (or the last two checkpoints) must keep its side of the bound (an
   ordering; an equivalence has no side) and move by less than the standard estimate's own half-width
   (``STABLE_MOVE``: a move within the sampling uncertainty), else "not testable here (scale)" with both numbers.
4. **Items and seeds.** ``MIN_ITEMS`` counts the units the interval resamples (:attr:`stats.Estimate.items`); a
   claim about a training method needs ``MIN_SEEDS`` retrained seeds (a seeded simulation of binary per-image
   correctness put the seeds x items interval's coverage at 0.87 with 2 seeds, 0.92-0.96 with 3-5).
5. **Saturation and power on comparable scales.** Saturated when the baseline's headroom (a fraction of the
   metric's range) is below one test item's worth (``1 / items``) or every item ties. The power remark
   (resolves / underpowered / excludes the paper's effect) is made only when the claim declares the paper's effect
   ``comparable`` (the same metric on a like setting at a like baseline level); otherwise the row says the paper's
   effect is from another setting (``paper_setting``) and is shown, not used.
6. **One stand-in registry** (:mod:`poolrep.standins`), read by :meth:`Claim._gate`.
7. **No circular preconditions**: a precondition checks that the method ran as intended, never the claim's own
   effect; "stops rising" / "plateaus" are :func:`non_superior` tests, not "falls" tests.

The gates run in :meth:`Claim._gate` in this order, before the interval is read: preconditions, stand-ins, seeds,
stability, saturation, items, ties, the band against the half-width. The compared pairs and levels are fixed in
params or code before the run, never an argmax over our own results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import numpy as np

from . import standins
from .stats import (  # noqa: F401  (the ledger's numbers; paper packages import them from here or from stats)
    CONFIDENCE,
    N_RESAMPLES,
    TOST_CONFIDENCE,
    Estimate,
    bootstrap,
    bootstrap_mean,
    exact,
    nested_interval,
    paired_bootstrap,
    seed_interval,
)


class Status(StrEnum):
    REPRODUCED = "reproduced"
    NOT_REPRODUCED = "not reproduced"
    INCONCLUSIVE = "inconclusive"
    NOT_TESTABLE = "not testable here"


class Reason(StrEnum):
    """Why a claim is not testable here."""

    DATA = "data"
    SCALE = "scale"
    PRECONDITION = "precondition"
    SATURATED = "saturated"
    STAND_IN = "stand-in"


class Test(StrEnum):
    GREATER = "greater"
    LESS = "less"
    WITHIN = "within"
    NONE = "none"


STATUSES = tuple(s.value for s in Status)
REASONS = tuple(r.value for r in Reason)
TESTS = tuple(t.value for t in Test)
MIN_ITEMS = 30  # fewer resampled units (queries, images, items x seeds where nested) than this give no verdict
MIN_SEEDS = 3  # retrained seeds a claim about a training method needs
STABLE_MOVE = "half-width"  # the stability gate's allowance: the standard estimate's own 95 % half-width
# what each status means, as the ledger and the report print it (the module docstring says it at length)
STATUS_LEGEND = (
    "reproduced = the interval lies on the claimed side (inside the margin, for an equivalence); not reproduced = it "
    "excludes the claim; inconclusive = it straddles or touches the bound; not testable here = the test cannot decide "
    "it here, for one of five reasons: data (not on this machine), scale (too few items or seeds, or the claim's own "
    "difference not stable under longer training), precondition (the method did not run as the paper intends), "
    "saturated (no room left for a difference), stand-in (the substitute loses the paper's contrast); our number, "
    "where there is one, is shown but not judged, with what would decide it"
)
# the ledger's rules in one line each, as results/claims.md and the report print them (the module docstring says why)
RULES = (
    "Design before data: items, seeds, margins and compared pairs are fixed in params or code before the run; each "
    "row shows what its design resolves (half-width, and the floor its items alone allow). A gate the design can "
    "never pass (fewer than 30 items, fewer than 3 seeds for a training method, a band no wider than the interval) "
    "is a design error that the committed-ledger test refuses, so such claims are declared not testable before the "
    "run, with what would decide them.",
    'Equivalence ("no gain", "no cost") is two one-sided tests at 5 %: the 90 % interval inside +-margin; '
    '"stops rising" is a non-superiority test on the 90 % interval\'s upper bound, never a "falls" test.',
    "One stability gate for trained models, on the claim's own difference: at the standard budget and at a longer "
    "one (or the last two checkpoints) it must stay on its side of the bound and move by less than the standard "
    "estimate's half-width, else not testable here (scale) with both numbers.",
    "Intervals count the units they resample (30 or more); a claim about a training method spans 3 or more "
    "retrained seeds (a t-interval over seeds x items).",
    "Saturated only when the baseline leaves less than one test item's worth of room, or every item ties; the "
    "paper's effect is used to judge power (resolves / underpowered / excludes it) only where it was measured on "
    "the same metric in a like setting, else shown as from another setting.",
    "One stand-in registry (poolrep.standins): each substitution keeps or loses the paper's contrast once, for every "
    "stage; an absolute number is never judged on a substitute.",
    "Preconditions check that the method ran as intended, never the claim's own effect; all gates are computed "
    "before the claim is built, never by rewriting a judged row.",
)
# what would decide a claim each gate stops, where the claim names nothing more specific
DECIDE = {
    Reason.SCALE: "more items or seeds than the cpu profile has: this machine with more time, or a GPU (paper profile)",
    Reason.PRECONDITION: "a run in which the named check holds (a longer or corrected training)",
    Reason.SATURATED: "a harder test set, where the baseline leaves room (data)",
}


def status_of(test: str, est: Estimate | None, bound=None) -> Status:
    """The status an interval gives a test (see the module docstring): an interval that touches the bound is
    inconclusive, never "not reproduced"; a zero-width interval on the bound (an exact value, e.g. a dimension, equal
    to it) is "not reproduced": equal is not better. The checks that come first are :meth:`Claim._gate`'s."""
    if test == Test.NONE or est is None:
        return Status.NOT_TESTABLE
    lo, hi = est.lo, est.hi
    on_bound = test in (Test.GREATER, Test.LESS) and lo == hi == bound
    if test == Test.GREATER:
        if lo > bound:
            return Status.REPRODUCED
        return Status.NOT_REPRODUCED if hi < bound or on_bound else Status.INCONCLUSIVE
    if test == Test.LESS:
        if hi < bound:
            return Status.REPRODUCED
        return Status.NOT_REPRODUCED if lo > bound or on_bound else Status.INCONCLUSIVE
    if test == Test.WITHIN:
        b_lo, b_hi = bound
        if b_lo <= lo and hi <= b_hi:
            return Status.REPRODUCED
        return Status.NOT_REPRODUCED if hi < b_lo or lo > b_hi else Status.INCONCLUSIVE
    raise ValueError(f"unknown test {test!r}; one of {TESTS}")


def precondition(name: str, value: str, condition: str, passed: bool) -> dict:
    """A named check that the method under test worked as the paper intends, computed by the run: ``value`` the
    numbers (formatted), ``condition`` what they must satisfy, ``passed`` whether they do. Never the claim's own
    effect (rule 7): a precondition that restates the claim cannot pass without the claim passing."""
    return {"name": name, "value": value, "condition": condition, "passed": bool(passed)}


def stability(standard: Estimate, longer: Estimate, standard_budget: str, longer_budget: str) -> dict:
    """The claim's own difference at the standard budget and at a longer one (or the last two checkpoints), for
    :meth:`Claim._gate` (rule 3). Both estimates must be over the same items and seeds, so the move is training's."""
    if standard.items != longer.items:
        raise ValueError(
            f"stability: the two budgets' estimates resample {standard.items} and {longer.items} items; compare the "
            "same items"
        )
    return {
        "standard": {"budget": standard_budget, "value": standard.value, "lo": standard.lo, "hi": standard.hi},
        "longer": {"budget": longer_budget, "value": longer.value, "lo": longer.lo, "hi": longer.hi},
    }


def stability_holds(stab: dict, bound: float | None) -> tuple[bool, float, float]:
    """``(holds, move, allowance)``: the longer budget's value moved by less than the standard interval's half-width
    and, for an ordering (``bound`` given), stayed on the same side of it (strictly: a value on the bound has no
    side). An equivalence (``bound`` None) has no side to keep: a difference near 0 may change sign by noise, which
    is exactly where such a claim is meant to pass, so only the move counts."""
    st, lg = stab["standard"], stab["longer"]
    move = float(lg["value"] - st["value"])
    allowance = float(st["hi"] - st["lo"]) / 2
    same_side = bound is None or (st["value"] - bound) * (lg["value"] - bound) > 0
    return bool(same_side and abs(move) < allowance), move, allowance


@dataclass
class Claim:
    """One row of the ledger (see the module docstring). Build it with :func:`greater`, :func:`less`,
    :func:`equivalent`, :func:`non_superior`, :func:`within` or :func:`not_testable`; ``status``, ``reason`` (for a
    gate), ``power``, ``verdict``, ``design_error`` and ``decide`` (for a gate) are computed."""

    id: str
    stage: str
    statement: str  # the paper's words, quoted
    source: str  # where in the paper: section, table, figure
    test: str  # one of TESTS
    quantity: str  # what is measured, e.g. "accuracy(AP K=400) - accuracy(SP 2x2), small set"
    bound: float | list[float] | None
    value: float | None
    lo: float | None
    hi: float | None
    unit: str
    interval: str  # what the interval is over
    paper: float | None  # the paper's own number for the same quantity, where it gives one
    setting: str  # profile, data, substitutes, reduced sizes
    why: str  # the author's sentence (never parsed; the ledger's own sentences are in ``verdict``)
    reason: str = ""  # with "not testable here": one of REASONS
    preconditions: list = field(default_factory=list)  # precondition(...) dicts, computed by the run
    headroom: float | None = None  # the baseline's room to the ceiling, a fraction of the metric's range
    items: int | None = None  # the units the interval resamples
    trained: bool = False  # a claim about a training method: its interval must span MIN_SEEDS retrained seeds
    seeds: int = 1  # how many trained models per arm the interval spans
    confidence: float = CONFIDENCE  # the interval's coverage (0.90: two one-sided tests)
    floor: float | None = None  # the items-only half-width (stats.Estimate.floor)
    margin: float | None = None  # an equivalence / non-superiority margin (fixed before the run)
    stability: dict | None = None  # stability(...): the difference at two budgets
    standins: list = field(default_factory=list)  # keys of poolrep.standins the claim rests on
    paper_setting: str = ""  # where the paper's number was measured (data, network)
    comparable: bool = False  # the paper's effect is on the same metric in a like setting: power remarks allowed
    decide: str = ""  # not testable: what would decide it (more time here, a GPU, data)
    power: str = ""  # generated: can the interval resolve the paper's effect?
    design_error: str = ""  # generated: a gate this design can never pass (rule 1)
    verdict: str = ""  # generated: the gate's or the interval's sentence, the power sentence
    status: str = field(default="")

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; one of {TESTS}")
        if self.reason and self.reason not in REASONS:
            raise ValueError(f"unknown reason {self.reason!r}; one of {REASONS}")
        if self.test == Test.NONE and not self.reason:
            raise ValueError(f"claim {self.id!r}: a claim that is not tested needs a reason, one of {REASONS}")
        for k in self.standins:
            standins.get(k)  # an unknown key is an error naming the registry's
        self.test = Test(self.test)
        est = None if self.value is None else Estimate(self.value, self.lo, self.hi, self.interval)
        gate = self._gate() if self.test != Test.NONE else ""
        self.status = Status.NOT_TESTABLE if gate else status_of(self.test, est, self.bound)
        if self.reason:
            self.reason = Reason(self.reason)
        if self.status == Status.NOT_TESTABLE and not self.decide:
            self.decide = self._decide()
        self.power = self._power()
        self.verdict = " ".join(
            x
            for x in (
                gate or self._reason() or self._standin_sentence(),
                self._power_sentence(),
                self._resolution_sentence(),
            )
            if x
        )

    # ------------------------------------------------------------------------------------------------ the gates
    def _gate(self) -> str:
        """Why the test cannot decide (and sets ``reason``, ``design_error``), or "" (the order: module docstring)."""
        failed = [c for c in self.preconditions if not c["passed"]]
        if failed:
            self.reason = Reason.PRECONDITION
            return (
                "Not judged: precondition failed: "
                + "; ".join(f"{c['name']}: {c['value']} (needs {c['condition']})" for c in failed)
                + "."
            )
        lost = [standins.get(k) for k in self.standins if not standins.get(k).keeps_contrast]
        if lost:
            self.reason = Reason.STAND_IN
            self.decide = self.decide or "; ".join(s.decide for s in lost)
            return "Not judged: " + " ".join(f"{s.substitute} for {s.paper_object}: {s.reason}." for s in lost)
        if self.value is None:
            return ""
        if self.trained and self.seeds < MIN_SEEDS:
            self.reason = Reason.SCALE
            self.design_error = f"a training-method claim on {self.seeds} seed(s), fewer than {MIN_SEEDS}"
            return (
                f"Not judged: a claim about a training method needs {MIN_SEEDS} or more retrained seeds; this interval "
                f"spans {self.seeds}, so run-to-run variation is not in it."
            )
        if self.stability is not None:
            holds, move, allowance = stability_holds(self.stability, self._side_bound())
            st, lg = self.stability["standard"], self.stability["longer"]
            if not holds:
                self.reason = Reason.SCALE
                self.decide = self.decide or (
                    "a longer training, until the difference is stable: this machine with more time, or a GPU"
                )
                return (
                    f"Not judged: the claim's difference is not stable under longer training: {st['value']:+.4g} "
                    f"[{st['lo']:+.4g}, {st['hi']:+.4g}]{self._u()} at {st['budget']}, {lg['value']:+.4g} "
                    f"[{lg['lo']:+.4g}, {lg['hi']:+.4g}] at {lg['budget']} (moved {move:+.4g}; stable needs "
                    + ("" if self._side_bound() is None else f"the same side of {self._side_bound():g} and ")
                    + f"a move below the standard half-width {allowance:.4g})."
                )
        if self.headroom is not None and self.items and self.headroom * self.items < 1:
            self.reason = Reason.SATURATED
            return (
                f"Not judged: the baseline is {self.headroom:.4g} of the metric's range from its ceiling, less than "
                f"one of {self.items} items' worth, so the claimed difference cannot appear here."
            )
        if self.items is not None and self.items < MIN_ITEMS:
            self.reason = Reason.SCALE
            self.design_error = f"{self.items} resampled items, fewer than {MIN_ITEMS}"
            return (
                f"Not judged: {self.items} test items, fewer than {MIN_ITEMS}: a bootstrap over so few discrete items "
                f"gives no usable interval."
            )
        if self.test in (Test.GREATER, Test.LESS) and self.lo == self.hi == self.bound and self.items is not None:
            self.reason = Reason.SATURATED
            return "Not judged: every test item ties, so the test has nothing to order."
        if self.test == Test.WITHIN:
            band = (self.bound[1] - self.bound[0]) / 2
            half = (self.hi - self.lo) / 2
            if half >= band:
                self.reason = Reason.SCALE
                self.design_error = (
                    f"the interval's half-width {half:.4g}{self._u()} is not below the band's {band:.4g}{self._u()}"
                )
                return (
                    f"Not judged: the {self._pct()} interval's half-width {half:.4g}{self._u()} is not below the "
                    f"band's half-width {band:.4g}{self._u()}, so no estimate could lie inside it: the design "
                    "(items, seeds) cannot decide this band."
                )
        return ""

    def _side_bound(self) -> float | None:
        """The value the stability gate's "same side" is read against: the bound of an ordering or of a
        non-superiority test; None for a band (an equivalence keeps no side, only its move counts)."""
        if self.test == Test.WITHIN:
            return None
        return float(self.bound)

    def _decide(self) -> str:
        lost = [standins.get(k) for k in self.standins if not standins.get(k).keeps_contrast]
        if self.reason == Reason.STAND_IN and lost:
            return "; ".join(s.decide for s in lost)
        if self.reason == Reason.DATA:
            return "the paper's data or weights, which this machine cannot have"
        return DECIDE.get(self.reason, "")

    # ------------------------------------------------------------------------------------------------ the text
    def _u(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def _pct(self) -> str:
        return f"{self.confidence:.0%}".replace("%", " %")

    def _effect(self) -> float | None:
        """The paper's effect in the quantity's units, for an ordering (its number minus the bound), else None."""
        if self.test not in (Test.GREATER, Test.LESS) or self.paper is None or np.isnan(self.paper):
            return None
        return float(self.paper) - float(self.bound)

    def _power(self) -> str:
        """``resolves`` / ``underpowered`` (half-width vs the paper's effect); for an inconclusive row whose
        interval rules out an effect as large as the paper's, ``excludes the paper's effect``; "" without a
        comparable effect (rule 5)."""
        effect = self._effect()
        if (
            effect is None
            or not self.comparable
            or self.value is None
            or self.status == Status.NOT_TESTABLE
            or effect == 0
        ):
            return ""
        if self.status == Status.INCONCLUSIVE:
            if (self.test == Test.GREATER and self.hi < self.bound + effect) or (
                self.test == Test.LESS and self.lo > self.bound + effect
            ):
                return "excludes the paper's effect"
        half = (self.hi - self.lo) / 2
        return "resolves" if half < abs(effect) else "underpowered"

    def _power_sentence(self) -> str:
        effect = self._effect()
        if effect is not None and not self.comparable and effect != 0:
            where = f" ({self.paper_setting})" if self.paper_setting else ""
            return (
                f"The paper's effect, {effect:+.4g}{self._u()}, was measured in another setting{where}: shown, not "
                "used to judge this interval's power."
            )
        if not self.power:
            return ""
        half, e = (self.hi - self.lo) / 2, abs(effect)
        if self.power == "excludes the paper's effect":
            return f"It excludes an effect as large as the paper's ({effect:+.4g}{self._u()}), but not {self.bound:g}."
        if self.power == "underpowered":
            return (
                f"Underpowered: its half-width {half:.4g}{self._u()} is not below the paper's effect "
                f"{e:.4g}{self._u()}."
            )
        return f"Its half-width {half:.4g}{self._u()} resolves the paper's effect {e:.4g}{self._u()}."

    def _standin_sentence(self) -> str:
        """For a claim declared not testable that names a registry stand-in losing the contrast: the registry's
        reason (so one substitution reads the same in every stage)."""
        lost = [standins.get(k) for k in self.standins if not standins.get(k).keeps_contrast]
        return " ".join(f"Stand-in: {s.substitute} for {s.paper_object}: {s.reason}." for s in lost)

    def _resolution_sentence(self) -> str:
        """What the design resolves: the half-width reached and the items-only floor (rule 1)."""
        if self.value is None or self.lo == self.hi or self.floor is None:
            return ""
        return (
            f"The design resolves +-{(self.hi - self.lo) / 2:.3g}{self._u()} ({self._pct()}); its items alone allow "
            f"+-{self.floor:.3g}."
        )

    def _reason(self) -> str:
        """The sentence that says why the status follows from the interval (generated, so it cannot go stale)."""
        if self.test == Test.NONE:
            return ""
        unit = self._u()
        ci = (
            f"the {self._pct()} interval [{self.lo:.4g}, {self.hi:.4g}]{unit}"
            if self.lo != self.hi
            else f"the exact value {self.value:.4g}{unit}"
        )
        if self.test == Test.WITHIN:
            where = {
                Status.REPRODUCED: "lies inside",
                Status.NOT_REPRODUCED: "lies outside",
                Status.INCONCLUSIVE: "overlaps the edge of",
            }[self.status]
            return f"{ci[0].upper() + ci[1:]} {where} [{self.bound[0]:g}, {self.bound[1]:g}]."
        side = ">" if self.test == Test.GREATER else "<"
        straddle = "touches" if self.bound in (self.lo, self.hi) and self.lo != self.hi else "straddles"
        where = {
            Status.REPRODUCED: f"lies entirely {side} {self.bound:g}",
            Status.NOT_REPRODUCED: f"excludes {side} {self.bound:g}",
            Status.INCONCLUSIVE: f"{straddle} {self.bound:g}",
        }[self.status]
        return f"{ci[0].upper() + ci[1:]} {where}."

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("status", "reason", "test"):  # plain strings in claims.json
            d[k] = str(d[k])
        return d


def _claim(test: str, id: str, stage: str, statement: str, source: str, quantity: str, est, bound, **kw) -> Claim:
    if est is None and test != Test.NONE:
        raise ValueError(
            f"claim {id!r}: a {test!r} test needs an estimate; a claim with no number of ours is "
            f"not_testable(..., reason=...)"
        )
    headroom = kw.pop("headroom", None)
    kw.setdefault("paper", None)
    kw.setdefault("unit", "")
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
        interval="" if est is None else est.how,
        items=None if est is None else est.items,
        seeds=1 if est is None else est.seeds,
        confidence=CONFIDENCE if est is None else est.confidence,
        floor=None if est is None else est.floor,
        headroom=None if headroom is None else float(headroom),
        **kw,
    )


def _ordering(test, id, stage, statement, source, quantity, est, *, setting, why, bound=0.0, unit="", **kw) -> Claim:
    if est is not None and est.confidence != CONFIDENCE:
        raise ValueError(
            f"claim {id!r}: an ordering reads the 95 % interval, got {est.confidence:.0%}".replace("%", " %")
        )
    return _claim(test, id, stage, statement, source, quantity, est, bound, unit=unit, setting=setting, why=why, **kw)


def greater(id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, **kw) -> Claim:
    """The claim holds if ``quantity > bound`` (an ordering: A - B > 0). Keywords: ``setting``, ``why`` (required);
    ``bound`` (0), ``unit``; ``paper``: the paper's own value of the quantity (its effect, for an ordering),
    ``paper_setting`` where it was measured, ``comparable`` whether that setting is like ours (rule 5);
    ``preconditions``: :func:`precondition` checks; ``headroom``: the baseline's distance to its ceiling as a
    fraction of the metric's range (1 - mAP(B)), for the saturation check; ``trained``: a claim about a training
    method (judged only over ``MIN_SEEDS`` retrained seeds); ``stability``: :func:`stability`; ``standins``: keys of
    :mod:`poolrep.standins`."""
    return _ordering(Test.GREATER, id, stage, statement, source, quantity, est, **kw)


def less(id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, **kw) -> Claim:
    """The claim holds if ``quantity < bound`` (see :func:`greater`)."""
    return _ordering(Test.LESS, id, stage, statement, source, quantity, est, **kw)


def within(
    id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, band: Sequence[float], **kw
) -> Claim:
    """The claim holds if ``quantity``'s interval lies inside ``band`` = (low, high)."""
    lo, hi = (float(v) for v in band)
    if lo > hi:
        raise ValueError(f"band {band} is empty")
    kw.setdefault("unit", "")
    return _claim(Test.WITHIN, id, stage, statement, source, quantity, est, [lo, hi], **kw)


def _one_sided(id: str, est: Estimate | None, margin: float, zero_ok: bool = False) -> None:
    if not (margin > 0 or (zero_ok and margin == 0)):
        raise ValueError(f"claim {id!r}: a margin must be > 0, got {margin!r}")
    if est is not None and est.confidence != TOST_CONFIDENCE:
        raise ValueError(
            f"claim {id!r}: a one-sided test at 5 % reads the {TOST_CONFIDENCE:.0%} interval; build the estimate with "
            f"confidence=stats.TOST_CONFIDENCE (got {est.confidence:.0%})"
        )


def equivalent(
    id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, margin: float, **kw
) -> Claim:
    """A "no gain" / "no cost" claim as two one-sided tests at 5 %: reproduced when the 90 % interval of the
    difference lies within +-``margin`` (fixed before the run), not reproduced when it lies outside, else
    inconclusive. A difference that is merely negative does not pass. ``est`` must be a 90 % estimate."""
    _one_sided(id, est, margin)
    return within(id, stage, statement, source, quantity, est, (-margin, margin), margin=float(margin), **kw)


def non_superior(
    id: str, stage: str, statement: str, source: str, quantity: str, est: Estimate, margin: float, **kw
) -> Claim:
    """A "stops rising" / "plateaus" claim as a non-superiority test at 5 %: reproduced when the 90 % interval's
    upper bound of the further rise lies below ``margin`` (fixed before the run), not reproduced when its lower bound
    lies above, else inconclusive. ``est`` must be a 90 % estimate. ``margin`` 0 where the quantity already
    subtracts its allowance (e.g. "the further rise minus a quarter of the rise before it")."""
    _one_sided(id, est, margin, zero_ok=True)
    kw.setdefault("unit", "")
    return _claim(Test.LESS, id, stage, statement, source, quantity, est, float(margin), margin=float(margin), **kw)


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
    decide: str = "",
    **kw,
) -> Claim:
    """A claim this machine cannot test, declared before the run from its design: ``reason`` (``REASONS``),
    ``why`` naming the missing data, the cut or the missing contrast, ``decide`` what would decide it (defaults by
    reason); ``ours`` (optional) our number on the substitute, shown beside ``paper`` but not judged."""
    return _claim(
        Test.NONE,
        id,
        stage,
        statement,
        source,
        quantity,
        ours,
        None,
        setting=setting,
        why=why,
        reason=reason,
        decide=decide,
        **kw,
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
                "resolves": fmt_resolution(d),
                "setting": d["setting"],
                "why": why_text(d),
                "decide": d.get("decide") or "",
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
            "resolves",
            "setting",
            "why",
            "decide",
        ],
    )


def why_text(d: dict) -> str:
    """The author's sentence, then the ledger's generated ones (kept apart in the row, joined only for display)."""
    return " ".join(x for x in ((d.get("why") or "").strip(), (d.get("verdict") or "").strip()) if x)


def fmt_resolution(d: dict) -> str:
    """What the design resolves: "+-h (items alone +-f)" at the row's confidence; "" without an interval."""
    if d.get("value") is None or d.get("lo") == d.get("hi"):
        return ""
    half = (d["hi"] - d["lo"]) / 2
    conf = f"{d.get('confidence', CONFIDENCE):.0%}".replace("%", " %")
    floor = f" (items alone +-{d['floor']:.3g})" if d.get("floor") is not None else ""
    return f"+-{half:.3g} at {conf}{floor}"


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
        kind = " (non-superiority, 90 % interval)" if d.get("margin") is not None else ""
        return f"{q} < {b:g}{kind}"
    if d["test"] == "within":
        kind = " (two one-sided tests, 90 % interval)" if d.get("margin") is not None else ""
        return f"{q} in [{b[0]:g}, {b[1]:g}]{kind}"
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
