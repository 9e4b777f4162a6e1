"""The claims of Wan et al. (ICCV 2019; our copy holds the abstract only), as this stage tests them: entropy-based
pooling outperforms "recently proposed pooling methods and attention mechanisms in ImageNet classification" (GAP, GMP,
spatial attention), and its weights point at the object (localisation); the quoted sentences are typed in once, here,
then the code that builds the ledger's rows (:mod:`poolrep.claims`)."""

from __future__ import annotations

import numpy as np

from .experiment import CAM, CENTRE, NETWORKS, control_difference
from .figures import CANVAS_TITLES, NETWORK_TITLES, SHORT, control_phrase, resnet_cut

ABSTRACT = "Wan et al. (ICCV 2019), abstract"


OUTPERFORMING = '"outperforming recently proposed pooling methods and attention mechanisms in ImageNet classification"'


def head_trained(curves: list[dict], network: str, pooling: str, factor: float) -> dict:
    """The precondition that a pooling's networks were trained as far as GAP's: the mean over seeds of its final
    training loss is at most ``factor`` (params ``head_loss_factor``, fixed before the run) times GAP's on the same
    network. A comparator whose training loss stays near chance (ln 10 = 2.3 for CIFAR-10) has not learned, so an
    ordering against it measures its training, not entropy pooling."""
    from ...claims import precondition

    def final(q):  # each seed's training loss at its last epoch, averaged over the seeds
        last = {}
        for c in sorted((c for c in curves if c["network"] == network and c["pooling"] == q), key=lambda c: c["epoch"]):
            last[c["seed"]] = c["train_loss"]
        if not last:
            raise ValueError(f"no training curve of {q!r} on {network!r}")
        return float(np.mean(list(last.values())))

    mine, gap = final(pooling), final("gap")
    return precondition(
        f"{pooling} on {NETWORK_TITLES.get(network, network)}: final training loss within {factor:g}x GAP's",
        f"{mine:.3f} vs GAP {gap:.3f} (mean over seeds)",
        f"<= {factor * gap:.3f}",
        mine <= factor * gap,
    )


NEAR_UNIFORM = 0.95  # relative entropy of the weights at or above which the why says "close to GAP" (prose only)


def weights_phrase(stats: dict | None) -> str:
    """One sentence on how far the entropy weights are from uniform on one network (first seed, all test images):
    ``stats`` has ``rel_entropy`` (1 = uniform), ``max_weight`` and ``uniform_max_weight``; "" without stats."""
    if not stats:
        return ""
    s = (
        f"Entropy weights on this network (clean test images, first seed): relative entropy {stats['rel_entropy']:.3f} (1 = uniform), largest weight "
        f"{stats['max_weight']:.3f} against {stats['uniform_max_weight']:.3f} for uniform weights"
    )
    return s + (
        ": entropy pooling here is close to GAP by construction." if stats["rel_entropy"] >= NEAR_UNIFORM else "."
    )


