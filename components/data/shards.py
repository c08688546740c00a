"""Write video rows into Parquet shards, one row group per video (or per few small items).

A row group closes once it holds `row_group_bytes`, so a reader fetches one video with one ranged
read; a shard closes once it holds `shard_bytes`. Frames and masks are already compressed images,
so those columns are stored uncompressed and without dictionaries or statistics.
"""

from __future__ import annotations

import posixpath
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from components.data.manifest import ShardEntry, VideoEntry
from components.data.records import SCHEMA

_BLOB_COLUMNS = ("frames", "masks")


class ShardWriter:
    """Appends rows in order; `close()` returns the shard list and the per-video index."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str, prefix: str, shard_bytes: int, row_group_bytes: int) -> None:
        self.fs, self.root, self.prefix = fs, root, prefix
        self.shard_bytes, self.row_group_bytes = shard_bytes, row_group_bytes
        self.shards: list[ShardEntry] = []
        self.videos: list[VideoEntry] = []
        self._file: Any = None
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[dict[str, Any]] = []
        self._pending_bytes = 0
        self._shard_bytes = 0
        self._shard_videos = 0
        self._row_groups = 0

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row (a `VideoRecord.to_row()` dict); flushes row groups and shards as they fill."""
        size = sum(len(b) for column in _BLOB_COLUMNS for b in row[column])
        if self._pending and self._pending_bytes + size > self.row_group_bytes:
            self._flush_row_group()
        self.videos.append(
            VideoEntry(
                name=row["name"],
                shard=len(self.shards),
                row_group=self._row_groups,
                row=len(self._pending),
                frames=len(row["frames"]),
                annotated_frames=len(row["annotated"]),
                objects=len(row["object_ids"]),
                annotation_interval=row["annotation_interval"],
                digest=row["digest"],
            )
        )
        self._pending.append(row)
        self._pending_bytes += size

    def close(self) -> tuple[list[ShardEntry], list[VideoEntry]]:
        if self._pending:
            self._flush_row_group()
        self._close_shard()
        return self.shards, self.videos

    def abort(self) -> None:
        """Close any open file without finishing it (the caller removes the prefix)."""
        for thing in (self._writer, self._file):
            try:
                if thing is not None:
                    thing.close()
            except Exception:  # best effort while failing anyway
                pass
        self._writer = self._file = None

    def _flush_row_group(self) -> None:
        if self._writer is None:
            self._open_shard()
        table = pa.Table.from_pylist(self._pending, schema=SCHEMA)
        self._writer.write_table(table, row_group_size=len(self._pending))
        self._shard_bytes += self._pending_bytes
        self._shard_videos += len(self._pending)
        self._row_groups += 1
        self._pending, self._pending_bytes = [], 0
        if self._shard_bytes >= self.shard_bytes:
            self._close_shard()

    def _open_shard(self) -> None:
        folder = posixpath.join(self.root, self.prefix)
        self.fs.makedirs(folder, exist_ok=True)
        path = posixpath.join(folder, f"shard-{len(self.shards):05d}.parquet")
        self._file = self.fs.open(path, "wb")
        self._writer = pq.ParquetWriter(
            self._file,
            SCHEMA,
            compression={name: ("NONE" if name in _BLOB_COLUMNS else "ZSTD") for name in SCHEMA.names},
            use_dictionary=[n for n in SCHEMA.names if n not in _BLOB_COLUMNS],
            write_statistics=False,
        )

    def _close_shard(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._file.close()
        self.shards.append(
            ShardEntry(
                path=f"{self.prefix}/shard-{len(self.shards):05d}.parquet",
                videos=self._shard_videos,
                row_groups=self._row_groups,
                bytes=self._shard_bytes,
            )
        )
        self._writer = self._file = None
        self._shard_bytes = self._shard_videos = self._row_groups = 0
