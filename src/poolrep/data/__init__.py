"""Data layer: registry of data sets (``registry``), fetching into ``data/`` (``fetch``), and loaders."""

from .fetch import DataError, available, ensure_file, fetch, mirror_dir, source_of
from .registry import REGISTRY, Dataset, File, get

__all__ = [
    "DataError",
    "available",
    "ensure_file",
    "fetch",
    "mirror_dir",
    "source_of",
    "REGISTRY",
    "Dataset",
    "File",
    "get",
]
