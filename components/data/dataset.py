"""`VideoDataset`: read an ingested dataset (manifest + Parquet shards) from any fsspec URI.

Reading a video fetches only its row group (one ranged read), so a worker never downloads a shard
to get one video. Parquet footers are cached per shard; the object is safe to share across threads.
"""

from __future__ import annotations

import posixpath
import threading
from typing import Any, Iterable

import pyarrow.parquet as pq

from components.data.manifest import Manifest, VideoEntry, open_root, read_manifest
from components.data.records import VideoRecord
from components.errors import DataError

_READ_COLUMNS = [
    "name", "height", "width", "frame_names", "frames", "annotated", "masks", "frame_objects",
    "annotation_interval", "extras",
]


class VideoDataset:
    """A finished dataset: its manifest, and its videos by name."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = open_root(uri, storage_options)
        manifest = read_manifest(self.fs, self.root, self.uri)
        if manifest is None:
            raise DataError(f"{self.uri}: no manifest.json (not an ingested dataset, or its ingestion did not finish)")
        self.manifest: Manifest = manifest
        self.entries: dict[str, VideoEntry] = {v.name: v for v in manifest.videos}
        self._footers: dict[int, pq.FileMetaData] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "storage_options": self.storage_options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["uri"], state["storage_options"])

    @property
    def names(self) -> list[str]:
        """Video names in manifest order (sorted)."""
        return [v.name for v in self.manifest.videos]

    @property
    def version(self) -> str:
        """The content hash: equal datasets have equal versions."""
        return self.manifest.content_hash

    @property
    def kind(self) -> str:
        return self.manifest.kind

    def __len__(self) -> int:
        return len(self.manifest.videos)

    def read(self, name: str) -> VideoRecord:
        """One video, still encoded."""
        return self.read_many([name])[name]

    def read_many(self, names: Iterable[str]) -> dict[str, VideoRecord]:
        """Several videos; those sharing a row group cost one read."""
        groups: dict[tuple[int, int], list[VideoEntry]] = {}
        for name in names:
            entry = self.entries.get(name)
            if entry is None:
                raise DataError(f"{self.uri}: no video named {name!r}")
            groups.setdefault((entry.shard, entry.row_group), []).append(entry)
        out: dict[str, VideoRecord] = {}
        for (shard, row_group), entries in groups.items():
            rows = self._read_row_group(shard, row_group)
            for entry in entries:
                out[entry.name] = VideoRecord.from_row(rows[entry.row])
        return out

    def _read_row_group(self, shard: int, row_group: int) -> list[dict[str, Any]]:
        path = posixpath.join(self.root, self.manifest.shards[shard].path)
        try:
            with self.fs.open(path, "rb") as f:
                parquet = pq.ParquetFile(f, metadata=self._footer(shard, f))
                return parquet.read_row_group(row_group, columns=_READ_COLUMNS).to_pylist()
        except FileNotFoundError:
            raise DataError(f"{self.uri}/{self.manifest.shards[shard].path}: shard listed in the manifest is missing") from None

    def _footer(self, shard: int, f: Any) -> pq.FileMetaData:
        with self._lock:
            footer = self._footers.get(shard)
        if footer is None:
            footer = pq.read_metadata(f)
            with self._lock:
                self._footers[shard] = footer
        return footer
