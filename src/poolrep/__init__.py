"""poolrep: a reproducible workspace for five papers on pooling of image features.

One module per concern (nanoGPT style). What all papers share sits at the package root: ``paths`` (where things
live), ``config`` (params.yaml and profiles), ``device`` (device, seeds, run log), ``io`` (atomic writes of
tables, figures, metrics), ``normalize`` (L2 normalisation, ZCA whitening), ``features`` (backbone feature maps,
batched application of any module), ``stages`` (the shared ``prepare`` and ``backbone`` stages), ``runner`` /
``cli`` / ``report`` / ``sweeps`` / ``distributed`` (running the pipeline). Then four folders: ``papers`` (one
module per stage: its experiment and its claims), ``pooling`` (one operator per module), ``metrics`` (one metric
family per module) and ``data`` (registry, fetch, loaders).
"""

__version__ = "0.1.0"