def claims(
    hits: dict,
    p: dict,
    sizes: dict,
    loc: dict | None = None,
    conv=None,
    control: dict | None = None,
    curves: list[dict] | None = None,
    weights: dict | None = None,
) -> list:
    """The abstract's claims, evaluated on this run (see :mod:`poolrep.claims`). ``hits[(network, pooling)]``: test
    items x seeds 0/1 correctness; each ordering is the difference paired by seed and item, with an
    interval over the seeds and the items (``poolrep.claims.seed_interval``).
    ``loc``: the localisation scores per map (``localisation``); ``conv``: the convergence control's estimates
    (``convergence``), named in the CIFAR ResNet's setting (evidence, not a gate); ``control``: the control runs
    (``train_all``), whose ordering after the longer training (mean over the control seeds) is both named in the
    setting of the ordering it bears on and checked by the ledger's stability gate; ``curves``: the training curves
    (``train_all``), for each ordering's precondition that both of its poolings trained as far as GAP
    (``head_trained``); ``weights[(network, pooling)]``: the weight statistics (``weight_stats`` +
    ``uniform_max_weight``), named in each row's why (issue 34).

    Each CIFAR ResNet ordering passes the ledger's stability gate on its own difference (issue 42,
    :func:`poolrep.claims.stability`): the difference after ``epochs`` and after ``control_factor`` x ``epochs``
    (``control_difference``: the control seeds, the same test images) must keep its side of 0 and move by less than
    the standard estimate's half-width, else the row is "not testable here (scale)" with both numbers: a difference
    between models stopped early can depend on how fast each learns as much as on how well it ends. An ordering whose
    two poolings are not both in the control cannot be checked and is "not testable here (scale)", our number shown.
    The MobileNetV2 heads are judged without it (their curves are in the figure).

    The localisation claims compare a model's weights with a fixed map (a centre prior), not two models; their
    precondition is a positive control (issues 42, 46): on the same canvases and measure a content-aware map, the GAP
    model's CAM (not the entropy weights, so not circular), must beat both the uniform map and the centre prior (95 %
    lower bounds > 0), else the test cannot show localisation at all. ``loc`` holds one ``localisation`` per canvas
    kind, in the order of preference fixed before the run; each claim is judged on the first kind whose positive
    control passes, and is "not testable here (precondition)" where none does."""
    from ... import claims as C

    stage = "entropy"
    resnet = resnet_cut(p, sizes["cifar_train"], conv)
    nets = {
        NETWORKS[0]: f"{resnet}, {sizes['cifar_test']:,} test images",
        NETWORKS[1]: (
            f"the frozen ImageNet MobileNetV2 with a head trained for "
            f"{p['head_epochs']} epochs on {sizes['head_train']:,} CIFAR-10 "
            f"images, {sizes['head_test']:,} test images"
        ),
    }
    # what stands in for the abstract's comparators, which it does not name
    baseline = {
        "gap": "",
        "gmp": '; the comparator: global max pooling, a classic pooling, not a "recently proposed" '
        'one (the abstract names none): it stands in for "pooling methods"',
        "attention": "; the comparator: our learned spatial attention pooling (a 1x1-conv score per location, "
        "softmax over the locations), standing in for the abstract's unnamed \"attention "
        'mechanisms"',
    }
    base = (
        f"profile {p['profile']}; CIFAR-10 (JPEG copy) instead of ImageNet; {len(p['seeds'])} seeds; "
        "entropy weights w = (log C - H) normalised (our formula: the abstract gives none; the other variants "
        "are in the tables)"
    )
    ent = "entropy_linear"
    budgets = (f"{p['epochs']} epochs", f"{p['epochs'] * p['control_factor']} epochs")
    out = []
    for net, short in ((NETWORKS[0], "resnet"), (NETWORKS[1], "mobilenet")):
        if (net, ent) not in hits:
            continue
        for other, cid, quote in (
            (
                "gap",
                "beats_gap",
                '"such a location-adaptive feature weighting mechanism helps the network to '
                "concentrate on semantically important image regions, leading to improvements "
                'in the large-scale classification"',
            ),
            ("gmp", "beats_gmp", OUTPERFORMING),
            ("attention", "beats_attention", OUTPERFORMING),
        ):
            if (net, other) not in hits:
                continue
            est = C.seed_interval(hits[(net, ent)], hits[(net, other)], seed=p["seed"], scale=100, what="test images")
            diff = (
                control_difference(control, ent, other, seed=p["seed"])
                if control is not None and net == NETWORKS[0]
                else None
            )
            longer = "" if diff is None else "; " + control_phrase(diff, ent, other, p["epochs"], p["control_factor"])
            setting = f"{base}; {nets[net]}{baseline[other]}{longer}"
            quantity = f"accuracy(entropy) - accuracy({other}), {NETWORK_TITLES[net]}"
            pre = (
                []
                if curves is None
                else [
                    head_trained(curves, net, q, p["head_loss_factor"])
                    for q in dict.fromkeys((ent, other))
                    if q != "gap"
                ]
            )
            why = weights_phrase((weights or {}).get((net, ent)))
            common = dict(
                unit="points",
                setting=setting,
                preconditions=pre,
                trained=True,
                standins=["cifar10_for_imagenet"],
            )
            if net == NETWORKS[0] and diff is None:
                # the stability gate needs both poolings' control runs: without them it cannot be checked
                out.append(
                    C.not_testable(
                        f"{cid}_{short}",
                        stage,
                        quote,
                        ABSTRACT,
                        quantity,
                        reason="scale",
                        ours=est,
                        decide="the control run for both poolings",
                        why=(
                            f"No control run of both {SHORT[ent]} and {SHORT.get(other, other)}: whether this "
                            f"difference is stable under longer training cannot be checked. {why}"
                        ).strip(),
                        **common,
                    )
                )
                continue
            stab = None if diff is None else C.stability(diff["standard"], diff["longer"], *budgets)
            out.append(
                C.greater(f"{cid}_{short}", stage, quote, ABSTRACT, quantity, est, why=why, stability=stab, **common)
            )
    if loc is not None:
        # loc: {canvas kind: localisation(...)}, in the order of preference fixed before the run (CANVASES)
        def lset(kind):
            what = (
                f"each of {sizes['loc_items']:,} CIFAR-10 test images pasted at a random place of a "
                f"{sizes['canvas']}x{sizes['canvas']} canvas"
            )
            bg = (
                f"tiled with crops of {sizes['loc_background']:,} CIFAR-10 training images"
                if kind == "cluttered"
                else "of one flat colour (the CIFAR-10 mean)"
            )
            return (
                f"{base}; {CANVAS_TITLES[kind]} (a constructed task on real images: {what} {bg}; the box is known); "
                f"weights of {resnet} (clean images, no canvases), every seed"
            )

        def positive(kind, what, quote_m):
            """The positive control on one canvas kind, computed before the claim: a content-aware map (the GAP
            model's CAM, not the entropy weights) must beat both maps that know nothing, the uniform map and the
            centre prior (95 % lower bounds > 0): else this test cannot show localisation at all (issue 46)."""
            lk = loc[kind]
            if CAM not in lk:
                return [
                    C.precondition(f"positive control on the {kind} canvases", "no CAM in this run", "a CAM", False)
                ]
            pcs = []
            for ref, ref_name in (("uniform", "the uniform map"), (CENTRE, "the centre prior")):
                e = C.seed_interval(lk[CAM][what], lk[ref][what], seed=p["seed"], scale=100, what="canvases")
                pcs.append(
                    C.precondition(
                        f"a content-aware map (the GAP model's CAM) beats {ref_name} on the {kind} canvases "
                        f"(positive control, {quote_m})",
                        f"CAM - {ref} {e.value:+.2f} [{e.lo:+.2f}, {e.hi:+.2f}] points",
                        "95 % lower bound > 0",
                        e.lo > 0,
                    )
                )
            return pcs

        for what, quote_m in (("share", "share of the weights inside the box"), ("hit", "pointing-game hit rate")):
            controls = {kind: positive(kind, what, quote_m) for kind in loc}
            passing = [k for k, pcs in controls.items() if all(c["passed"] for c in pcs)]
            kind = passing[0] if passing else next(iter(loc))  # the first canvas kind whose positive control passes
            lk = loc[kind]
            # judged against a centre guess (fixed before the run), the stronger of the two maps that know nothing
            est = C.seed_interval(
                lk["entropy_linear"][what], lk[CENTRE][what], seed=p["seed"], scale=100, what="canvases"
            )
            vs_uni = C.seed_interval(
                lk["entropy_linear"][what], lk["uniform"][what], seed=p["seed"], scale=100, what="canvases"
            )
            others = "; ".join(
                f"on the {k} canvases the positive control "
                + ("passes" if k in passing else "fails")
                + " ("
                + ", ".join(c["value"] for c in pcs)
                + ")"
                for k, pcs in controls.items()
                if k != kind
            )
            out.append(
                C.greater(
                    f"weights_localise_{what}",
                    stage,
                    '"the generated feature weights can be utilized in visual tasks '
                    'such as weakly-supervised object localization"',
                    ABSTRACT,
                    f"{quote_m}, entropy weights - centre prior (%), {kind} canvases",
                    est,
                    unit="points",
                    setting=lset(kind),
                    trained=True,
                    preconditions=controls[kind],
                    why=f"Judged on the {kind} canvases: the first canvas kind, in the order fixed before the run "
                    f"({', '.join(loc)}), whose positive control passes"
                    + ("" if passing else " (none passes: the first is shown)")
                    + (f"; {others}" if others else "")
                    + f". The centre prior scores {100 * float(np.mean(lk[CENTRE][what])):.1f} %; against a "
                    f"uniform map the entropy weights score {vs_uni.value:+.2f} [{vs_uni.lo:+.2f}, {vs_uni.hi:+.2f}] "
                    "points. " + weights_phrase((weights or {}).get((NETWORKS[0], ent))),
                )
            )
    else:
        out.append(
            C.not_testable(
                "localisation",
                stage,
                '"the generated feature weights can be utilized in visual tasks such as '
                'weakly-supervised object localization"',
                ABSTRACT,
                "localisation of the weight maps",
                setting=base,
                reason="scale",
                why="This run made no localisation test.",
            )
        )
    out.append(
        C.not_testable(
            "voc_segmentation",
            stage,
            '"achieving state-of-the-arts in weakly-supervised semantic segmentation on PASCAL VOC 2012 dataset"',
            ABSTRACT,
            "weakly-supervised segmentation on VOC 2012",
            setting=base,
            reason="data",
            why="PASCAL VOC 2012 is not on this machine, and no segmentation network is part of this workspace.",
            decide="PASCAL VOC 2012 and a segmentation network (data)",
        )
    )
    out.append(
        C.not_testable(
            "imagenet",
            stage,
            OUTPERFORMING,
            ABSTRACT,
            "ImageNet top-1",
            setting=base,
            reason="data",
            why="ImageNet training data is not on this machine; the orderings above are on CIFAR-10 instead.",
            decide="ImageNet (data)",
        )
    )
    return C.check_unique(out)
