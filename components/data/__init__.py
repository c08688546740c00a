"""The data plane: dataset sources, ingestion to Parquet on any fsspec storage, samplers,
augmentations, the synthetic video generator, and the loader a Ray Train worker streams from.

Names are imported on first use, so `corrvos ingest` never pays for torch and nothing here imports Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DataConfig": "config",
    "IngestConfig": "config",
    "LoaderConfig": "config",
    "SamplerConfig": "config",
    "StaticAugmentConfig": "config",
    "VideoAugmentConfig": "config",
    "VideoDataset": "dataset",
    "ingest": "ingest",
    "ClipLoader": "loader",
    "DatasetRef": "loader",
    "collate": "loader",
    "Manifest": "manifest",
    "VideoRecord": "records",
    "PointTracks": "synthetic",
    "SyntheticMotion": "synthetic",
    "SyntheticSpec": "synthetic",
    "generate_video": "synthetic",
    "sample_points": "synthetic",
    "track_points": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"components.data.{_EXPORTS[name]}"), name)
