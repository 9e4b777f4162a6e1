"""The stand-in registry: every paper object this machine replaces, decided once for every stage.

A substitution (a network, a data set, a layer) either keeps the contrast a claim tests or loses it. That is a
fact of the substitution, not of the stage that happens to use it, so it is written here once, with its reason,
and every claim that rests on a substitute names its key (``claims.greater(..., standins=[key])``). The ledger
(:mod:`poolrep.claims`) reads this table before the interval: a claim resting on a stand-in that loses the
contrast is "not testable here (stand-in)" with the registry's reason, whichever stage builds it; one that keeps it
is judged, the substitute named in its setting. The report and ``results/claims.md`` render the table with the
claims that use each entry, read from the ledger (:func:`usage`).

``keeps_contrast`` is about orderings (A beats B on the substitute as on the paper's object). An *absolute* number
(the paper's accuracy, its mAP) is never judged on a substitute: claims of that kind are ``not_testable`` with the
key named, whatever the entry says.

Decided from the papers' texts and the substitutes' construction, before any number of this run:
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class StandIn:
    key: str
    paper_object: str  # what the paper used
    substitute: str  # what this machine uses instead
    keeps_contrast: bool  # does an ordering on the substitute test the paper's ordering?
    reason: str  # one sentence: which contrast is kept or lost, and why
    decide: str  # what would decide a claim that this substitute cannot: the data or network it lacks


REGISTRY: dict[str, StandIn] = {
    s.key: s
    for s in (
        StandIn(
            "mobilenet_conv_maps",
            "AlexNet's last conv maps (pool5 / conv5, ImageNet or Places weights)",
            "torchvision's ImageNet MobileNetV2, its last conv maps (features.18) or a named inner block",
            True,
            "the claims compare poolings of one network's conv maps, and the substitute's maps are pooled by the same "
            "operators: the contrast between poolings is kept (the numbers are not the paper's)",
            "AlexNet weights (data)",
        ),
        StandIn(
            "gap_for_fc_codes",
            "AlexNet's fully connected codes fc6 / fc7 (CNN-Global in Liu et al., the neural codes in Jose et al.)",
            "global average pooling of MobileNetV2's last maps (the 1,280-d vector that feeds its classifier)",
            False,
            "MobileNetV2 has no hidden fully connected layer: its global code is itself a pooling of the very maps the "
            "compared method pools, not a learned transform of them, so 'pooled conv maps vs fc codes' becomes "
            "'one pooling vs another' and the papers' contrast is absent",
            "AlexNet weights (data)",
        ),
        StandIn(
            "cifar10_class_retrieval",
            "instance retrieval on INRIA Holidays / Oxford5K (the same object or place under other viewpoints)",
            "CIFAR-10 test images as queries, every training image of the same class relevant",
            False,
            "class retrieval rewards any member of a category, instance retrieval the same object under a change of "
            "view: a regional layout that matches one scene's arrangement (what the pyramids keep) is not what makes "
            "two images of one class alike, so an ordering here does not test the paper's",
            "INRIA Holidays or Oxford5K (data)",
        ),
        StandIn(
            "mirror_video_shots",
            "instance retrieval on INRIA Holidays / Oxford5K",
            "camera shots of the mirror's seven clips as scenes (a frame's own shot is its relevant set)",
            True,
            "a frame and the other frames of its shot show one place under camera motion: the same-instance contrast "
            "is kept, but the clips hold few shots",
            "INRIA Holidays or Oxford5K (data)",
        ),
        StandIn(
            "same_scene_pairs",
            "instance retrieval on INRIA Holidays",
            "the mirror's tiny same-scene image set",
            True,
            "pairs of one scene: the same-instance contrast is kept, on 9 queries",
            "INRIA Holidays (data)",
        ),
        StandIn(
            "cifar10_for_birds",
            "Birds-200 (CUB-200-2011) fine-grained classification",
            "CIFAR-10 classification (32-px images upsampled)",
            True,
            "the orderings compare ways of pooling the same local conv features for a linear classifier; a "
            "10-class object set keeps that contrast (not the fine-grained difficulty, so no absolute number)",
            "Birds-200 and AlexNet weights (data)",
        ),
        StandIn(
            "mirror_clips_for_autopool_videos",
            "the 44 videos P was trained on in Sukhbaatar et al.",
            "fresh frame pairs streamed from the mirror's seven clips (one animated)",
            True,
            "P learns pools from temporal coherence on any natural video; AP vs SP at the same number of features "
            "keeps the paper's contrast, not its absolute accuracies",
            "the paper's videos (data)",
        ),
        StandIn(
            "cifar10_for_imagenet",
            "ImageNet classification (Wan et al.'s networks)",
            "CIFAR-10 classification: a ResNet trained from scratch, and ImageNet MobileNetV2 with a head trained on "
            "CIFAR-10",
            True,
            "an ordering of global poolings of one network's maps for classification is kept on a smaller "
            "classification set",
            "ImageNet (data)",
        ),
        StandIn(
            "mirror_clips_for_youtube",
            "Goroshin et al.'s YouTube test videos (frames with cuts between scenes)",
            "the mirror's three test clips cut into scenes",
            True,
            "the temporal test ranks a frame's own scene against the same video's other scenes; it is kept only for "
            "queries whose clip has another camera shot (counted by the stage)",
            "the paper's test videos, or any clip set with 30 queries from multi-shot clips (data)",
        ),
    )
}


def get(key: str) -> StandIn:
    """The entry for ``key``; an unknown key is an error naming the known ones (a typo would else judge a claim)."""
    try:
        return REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown stand-in {key!r}; the registry (poolrep.standins) has {sorted(REGISTRY)}") from None


def usage(claims: Iterable[dict]) -> dict[str, list[str]]:
    """Per registry key, the claims (``stage/id``) that name it, read from the ledger's rows."""
    out: dict[str, list[str]] = {k: [] for k in REGISTRY}
    for c in claims:
        for k in c.get("standins") or []:
            out.setdefault(k, []).append(f"{c['stage']}/{c['id']}")
    return out


def table(claims: Iterable[dict] = ()):
    """The registry as a DataFrame (one row per substitution, the claims that use it), for the report."""
    import pandas as pd

    used = usage(claims)
    return pd.DataFrame(
        [
            {
                "stand-in": s.key,
                "paper's object": s.paper_object,
                "ours": s.substitute,
                "keeps the contrast": "yes" if s.keeps_contrast else "no",
                "why": s.reason,
                "claims": ", ".join(used.get(s.key, [])),
            }
            for s in REGISTRY.values()
        ]
    )
