"""poolrep: a reproducible workspace for five papers on pooling of image features.

One module per concern (nanoGPT style): ``paths`` (where things live), ``config`` (params.yaml and
profiles), ``device`` (device, seeds, run log), ``io`` (atomic writes of tables, figures, metrics),
``data`` (dataset registry, fetch, loaders), ``pooling`` (one operator per module), ``metrics``.
"""

__version__ = "0.1.0"
