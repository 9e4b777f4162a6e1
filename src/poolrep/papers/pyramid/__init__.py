"""Pyramid pooling for retrieval (Jose, Lopez and Ng, ICIP 2018, paper 002): the ``pyramid`` stage.

The operators are in :mod:`poolrep.pooling.window` (the windows, the pyramids of Table 2, hybrid pooling); the
ranking and mAP protocols in :mod:`poolrep.metrics.retrieval`. This package holds the paper's pipeline around them:

- :mod:`.model`: the descriptors of the last conv block (L5, fc6/fc7 or their stand-ins, global max, hybrid,
  windows, pyramids), L2-normalised;
- :mod:`.experiment`: each data set described and ranked, per-query APs kept;
- :mod:`.figures`: the Tables 3/4 layout, mAP against dimension, top-k retrievals, the video set per clip, and the
  data sets' display titles;
- :mod:`.claims`: the paper's numbers (Tables 3/4) and claims, judged on the run.

Everything the notebook calls is importable from here (``from poolrep.papers import pyramid as P``).
"""

from .claims import PAPER_DIMS, PAPER_MAP, PAPER_MAP_PLACES, SET_STANDINS, SUBSTITUTES, claims, paper_dim
from .experiment import DATASETS, OPTIONAL, SetResult, Shown, evaluate, run_all, run_dataset, select
from .figures import (
    SET_TITLES,
    gap_sentences,
    make_table,
    per_clip_table,
    plot_map_vs_dim,
    plot_topk,
    rank_agreement,
    set_title,
    shot_table,
    tables,
)
from .model import CONV_NODE, DESCRIPTORS, conv_maps, describe, head_codes, pyramid_defs, stand_in

__all__ = [
    "CONV_NODE",
    "DATASETS",
    "DESCRIPTORS",
    "OPTIONAL",
    "PAPER_DIMS",
    "PAPER_MAP",
    "PAPER_MAP_PLACES",
    "SET_STANDINS",
    "SET_TITLES",
    "SUBSTITUTES",
    "SetResult",
    "Shown",
    "claims",
    "conv_maps",
    "describe",
    "evaluate",
    "gap_sentences",
    "head_codes",
    "make_table",
    "paper_dim",
    "per_clip_table",
    "plot_map_vs_dim",
    "plot_topk",
    "pyramid_defs",
    "rank_agreement",
    "run_all",
    "run_dataset",
    "select",
    "set_title",
    "shot_table",
    "stand_in",
    "tables",
]
