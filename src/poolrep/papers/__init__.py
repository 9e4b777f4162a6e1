"""One module per stage, named after it: each holds its paper's experiment code (everything between the data
loaders, the pooling operator and the metric: models, training, tables, figures) and its claims.

- ``autopool``: Sukhbaatar, Makino & Aihara (2013), auto-pooling (paper 000)
- ``slowfeat``: Goroshin et al. (ICLR 2015), slow-feature pooling auto-encoders (paper 001)
- ``pyramid``: Jose et al. (ICIP 2018), pyramid pooling for retrieval (paper 002)
- ``crosslayer``: Liu, Shen & van den Hengel (CVPR 2015), cross-convolutional-layer pooling (paper 003)
- ``entropy``: Wan et al. (ICCV 2019), entropy-based feature pooling (paper 004)
- ``zoo``: every operator of the five papers on one backbone (no paper: the workspace's own comparison)

The operators themselves are in :mod:`poolrep.pooling` (one per module), the metrics in :mod:`poolrep.metrics`,
the data in :mod:`poolrep.data`; a notebook ``notebooks/<stage>.ipynb`` narrates and calls its module.
"""
