"""The claims of Goroshin, Bruna, Tompson, Eigen and LeCun (ICLR 2015), as this stage tests them: slow-feature
pooling auto-encoders learn codes that change slowly over time on natural video (temporal coherence) and whose
pooled features retrieve frames of the same scene and images of the same class better than the input and than
sparse, group-sparse and DrLIM codes; the paper's AUCs (from its later version) are typed in once, here; then the
code that builds the ledger's rows (:mod:`poolrep.claims`)."""

from __future__ import annotations

import numpy as np

# The paper's numbers, typed in once: AUC of the temporal and the class-based precision-recall curves per layer.
# Our copy of the paper shows only the curves (Fig. 7); these AUCs are from the paper's later, longer version.
PAPER_AUC = {  # method: (temporal AUC, class AUC)
    "ours L1": (0.262, 0.296),
    "ours L2": (0.300, 0.310),
    "DrLIM L1": (0.188, 0.221),
    "DrLIM L2": (0.378, 0.268),
    "group L1": (0.231, 0.266),
    "group L2": (0.285, 0.281),
}


CIFAR_DIFFERENCES = {  # claim slug: (method, baseline) of its class-AUC difference (the claims and the stability table)
    "cifar_l1_beats_input": ("ours L1", "ZCA pixels"),
    "cifar_l2_no_gain": ("ours L2", "ours L1"),
}


