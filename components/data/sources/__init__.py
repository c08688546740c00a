"""Readers of on-disk datasets, one per `--kind`: davis, youtube-vos, mose, static, synthetic."""

from __future__ import annotations

from components.data.sources.base import ReadOptions, VideoSource
from components.data.sources.davis import DavisSource
from components.data.sources.mose import MoseSource
from components.data.sources.static import StaticSource
from components.data.sources.synthetic import SyntheticSource
from components.data.sources.youtube_vos import YoutubeVosSource
from components.errors import DataError

KINDS = ("davis", "youtube-vos", "mose", "static", "synthetic")


def open_source(kind: str, location: str, split: str | None = None, resolution: str | None = None) -> VideoSource:
    """The reader for `kind` at `location` (a path or fsspec URI; a spec string for synthetic)."""
    if kind == "davis":
        return DavisSource(location, split=split, resolution=resolution)
    if kind == "youtube-vos":
        return YoutubeVosSource(location, split=split)
    if kind == "mose":
        return MoseSource(location, split=split)
    if kind == "static":
        return StaticSource(location)
    if kind == "synthetic":
        return SyntheticSource(location)
    raise DataError(f"unknown dataset kind {kind!r} (choose from {', '.join(KINDS)})")


__all__ = ["KINDS", "DavisSource", "MoseSource", "ReadOptions", "StaticSource", "SyntheticSource", "VideoSource", "YoutubeVosSource", "open_source"]
