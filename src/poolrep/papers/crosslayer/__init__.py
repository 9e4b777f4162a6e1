"""Cross-convolutional-layer pooling (Liu, Shen and van den Hengel, CVPR 2015, paper 003): the ``crosslayer`` stage.

The operators are in :mod:`poolrep.pooling`: :class:`~poolrep.pooling.crosslayer.CrossLayerPool` (Eq. 1: the
PCA-reduced local features of layer t weighted by each channel of layer t+1 and summed) with the sampling of
training local features, :class:`~poolrep.pooling.direct.DirectPool` (the direct sum / max baselines) and
:mod:`~poolrep.pooling.postprocess` (PCA; standardise, signed square root, L2 as the authors' code does); the kernel
SVM is :mod:`poolrep.linear_svm`'s. This package holds the paper's pipeline around them:

- :mod:`.model`: one scale's representations, CNN-Global, the value quantisation, the post-processed kernels, and
  whether layer t+1 combines the channels of layer t (Sec. 2);
- :mod:`.experiment`: the data, the maps at both input sizes, Table 1's SVMs, the PCA sweep, the quantisation;
- :mod:`.figures`: the sweep, the pooling channels' weights, the orderings read off our numbers;
- :mod:`.claims`: the paper's numbers (Table 1) and claims, judged on the run.

Everything the notebook calls is importable from here (``from poolrep.papers import crosslayer as cl``).
"""

from .claims import PAPER_ACC, PAPER_SETTING, claims
from .experiment import extract_maps, fit_table1, load_data, pca_sweep, quantization_table
from .figures import gap_lines, plot_channel_weights, plot_pca_sweep, table1
from .model import (
    column_subset,
    conv_of,
    cross_channel,
    float16_kernel_error,
    global_features,
    kernels,
    quantize,
    represent,
)

__all__ = [
    "PAPER_ACC",
    "PAPER_SETTING",
    "claims",
    "column_subset",
    "conv_of",
    "cross_channel",
    "extract_maps",
    "fit_table1",
    "float16_kernel_error",
    "gap_lines",
    "global_features",
    "kernels",
    "load_data",
    "pca_sweep",
    "plot_channel_weights",
    "plot_pca_sweep",
    "quantization_table",
    "quantize",
    "represent",
    "table1",
]
