"""Entropy-based feature pooling (Wan et al., ICCV 2019): the ``entropy`` stage's experiment. The operator is
:class:`poolrep.pooling.entropy.EntropyPool`; here are the networks it is plugged into, the localisation test of its
weight maps against the class activation maps (CAM, Zhou et al. 2016), the tables and the abstract's claims.

The CIFAR network is ``body`` (a small ResNet: images -> last feature maps ``N x D x h x w``) followed by a
``poolrep.heads.PoolHead`` (pooling -> ``N x D`` -> one ``nn.Linear`` classifier). The head is also trained alone
on cached backbone maps (the frozen ImageNet MobileNetV2 of the ``backbone`` stage), so the same poolings are
compared on both networks. Both are trained by ``poolrep.heads.train`` (shared with the zoo).

Poolings (``poolrep.heads.POOLINGS``; ``make_pool`` there says what each is): ``gap`` / ``gmp``
(poolrep.pooling.global_pool), ``attention`` (learned spatial attention, poolrep.pooling.attention) and four
entropy weightings (poolrep.pooling.entropy): ``entropy_linear``, ``entropy_softmax``, ``entropy_unnormalised`` and
``entropy_detached``; the entropy pool shares the head's classifier.

The package: :mod:`.model` (networks), :mod:`.experiment` (the stage's steps), :mod:`.speed` (the training steps
against this machine's measured limits), :mod:`.figures` (tables, figures, phrases; the only home of display names),
:mod:`.claims` (the claims). Everything the notebook and tests call is importable from here
(``from poolrep.papers import entropy as cnn``).
"""

from ...heads import POOLINGS
from .claims import ABSTRACT, NEAR_UNIFORM, OUTPERFORMING, claims, head_trained, weights_phrase
from .experiment import (
    CAM,
    CANVASES,
    CENTRE,
    NETWORKS,
    accuracy_metrics,
    choose_head_lrs,
    cifar_from_state,
    cifar_job_data,
    cifar_recipe,
    control_difference,
    control_seeds,
    convergence,
    finite_or_inf,
    fit_cifar,
    fit_cifar_job,
    localisation,
    localisation_metrics,
    map_scores,
    maps_and_weights,
    summarise,
    train_all,
)
from .figures import (
    CANVAS_TITLES,
    MAP_TITLES,
    NETWORK_TITLES,
    SHORT,
    accuracy_table,
    control_phrase,
    control_table,
    convergence_phrase,
    localisation_table,
    plot_curves,
    pool_names,
    resnet_cut,
    resnet_phrase,
    weight_figure,
)
from .model import (
    CHANNELS_LAST_MIN_WIDTH,
    CIFAR_MEAN,
    CIFAR_STD,
    WEIGHTED,
    BasicBlock,
    GroupedNet,
    Net,
    SmallResNet,
    cam_agreement,
    cifar_net,
    images_to_tensor,
    maps_of,
    memory_format,
    training_net,
    upsample,
    weight_stats,
)
from .speed import speed_table

__all__ = [
    "POOLINGS",
    "ABSTRACT",
    "BasicBlock",
    "GroupedNet",
    "CANVASES",
    "CANVAS_TITLES",
    "CAM",
    "CENTRE",
    "CHANNELS_LAST_MIN_WIDTH",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "MAP_TITLES",
    "NEAR_UNIFORM",
    "NETWORKS",
    "NETWORK_TITLES",
    "Net",
    "OUTPERFORMING",
    "SHORT",
    "SmallResNet",
    "WEIGHTED",
    "accuracy_metrics",
    "accuracy_table",
    "cam_agreement",
    "choose_head_lrs",
    "cifar_from_state",
    "cifar_job_data",
    "cifar_net",
    "cifar_recipe",
    "claims",
    "control_difference",
    "control_phrase",
    "control_seeds",
    "control_table",
    "convergence",
    "convergence_phrase",
    "finite_or_inf",
    "fit_cifar",
    "fit_cifar_job",
    "head_trained",
    "images_to_tensor",
    "localisation",
    "localisation_metrics",
    "localisation_table",
    "map_scores",
    "maps_and_weights",
    "maps_of",
    "memory_format",
    "plot_curves",
    "pool_names",
    "resnet_cut",
    "resnet_phrase",
    "speed_table",
    "summarise",
    "train_all",
    "training_net",
    "upsample",
    "weight_figure",
    "weight_stats",
    "weights_phrase",
]
