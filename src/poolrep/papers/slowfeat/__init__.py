"""Slow-feature pooling auto-encoders (Goroshin, Bruna, Tompson, Eigen, LeCun, ICLR 2015).

Eq. 2, for two consecutive frames ``x_t, x_t'`` with codes ``h = ReLU(W_e x + b)`` and L2 pooling groups ``P_i``:

    L = sum_{tau in {t, t'}} ( ||W_d h_tau - x_tau||^2 + alpha |h_tau|_1 ) + beta sum_i | ||h_t||_{P_i} - ||h_t'||_{P_i} |

Reconstruction is from ``h``, not from the pooled code. ``sparsity="group"`` replaces ``|h|_1`` by the group
norm ``sum_i ||h||_{P_i}`` (the "group sparsity" baseline, used with ``beta = 0``).

Eq. 1 (DrLIM, Hadsell et al. 2006), codes ``G(x)`` of the same encoder, positives = temporal neighbours,
negatives = random frames of other scenes (``M >= 5`` per positive), margin ``m``:

    L = ||G(x_a) - G(x_p)||^2 + sum_{j=1..M} max(0, m - ||G(x_a) - G(x_n_j)||)^2

Decoder atoms are renormalised to unit L2 norm after every step (otherwise the sparsity term is defeated by
shrinking ``h`` and growing ``W_d``; the paper's models are sparse auto-encoders with this usual constraint).

The package, one concern per module: :mod:`.model` (the auto-encoders, DrLIM, the supervised net, their training),
:mod:`.toy` (Figure 1's toy and its renderer), :mod:`.experiment` (the stage's steps), :mod:`.speed` (the speed
table against this machine's measured limits), :mod:`.figures` (tables and
figures), :mod:`.claims` (the paper's numbers and claims). The clips are cut into scenes by
:func:`poolrep.data.scenes.load_scenes`. Everything the notebook and tests call is importable from here
(``from poolrep.papers import slowfeat as sf``).
"""

from ...data.scenes import Frames, load_scenes
from .claims import CIFAR_DIFFERENCES, PAPER_AUC, claims
from .experiment import (
    MODELS,
    auc_against_steps,
    by_seed,
    class_auc_at_checkpoint,
    class_query_auc,
    clip_counts,
    code_change,
    competing_queries,
    descriptors,
    evaluate_seed,
    fit_seeded_job,
    group_coherence,
    kept_stack,
    load_video,
    loss_fall,
    per_scene_mean,
    pick_clips,
    random_frame_pairs,
    seeded_job_data,
    sizes_table,
    specs_of,
    stack_cfgs,
    stack_from_states,
    train_fc_models,
    train_seeds,
    training_losses,
)
from .figures import (
    SHOWN,
    atom_grid,
    auc_table,
    change_table,
    per_clip_table,
    plateau_table,
    plot_conv_decoders,
    plot_fc_decoders,
    plot_pr,
    plot_query_strips,
    plot_training_curves,
    speed_display,
    stability_table,
    summary_lines,
    table1_note,
)
from .model import (
    ConvAutoEncoder,
    FCAutoEncoder,
    SupervisedNet,
    TrainCfg,
    drlim_loss,
    layer_specs,
    patch_pairs,
    random_negatives,
    slow_loss,
    stack_features,
    temporal_pairs,
    to_chw,
    train_autoencoder,
    train_drlim,
    train_greedy,
    train_supervised,
)
from .speed import job_seconds, speed_table
from .toy import ToyNet, box, grid_pairs_and_ids, plane_mesh, render, render_grid, rotation, toy_experiment

__all__ = [
    "CIFAR_DIFFERENCES",
    "ConvAutoEncoder",
    "FCAutoEncoder",
    "Frames",
    "MODELS",
    "PAPER_AUC",
    "SHOWN",
    "SupervisedNet",
    "ToyNet",
    "TrainCfg",
    "atom_grid",
    "auc_against_steps",
    "auc_table",
    "box",
    "by_seed",
    "change_table",
    "claims",
    "class_auc_at_checkpoint",
    "class_query_auc",
    "clip_counts",
    "code_change",
    "competing_queries",
    "descriptors",
    "drlim_loss",
    "evaluate_seed",
    "fit_seeded_job",
    "grid_pairs_and_ids",
    "job_seconds",
    "group_coherence",
    "kept_stack",
    "layer_specs",
    "load_scenes",
    "load_video",
    "loss_fall",
    "patch_pairs",
    "per_clip_table",
    "per_scene_mean",
    "pick_clips",
    "plane_mesh",
    "plateau_table",
    "plot_conv_decoders",
    "plot_fc_decoders",
    "plot_pr",
    "plot_query_strips",
    "plot_training_curves",
    "random_frame_pairs",
    "random_negatives",
    "render",
    "render_grid",
    "rotation",
    "seeded_job_data",
    "sizes_table",
    "slow_loss",
    "specs_of",
    "speed_display",
    "speed_table",
    "stability_table",
    "stack_cfgs",
    "stack_features",
    "stack_from_states",
    "summary_lines",
    "table1_note",
    "temporal_pairs",
    "to_chw",
    "toy_experiment",
    "train_autoencoder",
    "train_drlim",
    "train_fc_models",
    "train_greedy",
    "train_seeds",
    "train_supervised",
    "training_losses",
]