def claims(
    auc_t: dict,
    auc_c: dict,
    p: dict,
    sizes: dict,
    coherence: dict | None = None,
    change: dict | None = None,
    competing: np.ndarray | None = None,
    checkpoint: dict | None = None,
) -> list:
    """The paper's claims, evaluated on this run (see :mod:`poolrep.claims`). ``auc_t``/``auc_c``: per method the
    per-query temporal and class AUC, queries x seeds (``by_seed``; an untrained method one column); every
    comparison is paired by query and seed with a 95 % interval over both (``poolrep.claims.seed_interval``, issue
    32: a verdict about a training method carries the run-to-run variation). ``coherence``: per model (``ours``,
    ``sparse``) the layer-1 pool groups' coherence, groups x seeds; ``change``: per method the code change between
    adjacent held-out frames (``code_change``), test scenes x seeds (each the mean over its adjacent pairs);
    ``competing``: per temporal query, whether its clip has another camera shot (``competing_queries``; None: all);
    ``checkpoint``: ``class_auc_at_checkpoint``'s per-query class AUCs of ``ours`` L1 / L2 at ``steps -
    keep_every`` (None: no stability gate, e.g. a run that kept no states).

    Preconditions (issue 32), each fixed before the run: a slowness claim is judged only where the beta > 0 codes
    change less between adjacent held-out frames than the beta = 0 codes (the interval of the paired difference
    below 0: the slowness term did its job). The CIFAR claims pass the ledger's stability gate (issue 42,
    ``poolrep.claims.stability``): the claim's own difference, same queries, seeds and function, at the state one
    ``keep_every`` before the end (the standard budget) and at the final models (the longer one), each at 95 %; the
    claim itself is judged on the final models."""
    from ... import claims as C

    stage = "slowfeat"
    n_seeds = max(a.shape[1] for a in auc_t.values())
    video = (
        f"profile {p['profile']}; temporal test on {sizes['test_scenes']} scenes ({sizes['test_frames']} frames) of "
        f"the mirror's clips {', '.join(p['test_videos'])} (substitute for the paper's YouTube test videos; "
        f"scenes = cuts plus segments of at most {p['scene_max']} frames separated by gaps; a query's other frames "
        f"of its camera shot are junk), models trained on {', '.join(p['train_videos'])} (Megamind.avi is "
        f"animated); {p['steps1']}/{p['steps2']} steps per layer; {n_seeds} seeds"
    )
    cifar = (
        f"profile {p['profile']}; CIFAR-10 (JPEG copy), {sizes['cifar_queries']} test queries against "
        f"{sizes['cifar_db']} training images (paper 10,000 / 50,000), {p['class_k']} neighbours, recall base "
        f"'{p['class_recall_base']}'; ZCA fitted on {sizes['zca_images']:,} CIFAR-10 training images; "
        f"{n_seeds} seeds"
    )

    def diff(res, a, b, what, confidence=C.CONFIDENCE):
        return C.seed_interval(res[a], res[b], seed=p["seed"], what=what, confidence=confidence)

    def stable(method, baseline):
        """The stability gate's input for the CIFAR claim ``method - baseline``: the difference with ``method`` at its
        state one ``keep_every`` before the end, then at the final model (95 % each; the baseline always final)."""
        if checkpoint is None:
            return None
        ck = checkpoint[method]
        earlier = diff({**auc_c, method: ck["auc"]}, method, baseline, "CIFAR-10 queries")
        final = diff(auc_c, method, baseline, "CIFAR-10 queries")
        return C.stability(earlier, final, f"{ck['step']} steps", f"{ck['final']} steps")

    def slower(layer):
        if change is None:
            return []
        e = C.seed_interval(change[f"ours {layer}"], change[f"sparse {layer}"], seed=p["seed"], what="test scenes")
        return [
            C.precondition(
                f"beta={p['beta']:g} {layer} codes change less between adjacent held-out frames than beta=0 codes "
                "(1 - cos, in units of the difference between two random frames of different camera shots)",
                f"{e.value:+.4f} [{e.lo:+.4f}, {e.hi:+.4f}]",
                "upper bound < 0",
                e.hi < 0,
            )
        ]

    n_q = len(next(iter(auc_t.values())))
    rows = np.ones(n_q, bool) if competing is None else np.asarray(competing, bool)
    if len(rows) != n_q:
        raise ValueError(f"competing has {len(rows)} entries for {n_q} temporal queries")
    decides = rows.sum() >= C.MIN_ITEMS
    sel = rows if decides else np.ones(n_q, bool)  # the queries every temporal number below is over

    def temporal_ordering(cid, statement, source, method, baseline, why, preconditions=()):
        """A temporal "method beats baseline" claim on the queries that compete with their own clip's other scenes
        (``competing``; fixed by the clips' shots, before any model is trained). A failed precondition comes first
        (the ledger's order); then, with fewer than ``MIN_ITEMS`` such queries, the test lacks the paper's contrast:
        "not testable here (stand-in)", our number over every query shown."""
        quantity = f"temporal AUC({method}) - AUC({baseline})"
        est = diff({k: auc_t[k][sel] for k in (method, baseline)}, method, baseline, "query scenes")
        if any(not c["passed"] for c in preconditions) or decides:
            return C.greater(
                cid,
                stage,
                statement,
                source,
                quantity,
                est,
                unit="AUC",
                setting=video + ("" if sel.all() else f"; the {int(sel.sum())} queries that compete with their clip"),
                why=why,
                preconditions=preconditions,
                trained=True,
                standins=["mirror_clips_for_youtube"],
            )
        return C.not_testable(
            cid,
            stage,
            statement,
            source,
            quantity,
            setting=video,
            reason="stand-in",
            ours=est,
            unit="AUC",
            preconditions=preconditions,
            standins=["mirror_clips_for_youtube"],
            decide="test clips with 30 or more queries from multi-shot clips (data)",
            why=(why + " " if why else "")
            + f"Not judged: only {int(rows.sum())} of {n_q} query scenes come from a test clip with another camera "
            f"shot (fewer than {C.MIN_ITEMS}); the others' clips are one shot, whose other frames are junk, so they "
            "are ranked only against other clips' frames: that tells clips apart, not a frame's scene from the same "
            "video's other scenes, which the paper's test videos (with cuts) do. Our number over every query is "
            "shown, not judged.",
        )

    # the input space is the one the models are fed, ZCA-whitened pixels (Sec. 5: "the entire dataset was ZCA
    # whitened"), as for the CIFAR claim; raw pixels are shown beside it (fixed from the paper's text, not the results)
    out = []
    for layer in ("L1", "L2"):
        out.append(
            temporal_ordering(
                f"temporal_{layer.lower()}_beats_pixels",
                '"We show that nearest neighbors of a query frame in the '
                'learned feature space are more likely to be its temporal neighbors."',
                "Abstract, Sec. 5, Fig. 7a",
                f"ours {layer}",
                "ZCA pixels",
                f"Input space = the ZCA-whitened pixels the models see (Sec. 5); raw pixels score "
                f"{auc_t['pixels'][sel].mean():.3f}, ZCA pixels {auc_t['ZCA pixels'][sel].mean():.3f} AUC.",
            )
        )
    for layer in ("L1", "L2"):
        out.append(
            temporal_ordering(
                f"slowness_beats_sparsity_{layer.lower()}",
                '"the resulting features are more stable to naturally '
                'occurring temporal variability, while maintaining discriminative power"',
                f"Sec. 6 (Fig. 5b/c: sparsity only vs sparsity and slowness; ours beta={p['beta']:g}, sparse beta=0)",
                f"ours {layer}",
                f"sparse {layer}",
                "",
                slower(layer),
            )
        )
    if coherence is not None:
        # each seed's model has its own pool groups: items nested in seeds (poolrep.claims.nested_interval; items =
        # groups x seeds of both models). Ours and sparse share each seed's initialisation and minibatches, so group k
        # of one is partly paired with group k of the other; the interval ignores that pairing (conservative). Coherence is
        # measured against random groups of the same size (null 0), shown for both models: the claim's own effect,
        # so it is no precondition (rule 7)
        cols = {k: [coherence[k][:, j] for j in range(coherence[k].shape[1])] for k in ("ours", "sparse")}
        est = C.nested_interval(cols["ours"], cols["sparse"], what="pool groups")
        slow, sparse = (C.nested_interval(cols[k], what="pool groups") for k in ("ours", "sparse"))
        out.append(
            C.greater(
                "slow_groups_more_coherent",
                stage,
                '"The filter bank trained with beta = 0 exhibits no coherence within '
                'each pool group [...] Most groups in the filter bank trained with slowness tend to be visually similar"',
                "Sec. 5, Fig. 5b/c",
                f"group coherence(beta={p['beta']:g}) - group coherence(beta=0), layer-1 decoders",
                est,
                setting=f"{video}; coherence = mean |cos| of a group's decoder atoms minus their mean |cos| with other "
                "groups' atoms",
                why=f"Against random groups of the same size (null 0): beta={p['beta']:g} groups {slow.value:+.4f} "
                f"[{slow.lo:+.4f}, {slow.hi:+.4f}], beta=0 groups {sparse.value:+.4f} [{sparse.lo:+.4f}, "
                f"{sparse.hi:+.4f}] ({coherence['ours'].shape[0]} groups x {coherence['ours'].shape[1]} seeds each).",
                trained=True,
            )
        )
    # Sec. 5: "the entire dataset was ZCA whitened" -- the models are fed ZCA-whitened pixels, so "nearest neighbors
    # in input space" is the ZCA space; raw pixels are shown beside it in the class table
    l1, l1_base = CIFAR_DIFFERENCES["cifar_l1_beats_input"]
    raw = diff(auc_c, l1, "pixels", "CIFAR-10 queries")
    out.append(
        C.greater(
            "cifar_l1_beats_input",
            stage,
            '"The first layer features perform noticeably better than nearest neighbors in input space"',
            "Sec. 5, Fig. 7b",
            "class AUC(ours L1) - AUC(ZCA pixels, the models' input space)",
            diff(auc_c, l1, l1_base, "CIFAR-10 queries"),
            unit="AUC",
            setting=cifar,
            trained=True,
            stability=stable(l1, l1_base),
            why=f'Input space = the ZCA-whitened pixels the models see (Sec. 5: "the entire dataset was ZCA whitened"); '
            f"against raw pixels the difference is {raw.value:+.4f} [{raw.lo:+.4f}, {raw.hi:+.4f}] AUC.",
        )
    )
    l2, l2_base = CIFAR_DIFFERENCES["cifar_l2_no_gain"]
    out.append(
        C.equivalent(
            "cifar_l2_no_gain",
            stage,
            '"second layer features give no significant gain in performance"',
            "Sec. 5, Fig. 7b",
            "class AUC(ours L2) - AUC(ours L1)",
            diff(auc_c, l2, l2_base, "CIFAR-10 queries", confidence=C.TOST_CONFIDENCE),
            p["no_gain_margin"],
            unit="AUC",
            setting=cifar,
            why=f"Margin +-{p['no_gain_margin']:g} AUC fixed in params before any run.",
            trained=True,
            stability=stable(l2, l2_base),
        )
    )
    out.append(
        C.not_testable(
            "auc_values",
            stage,
            "the paper's later version: temporal AUC 0.262 (L1) / 0.300 (L2)",
            "later, longer version of the paper (not our copy)",
            "temporal AUC(ours L2)",
            ours=C.seed_interval(auc_t["ours L2"], seed=p["seed"], what="query scenes"),
            unit="AUC",
            paper=PAPER_AUC["ours L2"][0],
            setting=video,
            reason="stand-in",
            standins=["mirror_clips_for_youtube"],
            decide="the paper's YouTube test set (data)",
            why="An absolute AUC from another version of the paper, on its YouTube test set: our test scenes are a "
            "substitute, so the number is shown, not judged.",
        )
    )
    return C.check_unique(out)
