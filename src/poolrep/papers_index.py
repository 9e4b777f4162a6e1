"""The papers, in one place: each paper stage's title, citation and short label, read by the report (its headings,
the claims ledger's ``paper`` column, the overview) and extended by ``poolrep new`` (:mod:`poolrep.scaffold`).

Kept apart from the paper modules on purpose: the report imports this module only (not the experiment code, so a
change to a paper's code does not rerun the report stage), and no paper stage imports it (so adding a paper reruns
no other paper's stage). The order is the report's order (that of ../shared/papers, 000..004, then later papers).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    stage: str
    title: str  # the paper's own title
    citation: str  # authors (venue year)
    short: str  # the ledger's ``paper`` column: "First author et al. year (number)"


PAPERS: dict[str, Paper] = {
    p.stage: p
    for p in (
        Paper(
            "autopool",
            "Auto-pooling: learning to improve invariance of image features from image sequences",
            "Sukhbaatar, Makino, Aihara (2013)",
            "Sukhbaatar et al. 2013 (000)",
        ),
        Paper(
            "slowfeat",
            "Unsupervised learning of spatiotemporally coherent metrics",
            "Goroshin, Bruna, Tompson, Eigen, LeCun (ICLR 2015)",
            "Goroshin et al. 2015 (001)",
        ),
        Paper(
            "pyramid",
            "Pyramid pooling of convolutional feature maps for image retrieval",
            "Jose, Lopez, Heisterklaus, Wien (ICIP 2018)",
            "Jose et al. 2018 (002)",
        ),
        Paper(
            "crosslayer",
            "The treasure beneath convolutional layers: cross-convolutional-layer pooling",
            "Liu, Shen, van den Hengel (CVPR 2015)",
            "Liu et al. 2015 (003)",
        ),
        Paper(
            "entropy",
            "Information entropy based feature pooling for convolutional neural networks",
            "Wan et al. (ICCV 2019)",
            "Wan et al. 2019 (004)",
        ),
        # poolrep new: new papers go above this line
    )
}

# the stages that are no paper: their headings in the report
OTHER_STAGES = {
    "zoo": "The pooling zoo: every operator of the five papers on one backbone",
    "prepare": "Shared: CIFAR-10 decoding",
    "backbone": "Shared: ImageNet MobileNetV2 feature maps",
}


def short(stage: str) -> str:
    """The ledger's label for a stage's paper (the stage's name where it is no paper)."""
    p = PAPERS.get(stage)
    return p.short if p else stage


def title(stage: str) -> str:
    p = PAPERS.get(stage)
    return p.title if p else OTHER_STAGES.get(stage, stage)
